// The zstd codec (packages/bus, registered by every createKafka client) against the real broker: a batch
// produced with zstd (what the agent's --compression zstd does) is stored by the broker and read back byte
// for byte by a plain createKafka consumer, as the projector's is. Needs the dev broker; skips with a reason elsewhere,
// except under CI=true.
import { expect, test } from "bun:test";
import { brokerReachable, brokersFromEnv, CompressionTypes, createKafka } from "@indigo/bus";
import { collectTopic, createTestTopics, deleteTestTopics } from "../testing/daemon.ts";

const BROKERS = brokersFromEnv();
const CI = process.env.CI === "true";
const up = await brokerReachable(BROKERS);
if (!up && !CI) console.warn(`skipping the zstd codec test: no Kafka broker at ${BROKERS.join(",")}`);

(up || CI ? test : test.skip)(
  "zstd-compressed messages round-trip through the broker",
  async () => {
    const topics = await createTestTopics(BROKERS, `test-zstd-${process.pid}-${Date.now().toString(36)}.`);
    try {
      const values = Array.from({ length: 50 }, (_, i) => Buffer.from(`event ${i} `.repeat(100 + i)));
      const producer = createKafka("indigo-test-zstd", { brokers: BROKERS, quiet: true }).producer({
        idempotent: true,
      });
      await producer.connect();
      await producer.send({
        topic: topics.dye,
        acks: -1,
        compression: CompressionTypes.ZSTD,
        messages: values.map((value) => ({ key: "a", value })),
      });
      await producer.disconnect();
      const got = await collectTopic(BROKERS, topics.dye);
      const deadline = Date.now() + 15_000;
      while (got.messages.length < values.length && Date.now() < deadline) await Bun.sleep(50);
      await got.stop();
      expect(got.messages.map((m) => Buffer.from(m.value).toString())).toEqual(
        values.map((v) => v.toString()),
      );
    } finally {
      await deleteTestTopics(BROKERS, topics);
    }
  },
  60_000,
);
