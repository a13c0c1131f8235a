// A DyeEventBatch produced with kafkajs from Bun to the real broker is consumed back byte for byte and field
// for field. A topic of its own (same shape as indigo.dye.v1) keeps test data out of the real log.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { type Admin, CompressionTypes, createKafka, TOPIC_SPECS, TOPICS } from "@indigo/bus";
import {
  create,
  DetectionSource,
  Direction,
  DyeEventBatchSchema,
  DyeEventKind,
  DyeEventSchema,
  fromBinary,
  toBinary,
} from "@indigo/proto";

const topic = `indigo.test.dye-roundtrip.${Date.now()}`;
const kafka = createKafka("test-dye-roundtrip");
let admin: Admin;

beforeAll(async () => {
  admin = kafka.admin();
  await admin.connect();
  const dye = TOPIC_SPECS.find((s) => s.topic === TOPICS.dye)!;
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: dye.partitions }] });
}, 30_000);

afterAll(async () => {
  await admin.deleteTopics({ topics: [topic] }).catch(() => {});
  await admin.disconnect();
}, 30_000);

function sampleBatch(agentId: string, firstSeq: bigint, count: number) {
  return create(DyeEventBatchSchema, {
    agentId,
    node: "node-a",
    bootTimeUnixNano: 1_764_000_000_000_000_000n,
    producedUnixNano: 1_764_000_100_000_000_000n,
    events: Array.from({ length: count }, (_, i) =>
      create(DyeEventSchema, {
        seq: firstSeq + BigInt(i),
        tsNs: 123_456_789_000n + BigInt(i),
        kind: i % 2 === 0 ? DyeEventKind.REQUEST : DyeEventKind.RESPONSE,
        dye: i % 3 === 0 ? 0 : 7,
        source: DetectionSource.PAYLOAD,
        direction: Direction.EGRESS,
        pid: 4242,
        tid: 4243,
        comm: "python3",
        cgroupId: 9_007_199_254_740_993n, // above 2^53: must survive as a bigint
        saddr: new Uint8Array([10, 0, 0, 1]),
        sport: 40_000 + i,
        daddr: new Uint8Array([10, 0, 0, 2]),
        dport: 8080,
        socketCookie: 0xffff_ffff_ffff_fff0n,
        traceId: `t-0000000${i % 10}-cafe`,
        method: "GET",
        path: "/checkout/ünïcode?x=1",
        status: i % 2 === 0 ? 0 : 503,
      }),
    ),
  });
}

test("a protobuf DyeEventBatch round-trips through the real broker intact", async () => {
  const batches = [
    sampleBatch("agent-1", 1n, 500),
    sampleBatch("agent-2", 1n, 3),
    sampleBatch("agent-1", 501n, 1),
  ];
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  await producer.send({
    topic,
    acks: -1,
    compression: CompressionTypes.GZIP,
    messages: batches.map((b) => ({ key: b.agentId, value: Buffer.from(toBinary(DyeEventBatchSchema, b)) })),
  });
  await producer.disconnect();

  const consumer = kafka.consumer({ groupId: `${topic}.reader` });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const received: { key: string; value: Uint8Array }[] = [];
  const done = new Promise<void>((resolve) => {
    consumer.run({
      eachMessage: async ({ message }) => {
        received.push({ key: String(message.key), value: new Uint8Array(message.value ?? []) });
        if (received.length === batches.length) resolve();
      },
    });
  });
  await Promise.race([done, Bun.sleep(20_000)]);
  await consumer.disconnect();

  expect(received.length).toBe(batches.length);
  const decoded = received.map((r) => ({ key: r.key, batch: fromBinary(DyeEventBatchSchema, r.value) }));
  for (const { key, batch } of decoded) expect(key).toBe(batch.agentId);
  // Same key, same partition: agent-1's batches arrive in the order produced.
  const agent1 = decoded.filter((d) => d.key === "agent-1").map((d) => d.batch.events[0]?.seq);
  expect(agent1).toEqual([1n, 501n]);
  const byFirstSeq = (agent: string, seq: bigint) =>
    decoded.find((d) => d.key === agent && d.batch.events[0]?.seq === seq)!.batch;
  expect(byFirstSeq("agent-1", 1n)).toEqual(batches[0]!);
  expect(byFirstSeq("agent-2", 1n)).toEqual(batches[1]!);
  expect(byFirstSeq("agent-1", 501n)).toEqual(batches[2]!);
  expect(byFirstSeq("agent-1", 1n).events[499]?.path).toBe("/checkout/ünïcode?x=1");
  expect(byFirstSeq("agent-1", 1n).events[0]?.cgroupId).toBe(9_007_199_254_740_993n);
}, 60_000);
