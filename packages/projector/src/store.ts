// Writes a batch's projection changes inside the caller's transaction: multi-row upserts, one statement per
// table, so throughput comes from the database and not from round trips.
import { type Database, schema } from "@indigo/db";
import { and, eq, inArray, sql } from "drizzle-orm";
import type { FoldResult, FoldState, PendingRow } from "./fold/dye-events.ts";
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
  for (const part of chunks(traceIds)) {
    const rows = await tx
      .select({ traceId: schema.cohortTraces.traceId, releaseId: schema.cohortTraces.releaseId })
      .from(schema.cohortTraces)
      .where(inArray(schema.cohortTraces.traceId, part));
    for (const r of rows) cohort.set(r.traceId, r.releaseId);
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

export async function writeDyeResult(
  tx: Tx,
  result: FoldResult,
  state: FoldState,
  pending: PendingRow[],
): Promise<void> {
  await resolveStoredPending(tx, result);
  for (const part of chunks(result.enteredTraces)) {
    await tx
      .insert(schema.cohortTraces)
      .values(part.map((t) => ({ traceId: t.traceId, releaseId: t.releaseId, dye: t.dye, enteredAt: t.at })))
      .onConflictDoNothing();
  }
  for (const part of chunks(pending)) {
    await tx.insert(schema.undyedHopRequests).values(part).onConflictDoNothing();
  }
  const c = schema.coverage;
  for (const part of chunks([...result.coverage.values()])) {
    await tx
      .insert(c)
      .values(part)
      .onConflictDoUpdate({
        target: [c.releaseId, c.caller, c.callee, c.bucketStart, c.source],
        set: {
          expected: sql`${c.expected} + excluded.expected`,
          dyed: sql`${c.dyed} + excluded.dyed`,
          responses: sql`${c.responses} + excluded.responses`,
          errors: sql`${c.errors} + excluded.errors`,
        },
      });
  }
  for (const part of chunks(result.traceHops)) {
    await tx.insert(schema.traceHops).values(part).onConflictDoNothing();
  }
  for (const [agentId, applied] of result.applied) {
    const ranges = state.ranges.get(agentId) ?? [];
    await tx.delete(schema.agentSeqRanges).where(eq(schema.agentSeqRanges.agentId, agentId));
    for (const part of chunks(ranges)) {
      await tx.insert(schema.agentSeqRanges).values(part.map((r) => ({ agentId, lo: r.lo, hi: r.hi })));
    }
    const maxSeq = ranges.length > 0 ? ranges[ranges.length - 1]!.hi : 0n;
    const d = schema.agentDelivery;
    await tx
      .insert(d)
      .values({ agentId, events: applied.events, duplicates: applied.duplicates, maxSeq })
      .onConflictDoUpdate({
        target: d.agentId,
        set: {
          events: sql`${d.events} + excluded.events`,
          duplicates: sql`${d.duplicates} + excluded.duplicates`,
          maxSeq,
        },
      });
  }
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
