// The lookups made under the dye lock read a few rows of tables that only grow; on the real Postgres, with
// the tables' statistics absent (autovacuum off for them, as after a fresh start or a bulk load), they must
// still probe the indexes and never scan the table: a scan would grow with the table, lock held.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { sql } from "drizzle-orm";
import { newFoldResult } from "./fold/dye-events.ts";
import { ServiceIdentity } from "./service-identity.ts";
import { cohortEnteredSince, type Tx } from "./store.ts";
import { createSandbox, type Sandbox } from "./testing/sandbox.ts";
import { writeSharedRows } from "./write/dye-result.ts";

let sb: Sandbox;
beforeAll(async () => {
  sb = await createSandbox("probes", { dye: 1, agent: 1, release: 1 });
  const db = sb.database.db;
  for (const table of ["cohort_traces", "undyed_hop_requests"])
    await db.execute(sql.raw(`alter table ${table} set (autovacuum_enabled = false)`));
  await db.execute(sql`insert into cohort_traces (trace_id, release_id, dye, entered_at)
    select 'T' || g, 'r1', 4, now() from generate_series(1, 20000) g`);
  await db.execute(sql`insert into undyed_hop_requests (trace_id, caller, callee, bucket_start)
    select 'U' || g, 'a', 'b', now() from generate_series(1, 20000) g`);
}, 60_000);
afterAll(() => sb.close(), 60_000);

interface Scans {
  seq: number;
  idx: number;
}

/** This transaction's scans of `table` so far. */
async function scans(tx: Tx, table: string): Promise<Scans> {
  const [row] = await tx.execute<{ seq: number; idx: number }>(
    sql`select seq_scan::int as seq, coalesce(idx_scan, 0)::int as idx
        from pg_stat_xact_user_tables where relname = ${table}`,
  );
  return row ?? { seq: -1, idx: -1 };
}

/** Runs `body` in a transaction that is rolled back, so each case sees the rows beforeAll loaded. */
async function rolledBack(body: (tx: Tx) => Promise<void>): Promise<void> {
  await sb.database.db
    .transaction(async (tx) => {
      await body(tx);
      tx.rollback();
    })
    .catch((error: unknown) => {
      if (!(error instanceof Error && error.message === "Rollback")) throw error;
    });
}

test("the cohort entries since a position come through the position index", async () => {
  await rolledBack(async (tx) => {
    const [{ p } = { p: "0" }] = await tx.execute<{ p: string }>(
      sql`select (max(position) - 10)::text as p from cohort_traces`,
    );
    const before = await scans(tx, "cohort_traces");
    const since = await cohortEnteredSince(tx, BigInt(p));
    const after = await scans(tx, "cohort_traces");
    expect(since.size).toBe(10);
    expect([...since.values()]).toEqual(Array(10).fill("r1"));
    expect(after.seq - before.seq).toBe(0);
    expect(after.idx - before.idx).toBeGreaterThan(0);
  });
}, 30_000);

test("the stored pending rows of entered traces are taken through the trace index", async () => {
  await rolledBack(async (tx) => {
    const before = await scans(tx, "undyed_hop_requests");
    const result = newFoldResult();
    const take = ["U7", "U19999", "U-none"].map((traceId) => ({ traceId, releaseId: "r1" }));
    await writeSharedRows(tx, new ServiceIdentity([]), result, [], take);
    const after = await scans(tx, "undyed_hop_requests");
    // Two stored rows taken, each a miss of r1 (expected, not dyed).
    const misses = [...result.coverage.values()].filter((c) => c.releaseId === "r1");
    expect(misses.reduce((n, c) => n + c.expected, 0)).toBe(2);
    expect(misses.reduce((n, c) => n + c.dyed, 0)).toBe(0);
    // Stored as before migration 0009, without their event: misses, but no timeline rows.
    const [hops] = await tx.execute<{ n: number }>(sql`select count(*)::int as n from trace_hops`);
    expect(hops?.n).toBe(0);
    expect(after.seq - before.seq).toBe(0);
    expect(after.idx - before.idx).toBeGreaterThan(0);
  });
}, 30_000);
