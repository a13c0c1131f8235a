// Two dye transactions that fold the same trace at once, on different partitions: both fold and write their
// own rows before either holds the dye lock (a third connection holds it until both wait), then take it in
// a chosen order; the second reconciles with the cohort entry the first committed meanwhile. The tables
// must equal applying the two batches one after the other, in one order or the other (serialisable): the
// coverage is the same either way, the trace timeline of an undyed hop is not (one stored as pending before
// its trace entered is counted as a miss without a timeline row, as it would be arriving first).
import { afterAll, beforeAll, expect, test } from "bun:test";
import type { Database } from "@indigo/db";
import { DetectionSource } from "@indigo/proto";
import postgres from "postgres";
import { type ApplyContext, applyBatch } from "./apply-batch.ts";
import { DYE_LOCK } from "./apply-dye.ts";
import { CohortFilter } from "./cohort-filter.ts";
import { ServiceIdentity } from "./service-identity.ts";
import { dyeBatch, type Ev } from "./testing/events.ts";
import { createSandbox, type Sandbox } from "./testing/sandbox.ts";
import { snapshot } from "./testing/snapshot.ts";

let sb: Sandbox;
beforeAll(async () => {
  sb = await createSandbox("race");
}, 60_000);
afterAll(() => sb.close(), 60_000);

interface Side {
  readonly agent: string;
  readonly partition: number;
  readonly events: Ev[];
}

const undyed = (seq: number, traceId: string): Ev => ({
  seq,
  atMs: 1000 + seq,
  comm: "checkout",
  sport: 40000 + seq,
  dport: 9090,
  traceId,
});
const dyed = (seq: number, traceId: string, releaseId: string): Ev => ({
  ...undyed(seq, traceId),
  comm: "gateway",
  dport: 8080,
  dye: releaseId === "r1" ? 7 : 8,
  releaseId,
  source: DetectionSource.PAYLOAD,
});

const context = (db: Database, cohortFilter?: CohortFilter): ApplyContext => ({
  db,
  group: "race",
  identity: new ServiceIdentity([]),
  bucketMs: 10_000,
  topics: sb.topics,
  cohortFilter,
});

const apply = (db: Database, side: Side, cohortFilter?: CohortFilter) =>
  applyBatch(
    context(db, cohortFilter),
    sb.topics.dye,
    side.partition,
    [{ offset: 0n, key: Buffer.from(side.agent), value: dyeBatch(side.agent, side.events) }],
    async (dead) => {
      throw new Error(`unexpected dead letters: ${dead.map((d) => d.error).join("; ")}`);
    },
  );

async function waitForLockWaiters(sql: postgres.Sql, count: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const [row] = await sql<{ n: number }[]>`
      select count(*)::int as n from pg_locks where locktype = 'advisory' and not granted
        and database = (select oid from pg_database where datname = current_database())`;
    if ((row?.n ?? 0) >= count) return;
    if (Date.now() > deadline) throw new Error(`fewer than ${count} transactions wait for the dye lock`);
    await Bun.sleep(10);
  }
}

/**
 * Applies `first` and `second` concurrently, both folded before either holds the lock, `first` taking it first.
 * With filters, each side has its own (as two projector instances do), caught up before the other commits.
 */
async function applyRacing(first: Side, second: Side, filters: boolean): Promise<void> {
  const filter = () =>
    filters ? new CohortFilter({ maxEntries: 1_000_000, log: () => {}, db: sb.database.db }) : undefined;
  const holder = postgres(sb.databaseUrl, { max: 1, onnotice: () => {} });
  try {
    await holder`select pg_advisory_lock(${String(DYE_LOCK)}::bigint)`;
    const a = apply(sb.database.db, first, filter());
    await waitForLockWaiters(holder, 1);
    const b = apply(sb.database.db, second, filter());
    await waitForLockWaiters(holder, 2);
    await holder`select pg_advisory_unlock(${String(DYE_LOCK)}::bigint)`;
    await Promise.all([a, b]);
  } finally {
    await holder.end();
  }
}

async function serially(first: Side, second: Side) {
  const { handle } = await sb.extraDatabase(`serial_${Math.random().toString(36).slice(2, 8)}`);
  await apply(handle.db, first);
  await apply(handle.db, second);
  return snapshot(handle.db);
}

async function reset(): Promise<void> {
  const sql = postgres(sb.databaseUrl, { max: 1, onnotice: () => {} });
  await sql`truncate coverage, coverage_totals, cohort_traces, undyed_hop_requests, trace_hops,
    agent_seq_ranges, agent_delivery, projector_counters, consumer_offsets`;
  await sql.end();
}

const pendingSide: Side = { agent: "a", partition: 0, events: [undyed(1, "X")] };
const enteringSide: Side = { agent: "b", partition: 1, events: [dyed(1, "X", "r1")] };

const cases: [string, Side, Side][] = [
  ["an undyed request stored, then its trace enters", pendingSide, enteringSide],
  ["its trace enters, then an undyed request folded before that commit", enteringSide, pendingSide],
  [
    "two batches enter the same trace with the same release",
    enteringSide,
    { agent: "c", partition: 2, events: [dyed(1, "X", "r1"), undyed(2, "X")] },
  ],
  [
    "two batches enter the same trace with different releases (the second folds again under the lock)",
    enteringSide,
    { agent: "c", partition: 2, events: [dyed(1, "X", "r2"), undyed(2, "X")] },
  ],
];

for (const [name, first, second] of cases)
  for (const filters of [false, true])
    test(`racing dye transactions ${filters ? "with cohort filters " : ""}equal their serial order: ${name}`, async () => {
      await reset();
      await applyRacing(first, second, filters);
      const raced = await snapshot(sb.database.db);
      const orders = [await serially(first, second), await serially(second, first)];
      expect(orders.filter((serial) => Bun.deepEquals(raced, serial))).not.toEqual([]);
      expect(raced.coverage).toEqual(orders[0]!.coverage);
      // The race is real: the trace entered exactly once and no undyed row of it is left pending.
      expect(raced.cohortTraces.map((c) => c.traceId)).toEqual(["X"]);
      expect(raced.pending).toEqual([]);
      const misses = raced.coverage.filter((c) => c.source === "none");
      expect(misses.map((m) => [m.releaseId, m.expected, m.dyed])).toEqual([
        [raced.cohortTraces[0]!.releaseId, 1, 0],
      ]);
    }, 60_000);
