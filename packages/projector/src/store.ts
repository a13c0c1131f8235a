// The projector's bookkeeping inside a batch's transaction: the partition's stored offset, the counters, and
// the state folding dye events needs. The projection writes are in write/.
import { schema } from "@indigo/db";
import { and, eq, inArray, sql } from "drizzle-orm";
import type { CohortFilter } from "./cohort-filter.ts";
import type { FoldState } from "./fold/dye-events.ts";
import type { SeqRange } from "./sequence.ts";
import { rawTransaction, type Tx, withIndexProbes } from "./write/raw-tx.ts";

export type { Tx } from "./write/raw-tx.ts";

/** What a dye fold needs state for: its agents (sorted: the lock order), trace ids and dyes. */
export interface FoldKeys {
  readonly agents: readonly string[];
  readonly traces: readonly string[];
  readonly dyes: readonly number[];
}

async function loadRanges(tx: Tx, agents: readonly string[]): Promise<Map<string, SeqRange[]>> {
  const ranges = new Map<string, SeqRange[]>();
  if (agents.length === 0) return ranges;
  const rows = await tx
    .select()
    .from(schema.agentSeqRanges)
    .where(inArray(schema.agentSeqRanges.agentId, [...agents]))
    .orderBy(schema.agentSeqRanges.agentId, schema.agentSeqRanges.lo)
    .for("update");
  for (const r of rows) {
    const list = ranges.get(r.agentId) ?? [];
    list.push({ lo: r.lo, hi: r.hi });
    ranges.set(r.agentId, list);
  }
  return ranges;
}

async function loadReleases(tx: Tx, dyes: readonly number[]): Promise<Map<number, string>> {
  const releaseByDye = new Map<number, string>();
  if (dyes.length === 0) return releaseByDye;
  // A dye is unique among live releases; an ended release's dye may be reused, the newest release wins.
  const rows = await tx
    .select({ id: schema.releases.id, dye: schema.releases.dye })
    .from(schema.releases)
    .where(inArray(schema.releases.dye, [...dyes]))
    .orderBy(schema.releases.createdAt);
  for (const r of rows) releaseByDye.set(r.dye, r.id);
  return releaseByDye;
}

interface StoredCohort {
  readonly cohort: Map<string, string>;
  readonly enteredMs: Map<string, number>;
}

async function loadCohort(tx: Tx, traces: readonly string[]): Promise<StoredCohort> {
  const stored: StoredCohort = { cohort: new Map(), enteredMs: new Map() };
  if (traces.length === 0) return stored;
  // One statement whatever the count: the ids travel as one JSON parameter. Entry times come back as epoch
  // milliseconds: the postgres.js client under drizzle parses no timestamps.
  const rows = await tx.execute<{ trace_id: string; release_id: string; entered_ms: number }>(
    sql`select trace_id, release_id, (extract(epoch from entered_at) * 1000)::float8 as entered_ms
        from cohort_traces where trace_id in (select json_array_elements_text(${JSON.stringify(traces)}::json))`,
  );
  for (const r of rows) {
    stored.cohort.set(r.trace_id, r.release_id);
    stored.enteredMs.set(r.trace_id, r.entered_ms);
  }
  return stored;
}

/** The highest cohort entry position committed (0 when none). */
export async function cohortPosition(tx: Tx): Promise<bigint> {
  const [row] = await tx.execute<{ position: string }>(
    sql`select coalesce(max(position), 0)::text as position from cohort_traces`,
  );
  return BigInt(row?.position ?? 0);
}

/**
 * Loads what folding needs, locking the agents' seq ranges; the reads are pipelined. Without the dye lock
 * the cohort read is a snapshot: `cohortPosition` is read before it, so everything that entered since is
 * found by `cohortEnteredSince` (a trace entered in between may show in both, which is harmless). With a
 * filter, only the ids it may hold are looked up: the others have no entry up to the position it covers,
 * which is then the snapshot's.
 */
export async function loadFoldState(
  tx: Tx,
  keys: FoldKeys,
  filter?: CohortFilter,
): Promise<FoldState & { cohortPosition: bigint }> {
  // All at once and awaited together: the first failure is the one reported (a value the database refuses,
  // which makes the batch's messages dead letters one by one), not the aborted transaction the rest then see.
  const [ranges, releaseByDye, [position, { cohort, enteredMs }]] = await Promise.all([
    loadRanges(tx, keys.agents),
    loadReleases(tx, keys.dyes),
    filter
      ? filteredCohort(tx, keys.traces, filter)
      : Promise.all([cohortPosition(tx), loadCohort(tx, keys.traces)]),
  ]);
  return { ranges, releaseByDye, cohort, enteredMs, cohortPosition: position };
}

/** The entries of the ids `filter` may hold, as of the position it covers then. */
async function filteredCohort(
  tx: Tx,
  traces: readonly string[],
  filter: CohortFilter,
): Promise<[bigint, StoredCohort]> {
  const position = await filter.catchUp(tx);
  return [
    position,
    await loadCohort(
      tx,
      traces.filter((id) => filter.mightHold(id)),
    ),
  ];
}

/**
 * Traces that entered a cohort after `position`, with their release (call under the dye lock). Through the
 * position index whatever the statistics say: without them the planner scans the whole table, under the lock.
 */
export async function cohortEnteredSince(tx: Tx, position: bigint): Promise<Map<string, string>> {
  const raw = rawTransaction(tx);
  const rows = await withIndexProbes(raw, () =>
    raw<{ trace_id: string; release_id: string }[]>`
      select trace_id, release_id from cohort_traces where position > ${String(position)}::bigint`.execute(),
  );
  return new Map(rows.map((r) => [r.trace_id, r.release_id]));
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
