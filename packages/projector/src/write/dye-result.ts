// Writes a batch's dye projection changes inside the caller's transaction, a statement per table: the
// per-event tables by COPY, the keyed ones by one multi-row upsert, so throughput comes from the database and
// not from round trips. Two parts: the rows only this batch can write (its agents' and its events' own),
// written before the dye lock, in parallel with other batches; and the rows batches share (cohort entries,
// taken pending rows, coverage), written under it.
import { schema } from "@indigo/db";
import { inArray, sql } from "drizzle-orm";
import type { TransactionSql } from "postgres";
import { decodeDyeEvent } from "../decode/dye-batch.ts";
import type {
  CoverageDelta,
  EnteredTrace,
  EventSource,
  FoldResult,
  FoldState,
  PendingRow,
  TraceHopRow,
} from "../fold/dye-events.ts";
import { bucketDate, bump, eventSource, traceHopRow } from "../fold/dye-events.ts";
import type { TraceRelease } from "../fold/reconcile.ts";
import type { SeqRange } from "../sequence.ts";
import type { ServiceIdentity } from "../service-identity.ts";
import { big, bulkInsert, text, time } from "./bulk.ts";
import { copyIn } from "./copy.ts";
import {
  COHORT_COLUMNS,
  cohortRows,
  PENDING_COLUMNS,
  pendingRows,
  TRACE_HOP_COLUMNS,
  traceHopRows,
} from "./dye-rows.ts";
import { rawTransaction, type Tx, withIndexProbes } from "./raw-tx.ts";

interface StoredMiss {
  readonly trace_id: string;
  readonly caller: string;
  readonly callee: string;
  readonly bucket_ms: number;
  /** Null in rows stored before migration 0009. */
  readonly agent_id: string | null;
  readonly boot_ns: string | null;
  readonly event: Buffer | null;
}

/**
 * Deletes the stored undyed requests of traces that entered a cohort, returning them as misses of the
 * release each trace entered. The statements are sent at once (pipelined), so the caller can build its COPY
 * data meanwhile.
 */
async function takeStoredPending(raw: TransactionSql, take: readonly TraceRelease[]): Promise<StoredMiss[]> {
  if (take.length === 0) return [];
  // One index probe per entered trace, whatever the statistics say: a fresh or growing table tempts the
  // planner into sorting or hashing all of it per batch, a cost that grows with the table.
  // One array: `unnest(a, b)` of two arrays costs Postgres four times the probes themselves (measured: 48 000
  // ids, 250 ms against 16 ms for one), so the release is looked up here. The bucket comes back as epoch
  // milliseconds: the postgres.js client under drizzle parses no timestamps.
  return withIndexProbes(raw, () =>
    raw<StoredMiss[]>`
      delete from undyed_hop_requests u using unnest(${take.map((t) => t.traceId)}::text[]) as e(trace_id)
      where u.trace_id = e.trace_id
      returning u.trace_id, u.caller, u.callee, (extract(epoch from u.bucket_start) * 1000)::float8 as bucket_ms,
        u.agent_id, u.boot_ns::text, u.event`.execute(),
  );
}

/**
 * Stored undyed requests of traces that entered a cohort now: misses of the release each entered, and hops
 * of the trace's timeline (the same rows folding them after the entry would have written).
 */
function countStoredMisses(
  result: FoldResult,
  ids: ServiceIdentity,
  take: readonly TraceRelease[],
  misses: readonly StoredMiss[],
): TraceHopRow[] {
  if (misses.length === 0) return [];
  const releaseOf = new Map(take.map((t) => [t.traceId, t.releaseId]));
  const sources = new Map<string, EventSource>();
  const hops: TraceHopRow[] = [];
  for (const p of misses) {
    if (p.agent_id !== null && p.boot_ns !== null && p.event !== null) {
      const key = `${p.agent_id}\u0000${p.boot_ns}`;
      let from = sources.get(key);
      if (!from) {
        from = eventSource(ids, p.agent_id, BigInt(p.boot_ns));
        sources.set(key, from);
      }
      hops.push(traceHopRow(from, decodeDyeEvent(p.event)));
    }
    bump(
      result,
      {
        releaseId: releaseOf.get(p.trace_id)!,
        caller: p.caller,
        callee: p.callee,
        bucketStart: bucketDate(result.buckets, p.bucket_ms),
        source: "none",
      },
      { expected: 1 },
    );
  }
  return hops;
}

