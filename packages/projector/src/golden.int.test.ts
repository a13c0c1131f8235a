// Golden test: a fixed event stream, produced to the real broker and projected into the real Postgres,
// yields exactly the coverage table computed by hand below.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { schema } from "@indigo/db";
import { DetectionSource } from "@indigo/proto";
import { asc, eq } from "drizzle-orm";
import { ServiceIdentity } from "./service-identity.ts";
import { BOOT_NS, dyeBatch, type Ev, releaseCreated, releaseStarted } from "./testing/events.ts";
import { projectUntilCaughtUp } from "./testing/project.ts";
import { createSandbox, type Sandbox } from "./testing/sandbox.ts";

let sb: Sandbox;
beforeAll(async () => {
  sb = await createSandbox("golden");
}, 60_000);
afterAll(() => sb.close(), 60_000);

const identity = new ServiceIdentity([
  { service: "gateway", comm: "node" },
  { service: "checkout", comm: "checkout" },
  { service: "payment", comm: "payment" },
  { service: "checkout", port: 8080 },
  { service: "payment", port: 9090 },
  { service: "ledger", port: 7070 },
]);

const { PAYLOAD, INHERIT, TCP_OPTION } = DetectionSource;
// r1 holds dye 7. Bucket 0 = [0, 10 s), bucket 1 = [10 s, 20 s).
const stream: Ev[] = [
  {
    seq: 1,
    atMs: 1000,
    dye: 7,
    releaseId: "r1",
    source: PAYLOAD,
    comm: "node",
    sport: 40001,
    dport: 8080,
    traceId: "T1",
  },
  { seq: 2, atMs: 1100, comm: "node", sport: 40002, dport: 8080, traceId: "U1" }, // not in a cohort: pending
  {
    seq: 3,
    atMs: 1200,
    dye: 7,
    releaseId: "r1",
    source: PAYLOAD,
    comm: "checkout",
    sport: 41001,
    dport: 9090,
    traceId: "T1",
  },
  { seq: 4, atMs: 1300, comm: "checkout", sport: 41002, dport: 9090, traceId: "T2" }, // miss once T2 enters
  {
    seq: 5,
    atMs: 1400,
    dye: 7,
    releaseId: "r1",
    source: INHERIT,
    comm: "payment",
    sport: 42001,
    dport: 7070,
  },
  {
    seq: 6,
    atMs: 11000,
    dye: 7,
    releaseId: "r1",
    source: PAYLOAD,
    comm: "node",
    sport: 40003,
    dport: 8080,
    traceId: "T2",
  },
  {
    seq: 7,
    atMs: 11100,
    kind: "response",
    dye: 7,
    releaseId: "r1",
    source: TCP_OPTION,
    comm: "payment",
    sport: 9090,
    dport: 41001,
    status: 503,
  },
  {
    seq: 8,
    atMs: 11200,
    kind: "response",
    dye: 7,
    releaseId: "r1",
    source: TCP_OPTION,
    comm: "payment",
    sport: 9090,
    dport: 41001,
    status: 200,
  },
  { seq: 9, atMs: 11300, comm: "payment", sport: 42002, dport: 7070 }, // undyed, no trace id: not attributable
  { seq: 10, atMs: 11400, dye: 99, source: PAYLOAD, comm: "node", sport: 40004, dport: 8080, traceId: "X1" }, // unknown dye
];

const b0 = new Date(Number(BOOT_NS / 1_000_000n));
const b1 = new Date(b0.getTime() + 10_000);
const expected = [
  {
    caller: "*",
    callee: "payment",
    bucketStart: b1,
    source: "tcp_option",
    expected: 0,
    dyed: 0,
    responses: 2,
    errors: 1,
  },
  {
    caller: "checkout",
    callee: "payment",
    bucketStart: b0,
    source: "none",
    expected: 1,
    dyed: 0,
    responses: 0,
    errors: 0,
  },
  {
    caller: "checkout",
    callee: "payment",
    bucketStart: b0,
    source: "payload",
    expected: 1,
    dyed: 1,
    responses: 0,
    errors: 0,
  },
  {
    caller: "gateway",
    callee: "checkout",
    bucketStart: b0,
    source: "payload",
    expected: 1,
    dyed: 1,
    responses: 0,
    errors: 0,
  },
  {
    caller: "gateway",
    callee: "checkout",
    bucketStart: b1,
    source: "payload",
    expected: 1,
    dyed: 1,
    responses: 0,
    errors: 0,
  },
  {
    caller: "payment",
    callee: "ledger",
    bucketStart: b0,
    source: "inherit",
    expected: 1,
    dyed: 1,
    responses: 0,
    errors: 0,
  },
].map((r) => ({ releaseId: "r1", ...r }));

test("a fixed event stream projects to exactly the hand-computed coverage table", async () => {
  const producer = sb.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  await producer.send({
    topic: sb.topics.release,
    messages: [
      { key: "r1", value: releaseCreated("r1", 7, 0) },
      { key: "r1", value: releaseStarted("r1", 10) },
    ],
  });
  // Two messages of one agent, split mid-stream: the miss (seq 4) is resolved across messages.
  await producer.send({
    topic: sb.topics.dye,
    messages: [
      { key: "a1", value: dyeBatch("a1", stream.slice(0, 5)) },
      { key: "a1", value: dyeBatch("a1", stream.slice(5)) },
    ],
  });
  await producer.disconnect();

  const group = `g_${sb.id}`;
  await projectUntilCaughtUp(sb, group, identity, 10_000);
  const db = sb.database.db;
  const c = schema.coverage;
  const rows = await db
    .select()
    .from(c)
    .orderBy(asc(c.caller), asc(c.callee), asc(c.bucketStart), asc(c.source));
  expect(rows).toEqual(expected);

  const traces = await db
    .select({ t: schema.cohortTraces.traceId })
    .from(schema.cohortTraces)
    .orderBy(asc(schema.cohortTraces.traceId));
  expect(traces.map((r) => r.t)).toEqual(["T1", "T2"]);
  const pending = await db.select({ t: schema.undyedHopRequests.traceId }).from(schema.undyedHopRequests);
  expect(pending.map((r) => r.t)).toEqual(["U1"]);
  const [delivery] = await db
    .select()
    .from(schema.agentDelivery)
    .where(eq(schema.agentDelivery.agentId, "a1"));
  expect(delivery).toEqual({ agentId: "a1", events: 10, duplicates: 0, maxSeq: 10n });
  const counters = await db
    .select()
    .from(schema.projectorCounters)
    .where(eq(schema.projectorCounters.consumerGroup, group));
  expect(counters.map((r) => [r.name, r.value])).toEqual([["dye_events_unknown_dye", 1]]);
  const [release] = await db.select().from(schema.releases);
  expect(release?.state).toBe("running");
  expect(release?.version).toBe(2);
}, 90_000);
