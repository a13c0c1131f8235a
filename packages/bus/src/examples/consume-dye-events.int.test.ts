// The documented example consumer works against the real broker: it decodes what an agent would produce,
// and reports a gap and a duplicate when delivery has them.
import { afterAll, expect, test } from "bun:test";
import { create, DetectionSource, DyeEventBatchSchema, DyeEventSchema, toBinary } from "@indigo/proto";
import { createKafka } from "../kafka.ts";
import { decodeDyeMessage, type SeenEvent, SequenceWatch } from "./consume-dye-events.ts";

const kafka = createKafka("test-example-consumer");
const admin = kafka.admin();
const topic = `indigo.test.example.${Date.now()}`;
afterAll(async () => {
  await admin.deleteTopics({ topics: [topic] }).catch(() => {});
  await admin.disconnect();
}, 30_000);

const batch = (seqs: number[]) =>
  Buffer.from(
    toBinary(
      DyeEventBatchSchema,
      create(DyeEventBatchSchema, {
        agentId: "node-7",
        bootTimeUnixNano: 1_700_000_000_000_000_000n,
        events: seqs.map((s) =>
          create(DyeEventSchema, {
            seq: BigInt(s),
            tsNs: BigInt(s) * 1_000_000n,
            dye: 3,
            source: DetectionSource.INHERIT,
            traceId: `t-${s}`,
          }),
        ),
      }),
    ),
  );

test("decodes DyeEventBatch from the broker; a gap and a duplicate are noticed", async () => {
  await admin.connect();
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 1 }] });
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({
    topic,
    messages: [
      { key: "node-7", value: batch([1, 2]) },
      { key: "node-7", value: batch([2, 5]) },
    ],
  });
  await producer.disconnect();

  const consumer = kafka.consumer({ groupId: `${topic}.g` });
  const watch = new SequenceWatch();
  const seen: SeenEvent[] = [];
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await new Promise<void>((done) => {
    let messages = 0;
    consumer.run({
      eachMessage: async ({ message }) => {
        seen.push(...decodeDyeMessage(message.value ?? new Uint8Array(), watch));
        if (++messages === 2) done();
      },
    });
    setTimeout(done, 20_000);
  });
  await consumer.disconnect();
  expect(seen.map((e) => [e.seq, e.source, e.traceId])).toEqual([
    [1n, "inherit", "t-1"],
    [2n, "inherit", "t-2"],
    [5n, "inherit", "t-5"],
  ]);
  expect(seen[0]?.at).toEqual(new Date(1_700_000_000_001));
  expect(watch.gaps).toBe(2n); // 3 and 4
  expect(watch.duplicates).toBe(1n); // the second 2
}, 60_000);