const coverageColumns = [
  text<CoverageDelta>("release_id", (c) => c.releaseId),
  text<CoverageDelta>("caller", (c) => c.caller),
  text<CoverageDelta>("callee", (c) => c.callee),
  time<CoverageDelta>("bucket_start", (c) => c.bucketStart),
  text<CoverageDelta>("source", (c) => c.source),
  big<CoverageDelta>("expected", (c) => c.expected),
  big<CoverageDelta>("dyed", (c) => c.dyed),
  big<CoverageDelta>("responses", (c) => c.responses),
  big<CoverageDelta>("errors", (c) => c.errors),
];
type Total = Omit<CoverageDelta, "bucketStart">;
const totalColumns = [
  text<Total>("release_id", (c) => c.releaseId),
  text<Total>("caller", (c) => c.caller),
  text<Total>("callee", (c) => c.callee),
  text<Total>("source", (c) => c.source),
  big<Total>("expected", (c) => c.expected),
  big<Total>("dyed", (c) => c.dyed),
  big<Total>("responses", (c) => c.responses),
  big<Total>("errors", (c) => c.errors),
];

/** The batch's coverage deltas summed over buckets: one row per release × hop × source. */
function totalsOf(deltas: Iterable<CoverageDelta>): Total[] {
  const totals = new Map<string, Total>();
  for (const { bucketStart: _, ...d } of deltas) {
    const key = `${d.releaseId}\u0000${d.caller}\u0000${d.callee}\u0000${d.source}`;
    const t = totals.get(key);
    if (!t) totals.set(key, { ...d });
    else {
      t.expected += d.expected;
      t.dyed += d.dyed;
      t.responses += d.responses;
      t.errors += d.errors;
    }
  }
  return [...totals.values()];
}

async function upsertCoverage(tx: Tx, coverage: Map<string, CoverageDelta>): Promise<void> {
  await bulkInsert(
    tx,
    "coverage",
    coverageColumns,
    [...coverage.values()],
    sql`on conflict (release_id, caller, callee, bucket_start, source) do update set
      expected = coverage.expected + excluded.expected, dyed = coverage.dyed + excluded.dyed,
      responses = coverage.responses + excluded.responses, errors = coverage.errors + excluded.errors`,
  );
  await bulkInsert(
    tx,
    "coverage_totals",
    totalColumns,
    totalsOf(coverage.values()),
    sql`on conflict (release_id, caller, callee, source) do update set
      expected = coverage_totals.expected + excluded.expected, dyed = coverage_totals.dyed + excluded.dyed,
      responses = coverage_totals.responses + excluded.responses, errors = coverage_totals.errors + excluded.errors`,
  );
}

type RangeRow = SeqRange & { agentId: string };
const rangeColumns = [
  text<RangeRow>("agent_id", (r) => r.agentId),
  big<RangeRow>("lo", (r) => r.lo),
  big<RangeRow>("hi", (r) => r.hi),
];

