// Writes a batch's projection changes inside the caller's transaction: multi-row upserts, one statement per
// table, so throughput comes from the database and not from round trips.
import { type Database, schema } from "@indigo/db";
import { and, eq, inArray, sql } from "drizzle-orm";
import { big, bulkInsert, int, text, time } from "./bulk.ts";
import type { CoverageDelta, FoldResult, FoldState, PendingRow, TraceHopRow } from "./fold/dye-events.ts";
import { bump } from "./fold/dye-events.ts";
import type { SeqRange } from "./sequence.ts";

export type Tx = Parameters<Parameters<Database["transaction"]>[0]>[0];

const CHUNK = 2000;

function chunks<T>(rows: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < rows.length; i += CHUNK) out.push(rows.slice(i, i + CHUNK));
  return out;
}

/** Loads what folding these agents' and traces' events needs, locking the agents' seq ranges. */
export async function loadFoldState(
  tx: Tx,
  agentIds: string[],
  traceIds: string[],
  dyes: number[],
): Promise<FoldState> {
  const ranges = new Map<string, SeqRange[]>();
  if (agentIds.length > 0) {
    const rows = await tx
      .select()
      .from(schema.agentSeqRanges)
      .where(inArray(schema.agentSeqRanges.agentId, agentIds))
      .orderBy(schema.agentSeqRanges.agentId, schema.agentSeqRanges.lo)
      .for("update");
    for (const r of rows) {
      const list = ranges.get(r.agentId) ?? [];
      list.push({ lo: r.lo, hi: r.hi });
      ranges.set(r.agentId, list);
    }
  }
  const releaseByDye = new Map<number, string>();
  if (dyes.length > 0) {
    // A dye is unique among live releases; an ended release's dye may be reused, the newest release wins.
    const rows = await tx
      .select({ id: schema.releases.id, dye: schema.releases.dye })
      .from(schema.releases)
      .where(inArray(schema.releases.dye, dyes))
      .orderBy(schema.releases.createdAt);
    for (const r of rows) releaseByDye.set(r.dye, r.id);
  }
  const cohort = new Map<string, string>();
  if (traceIds.length > 0) {
    // One statement whatever the count: the ids travel as one JSON parameter.
    const rows = await tx.execute<{ trace_id: string; release_id: string }>(
      sql`select trace_id, release_id from cohort_traces
          where trace_id in (select json_array_elements_text(${JSON.stringify(traceIds)}::json))`,
    );
    for (const r of rows) cohort.set(r.trace_id, r.release_id);
  }
  return { ranges, releaseByDye, cohort };
}

async function resolveStoredPending(tx: Tx, result: FoldResult): Promise<void> {
  const entered = new Map(result.enteredTraces.map((t) => [t.traceId, t.releaseId]));
  for (const part of chunks([...entered.keys()])) {
    const rows: PendingRow[] = await tx
      .delete(schema.undyedHopRequests)
      .where(inArray(schema.undyedHopRequests.traceId, part))
      .returning();
    for (const p of rows) {
      bump(
        result,
        {
          releaseId: entered.get(p.traceId)!,
          caller: p.caller,
          callee: p.callee,
          bucketStart: p.bucketStart,
          source: "none",
        },
        { expected: 1 },
      );
    }
  }
}

const cohortTraceColumns = [
  text<FoldResult["enteredTraces"][number]>("trace_id", (t) => t.traceId),
  text<FoldResult["enteredTraces"][number]>("release_id", (t) => t.releaseId),
  int<FoldResult["enteredTraces"][number]>("dye", (t) => t.dye),
  time<FoldResult["enteredTraces"][number]>("entered_at", (t) => t.at),
];
const pendingColumns = [
  text<PendingRow>("trace_id", (p) => p.traceId),
  text<PendingRow>("agent_id", (p) => p.agentId),
  big<PendingRow>("seq", (p) => p.seq),
  text<PendingRow>("caller", (p) => p.caller),
  text<PendingRow>("callee", (p) => p.callee),
  time<PendingRow>("bucket_start", (p) => p.bucketStart),
];
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

