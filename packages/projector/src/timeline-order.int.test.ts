// A trace's timeline does not depend on the order its events are projected in: an undyed hop request of a
// trace that has not entered a cohort yet waits as a pending row, and when the trace enters — later in the
// same batch, or in a later transaction — the hop joins the timeline with the row folding it after the
// entry writes.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { schema } from "@indigo/db";
import { DetectionSource } from "@indigo/proto";
import { asc, eq, inArray } from "drizzle-orm";
import { ServiceIdentity } from "./service-identity.ts";
import { BOOT_NS, dyeBatch, type Ev, releaseCreated, releaseStarted } from "./testing/events.ts";
import { projectUntilCaughtUp } from "./testing/project.ts";
import { createSandbox, type Sandbox } from "./testing/sandbox.ts";

let sb: Sandbox;
beforeAll(async () => {
  sb = await createSandbox("timeline");
}, 60_000);
afterAll(() => sb.close(), 60_000);

const identity = new ServiceIdentity([
  { service: "gateway", comm: "node" },
  { service: "checkout", comm: "checkout" },
  { service: "checkout", port: 8080 },
  { service: "payment", port: 9090 },
]);

const entry = (traceId: string, seq: number): Ev => ({
  seq,
  atMs: 1000,
  dye: 7,
  releaseId: "r1",
  source: DetectionSource.PAYLOAD,
  comm: "node",
  sport: 40001,
  dport: 8080,
  traceId,
});
// checkout → payment without the dye: the miss the timeline has to show.
const undyedHop = (traceId: string, seq: number): Ev => ({
  seq,
  atMs: 1200,
  comm: "checkout",
  saddr: [10, 0, 0, 2],
  daddr: [10, 0, 0, 3],
  pid: 300,
  tid: 301,
  cookie: 77n,
  sport: 41001,
  dport: 9090,
  traceId,
});

async function produce(messages: { key: string; value: Buffer }[], topic = sb.topics.dye): Promise<void> {
  const producer = sb.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  await producer.send({ topic, messages });
  await producer.disconnect();
}

const project = () => projectUntilCaughtUp(sb, "g_timeline", identity, 10_000);

async function hopsOf(traceId: string) {
  const h = schema.traceHops;
  const rows = await sb.database.db
    .select()
    .from(h)
    .where(eq(h.traceId, traceId))
    .orderBy(asc(h.at), asc(h.agentId), asc(h.seq));
  return rows.map(({ traceId: _, agentId: __, seq: ___, ...r }) => r);
}

test("an undyed hop projected before its trace entered joins the timeline as if projected after", async () => {
  await produce(
    [
      { key: "r1", value: releaseCreated("r1", 7, 0) },
      { key: "r1", value: releaseStarted("r1", 10) },
    ],
    sb.topics.release,
  );
  // In log order: the entry first, then the hop (the reference).
  // Reversed in one message: the hop waits, the entry later in the same batch resolves it.
  // Reversed across transactions: the hop is stored pending and committed before its trace enters.
  await produce([
    { key: "a1", value: dyeBatch("a1", [entry("T-in-order", 1), undyedHop("T-in-order", 2)]) },
    { key: "a2", value: dyeBatch("a2", [undyedHop("T-same-batch", 1), entry("T-same-batch", 2)]) },
    { key: "a3", value: dyeBatch("a3", [undyedHop("T-stored", 1)]) },
  ]);
  await project();
  const stored = await sb.database.db
    .select({ traceId: schema.undyedHopRequests.traceId })
    .from(schema.undyedHopRequests);
  expect(stored).toEqual([{ traceId: "T-stored" }]);
  await produce([{ key: "a4", value: dyeBatch("a4", [entry("T-stored", 1)]) }]);
  await project();

  const reference = await hopsOf("T-in-order");
  expect(reference).toHaveLength(2);
  expect(reference[1]).toMatchObject({
    service: "checkout",
    local: "10.0.0.2:41001",
    peer: "10.0.0.3:9090",
    cookie: 77n,
    pid: 300,
    tid: 301,
    kind: "request",
    direction: "egress",
    dye: 0,
    source: "none",
  });
  expect(await hopsOf("T-same-batch")).toEqual(reference);
  expect(await hopsOf("T-stored")).toEqual(reference);
  expect(await sb.database.db.select().from(schema.undyedHopRequests)).toEqual([]);

  // And each is one miss of checkout → payment, next to its dyed gateway → checkout request.
  const c = schema.coverageTotals;
  const totals = await sb.database.db.select().from(c).orderBy(asc(c.caller), asc(c.source));
  expect(totals.map((r) => [r.caller, r.callee, r.source, r.expected, r.dyed])).toEqual([
    ["checkout", "payment", "none", 3, 0],
    ["gateway", "checkout", "payload", 3, 3],
  ]);
}, 90_000);

test("a trace enters at its earliest dyed event, whichever is projected first", async () => {
  const dyedAt = (traceId: string, seq: number, atMs: number): Ev => ({ ...entry(traceId, seq), atMs });
  // In one batch, the later hop first; across transactions, the later hop committed first.
  await produce([
    { key: "b1", value: dyeBatch("b1", [dyedAt("E-same-batch", 1, 1500), dyedAt("E-same-batch", 2, 1100)]) },
    { key: "b2", value: dyeBatch("b2", [dyedAt("E-stored", 1, 1500)]) },
  ]);
  await project();
  await produce([{ key: "b3", value: dyeBatch("b3", [dyedAt("E-stored", 1, 1100)]) }]);
  await project();
  const t = schema.cohortTraces;
  const rows = await sb.database.db
    .select({ traceId: t.traceId, at: t.enteredAt })
    .from(t)
    .where(inArray(t.traceId, ["E-same-batch", "E-stored"]))
    .orderBy(asc(t.traceId));
  const at = new Date(Number(BOOT_NS / 1_000_000n) + 1100);
  expect(rows).toEqual([
    { traceId: "E-same-batch", at },
    { traceId: "E-stored", at },
  ]);
}, 90_000);
