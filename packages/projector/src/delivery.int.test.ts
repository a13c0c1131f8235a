// Bad messages go to the DLQ and the stream after them is still projected; duplicated and reordered
// delivery of the same events does not change the result.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { schema } from "@indigo/db";
import { create, DetectionSource, ReleaseEventSchema, toBinary } from "@indigo/proto";
import { asc, eq } from "drizzle-orm";
import { ServiceIdentity } from "./service-identity.ts";
import { dyeBatch, type Ev, releaseCreated, releaseStarted } from "./testing/events.ts";
import { projectUntilCaughtUp } from "./testing/project.ts";
import { createSandbox, type Sandbox } from "./testing/sandbox.ts";

let sb: Sandbox;
beforeAll(async () => {
  sb = await createSandbox("delivery");
}, 60_000);
afterAll(() => sb.close(), 60_000);

const identity = new ServiceIdentity([{ service: "api", port: 8080 }]);
const events = (agent: number, from: number, to: number): Ev[] =>
  Array.from({ length: to - from + 1 }, (_, i) => {
    const seq = from + i;
    const cohort = seq % 3 !== 0;
    return {
      seq,
      atMs: seq * 100,
      dye: cohort ? 5 : 0,
      releaseId: cohort ? "rel" : "",
      source: cohort ? DetectionSource.PAYLOAD : DetectionSource.UNSPECIFIED,
      comm: `svc${agent}`,
      sport: 30000 + seq,
      dport: 8080,
      traceId: cohort ? `T${agent}-${seq}` : seq % 2 === 0 ? `T${agent}-${seq - 1}` : `U${seq}`,
    };
  });

const project = (group: string) => projectUntilCaughtUp(sb, group, identity, 1000);

async function coverageRows() {
  const c = schema.coverage;
  return sb.database.db.select().from(c).orderBy(asc(c.caller), asc(c.bucketStart), asc(c.source));
}

test("undecodable and unappliable messages land in the DLQ with the error; the stream after them is projected", async () => {
  const producer = sb.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const gap = create(ReleaseEventSchema, {
    releaseId: "rel",
    version: 9n,
    actor: "x",
    kind: { case: "promoted", value: {} },
  });
  await producer.send({
    topic: sb.topics.release,
    messages: [
      { key: "rel", value: releaseCreated("rel", 5, 0) },
      { key: "rel", value: Buffer.from([0xff, 0xff, 0xff]) },
      { key: "rel", value: Buffer.from(toBinary(ReleaseEventSchema, gap)) },
      { key: "rel", value: releaseStarted("rel", 1) },
    ],
  });
  await producer.send({
    topic: sb.topics.dye,
    messages: [
      { key: "a1", value: Buffer.from("not protobuf at all \u0000\u0001") },
      { key: "a1", value: dyeBatch("a1", events(1, 1, 30)) },
    ],
  });
  await producer.send({
    topic: sb.topics.agent,
    messages: [{ key: "a1", value: Buffer.from([0x0a, 0xff]) }],
  });
  await producer.disconnect();
  await project("g_dlq");

  const consumer = sb.kafka.consumer({ groupId: `dlq-reader-${sb.id}` });
  await consumer.connect();
  await consumer.subscribe({ topic: sb.topics.dlq, fromBeginning: true });
  const dead: { key: string; error: string; topic: string }[] = [];
  await new Promise<void>((resolveAll) => {
    consumer.run({
      eachMessage: async ({ message }) => {
        dead.push({
          key: String(message.key),
          error: String(message.headers?.["indigo-error"]),
          topic: String(message.headers?.["indigo-topic"]),
        });
        if (dead.length === 4) resolveAll();
      },
    });
    setTimeout(resolveAll, 20_000);
  });
  await consumer.disconnect();
  dead.sort((a, b) => a.error.localeCompare(b.error));
  expect(dead).toEqual([
    {
      key: "rel",
      error: "unappliable ReleaseEvent: release rel is at version 1; event version 9 does not follow",
      topic: sb.topics.release,
    },
    { key: "a1", error: expect.stringContaining("undecodable AgentStatus"), topic: sb.topics.agent },
    { key: "a1", error: expect.stringContaining("undecodable DyeEventBatch"), topic: sb.topics.dye },
    { key: "rel", error: expect.stringContaining("undecodable ReleaseEvent"), topic: sb.topics.release },
  ]);
  const [release] = await sb.database.db.select().from(schema.releases);
  expect(release?.state).toBe("running");
  const [counter] = await sb.database.db
    .select()
    .from(schema.projectorCounters)
    .where(eq(schema.projectorCounters.name, "dead_letters"));
  expect(counter?.value).toBe(4);
  const [delivery] = await sb.database.db.select().from(schema.agentDelivery);
  expect(delivery?.events).toBe(30);
}, 90_000);

test("duplicated and reordered delivery of the same events gives the same coverage, duplicates counted", async () => {
  const reference = await coverageRows();
  expect(reference.reduce((n, r) => n + r.dyed, 0)).toBe(20);
  // Agent a2 gets the same stream as a1, but split differently, out of order and with repeats.
  const producer = sb.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const parts: [number, number][] = [
    [21, 30],
    [1, 10],
    [5, 15],
    [11, 20],
    [1, 30],
  ];
  await producer.send({
    topic: sb.topics.dye,
    messages: parts.map(([from, to]) => ({
      key: "a2",
      value: dyeBatch(
        "a2",
        events(1, from, to).map((e) => ({
          ...e,
          comm: "svc2",
          traceId: e.traceId?.replace("T1-", "T2-").replace(/^U/, "V"),
        })),
      ),
    })),
  });
  await producer.disconnect();
  await project("g_dlq");
  const all = await coverageRows();
  const a2 = all.filter((r) => r.caller === "svc2");
  expect(a2.map(({ caller: _, ...r }) => r)).toEqual(reference.map(({ caller: _, ...r }) => r));
  const [delivery] = await sb.database.db
    .select()
    .from(schema.agentDelivery)
    .where(eq(schema.agentDelivery.agentId, "a2"));
  expect(delivery).toEqual({ agentId: "a2", events: 30, duplicates: 6 + 5 + 30, maxSeq: 30n });
}, 90_000);