const traceHopColumns = [
  text<TraceHopRow>("trace_id", (h) => h.traceId),
  text<TraceHopRow>("agent_id", (h) => h.agentId),
  big<TraceHopRow>("seq", (h) => h.seq),
  time<TraceHopRow>("at", (h) => h.at),
  big<TraceHopRow>("ts_ns", (h) => h.tsNs),
  text<TraceHopRow>("service", (h) => h.service),
  text<TraceHopRow>("local", (h) => h.local),
  text<TraceHopRow>("peer", (h) => h.peer),
  big<TraceHopRow>("cookie", (h) => h.cookie),
  int<TraceHopRow>("pid", (h) => h.pid),
  int<TraceHopRow>("tid", (h) => h.tid),
  text<TraceHopRow>("kind", (h) => h.kind),
  text<TraceHopRow>("direction", (h) => h.direction),
  int<TraceHopRow>("dye", (h) => h.dye),
  text<TraceHopRow>("source", (h) => h.source),
  text<TraceHopRow>("method", (h) => h.method),
  text<TraceHopRow>("path", (h) => h.path),
  int<TraceHopRow>("status", (h) => h.status),
];
type RangeRow = SeqRange & { agentId: string };
const rangeColumns = [
  text<RangeRow>("agent_id", (r) => r.agentId),
  big<RangeRow>("lo", (r) => r.lo),
  big<RangeRow>("hi", (r) => r.hi),
];

export async function writeDyeResult(
  tx: Tx,
  result: FoldResult,
  state: FoldState,
  pending: PendingRow[],
): Promise<void> {
  await resolveStoredPending(tx, result);
  const nothing = sql`on conflict do nothing`;
  await bulkInsert(tx, "cohort_traces", cohortTraceColumns, result.enteredTraces, nothing);
  await bulkInsert(tx, "undyed_hop_requests", pendingColumns, pending);
  await bulkInsert(
    tx,
    "coverage",
    coverageColumns,
    [...result.coverage.values()],
    sql`on conflict (release_id, caller, callee, bucket_start, source) do update set
      expected = coverage.expected + excluded.expected, dyed = coverage.dyed + excluded.dyed,
      responses = coverage.responses + excluded.responses, errors = coverage.errors + excluded.errors`,
  );
  await bulkInsert(
    tx,
    "coverage_totals",
    totalColumns,
    totalsOf(result.coverage.values()),
    sql`on conflict (release_id, caller, callee, source) do update set
      expected = coverage_totals.expected + excluded.expected, dyed = coverage_totals.dyed + excluded.dyed,
      responses = coverage_totals.responses + excluded.responses, errors = coverage_totals.errors + excluded.errors`,
  );
  await bulkInsert(tx, "trace_hops", traceHopColumns, result.traceHops, nothing);
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

export async function addCounter(tx: Tx, group: string, name: string, by: number): Promise<void> {
  if (by === 0) return;
  const t = schema.projectorCounters;
  await tx
    .insert(t)
    .values({ consumerGroup: group, name, value: by })
    .onConflictDoUpdate({
      target: [t.consumerGroup, t.name],
      set: { value: sql`${t.value} + excluded.value` },
    });
}

/** The stored next offset of a partition, locked for the rest of the transaction (0 when never stored). */
export async function lockOffset(tx: Tx, group: string, topic: string, partition: number): Promise<bigint> {
  const o = schema.consumerOffsets;
  await tx.insert(o).values({ consumerGroup: group, topic, partition, nextOffset: 0n }).onConflictDoNothing();
  const [row] = await tx
    .select({ next: o.nextOffset })
    .from(o)
    .where(and(eq(o.consumerGroup, group), eq(o.topic, topic), eq(o.partition, partition)))
    .for("update");
  return row?.next ?? 0n;
}

export async function storeOffset(
  tx: Tx,
  group: string,
  topic: string,
  partition: number,
  next: bigint,
): Promise<void> {
  const o = schema.consumerOffsets;
  await tx
    .update(o)
    .set({ nextOffset: next, updatedAt: new Date() })
    .where(and(eq(o.consumerGroup, group), eq(o.topic, topic), eq(o.partition, partition)));
}