async function writeDelivery(tx: Tx, result: FoldResult, state: FoldState): Promise<void> {
  const agents = [...result.applied.keys()];
  if (agents.length === 0) return;
  await tx.delete(schema.agentSeqRanges).where(inArray(schema.agentSeqRanges.agentId, agents));
  await bulkInsert(
    tx,
    "agent_seq_ranges",
    rangeColumns,
    agents.flatMap((agentId) =>
      (state.ranges.get(agentId) ?? []).map((r) => ({ agentId, lo: r.lo, hi: r.hi })),
    ),
  );
  const d = schema.agentDelivery;
  await tx
    .insert(d)
    .values(
      agents.map((agentId) => {
        const ranges = state.ranges.get(agentId) ?? [];
        const applied = result.applied.get(agentId)!;
        return {
          agentId,
          events: applied.events,
          duplicates: applied.duplicates,
          maxSeq: ranges.at(-1)?.hi ?? 0n,
        };
      }),
    )
    .onConflictDoUpdate({
      target: d.agentId,
      set: {
        events: sql`${d.events} + excluded.events`,
        duplicates: sql`${d.duplicates} + excluded.duplicates`,
        maxSeq: sql`excluded.max_seq`,
      },
    });
}

/**
 * Before the dye lock: the batch's pending rows and trace hops (no other batch writes a row of these events:
 * the sequence guard applies each `(agent_id, seq)` once, and these tables have no other key) and its agents'
 * delivery (their seq range rows are locked by this transaction since the fold loaded them).
 */
export async function writeOwnRows(
  tx: Tx,
  result: FoldResult,
  state: FoldState,
  pending: readonly PendingRow[],
): Promise<void> {
  const raw = rawTransaction(tx);
  await copyIn(raw, "undyed_hop_requests", PENDING_COLUMNS, await pendingRows(pending));
  await copyIn(raw, "trace_hops", TRACE_HOP_COLUMNS, await traceHopRows(result.traceHops));
  await writeDelivery(tx, result, state);
}

/**
 * Moves stored entries back to an earlier dyed event of their trace (trace id → ms): the ones this fold saw
 * before their stored time, and its own entries dropped for another transaction's, which may be later.
 * Rare (a trace's dyed events folded out of time order), and commutative: the earliest wins whatever the
 * order.
 */
async function moveEntriesBack(raw: TransactionSql, earlier: ReadonlyMap<string, number>): Promise<void> {
  if (earlier.size === 0) return;
  const ids = [...earlier.keys()];
  const times = ids.map((id) => new Date(earlier.get(id)!).toISOString());
  await withIndexProbes(raw, () =>
    raw`
      update cohort_traces c set entered_at = v.at::timestamptz
      from unnest(${ids}::text[], ${times}::text[]) as v(trace_id, at)
      where c.trace_id = v.trace_id and v.at::timestamptz < c.entered_at`.execute(),
  );
}

/** `result.earlier`, and the fold's own entries that another transaction's entry replaced. */
function entriesToMoveBack(result: FoldResult, entered: readonly EnteredTrace[]): Map<string, number> {
  const earlier = new Map(result.earlier);
  if (entered.length === result.enteredTraces.length) return earlier;
  const written = new Set(entered.map((e) => e.traceId));
  for (const e of result.enteredTraces) {
    if (written.has(e.traceId)) continue;
    const ms = e.at.getTime();
    earlier.set(e.traceId, Math.min(ms, earlier.get(e.traceId) ?? ms));
  }
  return earlier;
}

/**
 * Under the dye lock: stored pending rows of `take` become misses and timeline hops, `entered` become cohort
 * entries (none can conflict: the lock keeps any other transaction from adding one), and the coverage deltas
 * are added.
 */
export async function writeSharedRows(
  tx: Tx,
  ids: ServiceIdentity,
  result: FoldResult,
  entered: readonly EnteredTrace[],
  take: readonly TraceRelease[],
): Promise<void> {
  const raw = rawTransaction(tx);
  const taking = takeStoredPending(raw, take);
  const cohort = cohortRows(entered);
  const hops = countStoredMisses(result, ids, take, await taking);
  await copyIn(raw, "cohort_traces", COHORT_COLUMNS, cohort);
  await moveEntriesBack(raw, entriesToMoveBack(result, entered));
  await copyIn(raw, "trace_hops", TRACE_HOP_COLUMNS, await traceHopRows(hops));
  await upsertCoverage(tx, result.coverage);
}
