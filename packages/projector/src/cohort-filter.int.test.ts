// The cohort filter against the real cohort_traces: what it must never do is call absent an id that has an
// entry at or below the position it returned.
import { afterAll, beforeAll, beforeEach, expect, test } from "bun:test";
import { sql } from "drizzle-orm";
import { CohortFilter } from "./cohort-filter.ts";
import { createSandbox, type Sandbox } from "./testing/sandbox.ts";

let sb: Sandbox;
beforeAll(async () => {
  sb = await createSandbox("cfilter");
}, 60_000);
afterAll(() => sb.close(), 60_000);
beforeEach(async () => {
  await sb.database.db.execute(sql`truncate cohort_traces`);
});

/** Entries `prefix`1 … `prefix`n, as the projector writes them (positions from the table's sequence). */
async function enter(prefix: string, n: number): Promise<void> {
  await sb.database.db.execute(sql`
    insert into cohort_traces (trace_id, release_id, dye, entered_at)
    select ${prefix} || g, 'r1', 7, now() from generate_series(1, ${n}::int) g`);
}

async function maxPosition(): Promise<bigint> {
  const [row] = await sb.database.db.execute<{ p: string }>(
    sql`select coalesce(max(position), 0)::text as p from cohort_traces`,
  );
  return BigInt(row!.p);
}

const catchUp = (f: CohortFilter) => sb.database.db.transaction((tx) => f.catchUp(tx));
const ids = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${i + 1}`);
const held = (f: CohortFilter, list: readonly string[]) => list.filter((id) => f.mightHold(id)).length;

test("holds every entry up to the position it returns, and later ones once caught up again", async () => {
  const lines: string[] = [];
  const filter = new CohortFilter({ maxEntries: 1_000_000, log: (l) => lines.push(l), db: sb.database.db });
  expect(await catchUp(filter)).toBe(0n); // an empty table
  await enter("a-", 1000);
  expect(await catchUp(filter)).toBe(await maxPosition());
  expect(held(filter, ids("a-", 1000))).toBe(1000);
  // Absent ids: mostly answered absent (a false positive only costs a lookup).
  expect(held(filter, ids("absent-", 20_000))).toBeLessThan(200);

  await enter("b-", 500);
  expect(held(filter, ids("b-", 500))).toBeLessThan(20); // not caught up yet
  expect(await catchUp(filter)).toBe(await maxPosition());
  expect(held(filter, ids("b-", 500))).toBe(500);
  expect(held(filter, ids("a-", 1000))).toBe(1000);
  expect(lines).toEqual([]);
}, 30_000);

test("more entries than it was sized for: still held meanwhile, sized anew beside the batches, nothing lost", async () => {
  const lines: string[] = [];
  const filter = new CohortFilter({ maxEntries: 10_000_000, log: (l) => lines.push(l), db: sb.database.db });
  await enter("a-", 10);
  await catchUp(filter);
  // Past its first size (~105 000 entries) in one step; entries arrive in pages of 50 000.
  await enter("c-", 150_000);
  expect(await catchUp(filter)).toBe(await maxPosition());
  // The outgrown filter answers until the rebuild (in a transaction of its own) is swapped in.
  expect(lines).toEqual([]);
  expect(held(filter, ids("c-", 150_000))).toBe(150_000);
  expect(held(filter, ids("a-", 10))).toBe(10);
  // Entered while the rebuild may be reading: held once a catchUp has swapped it in.
  await enter("d-", 1000);
  await filter.idle();
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^cohort filter rebuilt for 15\d{4} entries in \d+ ms, beside the batches$/);
  expect(await catchUp(filter)).toBe(await maxPosition());
  for (const [prefix, n] of [
    ["a-", 10],
    ["c-", 150_000],
    ["d-", 1000],
  ] as const)
    expect(held(filter, ids(prefix, n))).toBe(n);
  expect(held(filter, ids("absent-", 20_000))).toBeLessThan(400);
  // sized for twice what it read: no second rebuild
  await enter("e-", 1000);
  await catchUp(filter);
  await filter.idle();
  expect(lines).toHaveLength(1);
}, 60_000);

test("a rebuild that finds more than maxEntries gives the filter up at the next catchUp", async () => {
  const lines: string[] = [];
  const filter = new CohortFilter({ maxEntries: 140_000, log: (l) => lines.push(l), db: sb.database.db });
  await enter("a-", 10);
  await catchUp(filter);
  await enter("c-", 150_000);
  await catchUp(filter);
  expect(filter.mightHold("never-entered")).toBe(false);
  await filter.idle();
  expect(await catchUp(filter)).toBe(await maxPosition());
  expect(filter.mightHold("never-entered")).toBe(true);
  expect(lines).toEqual([
    "cohort filter given up: cohort_traces holds 150010 entries, more than INDIGO_PROJECTOR_COHORT_FILTER_MAX_ENTRIES (140000); every trace id is looked up",
  ]);
}, 60_000);

test("concurrent callers each get a position the filter covers", async () => {
  const filter = new CohortFilter({ maxEntries: 1_000_000, log: () => {}, db: sb.database.db });
  await enter("a-", 100);
  const positions = await Promise.all([catchUp(filter), catchUp(filter), catchUp(filter)]);
  expect(new Set(positions)).toEqual(new Set([await maxPosition()]));
  expect(held(filter, ids("a-", 100))).toBe(100);
}, 30_000);

test("past maxEntries it gives up, says so once, and every id is looked up", async () => {
  const lines: string[] = [];
  const filter = new CohortFilter({ maxEntries: 50, log: (l) => lines.push(l), db: sb.database.db });
  await enter("a-", 60);
  expect(await catchUp(filter)).toBe(await maxPosition());
  expect(filter.mightHold("never-entered")).toBe(true);
  await enter("b-", 5);
  expect(await catchUp(filter)).toBe(await maxPosition());
  expect(lines).toHaveLength(1);
  expect(lines[0]).toContain("cohort_traces holds 60 entries, more than");
  expect(lines[0]).toContain("INDIGO_PROJECTOR_COHORT_FILTER_MAX_ENTRIES (50)");
}, 30_000);
