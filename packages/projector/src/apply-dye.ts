// The dye topic's part of a batch: decode (before the transaction, so it overlaps another partition's
// writes); load the state, fold and write the batch's own rows in parallel with other batches; then, under
// the dye lock, reconcile with the cohort entries committed meanwhile and write the shared rows.
import { sql } from "drizzle-orm";
import type { DeadLetter, InMessage } from "./apply-batch.ts";
import type { CohortFilter } from "./cohort-filter.ts";
import { type DyeBatchView, decodeDyeBatch } from "./decode/dye-batch.ts";
import {
  type FoldResult,
  type FoldState,
  foldDyeBatch,
  newFoldResult,
  type PendingRow,
  resolvePendingInBatch,
} from "./fold/dye-events.ts";
import { allEntered, reconcile } from "./fold/reconcile.ts";
import { errorText, isMessageFault, rootCauseText } from "./message-fault.ts";
import type { ServiceIdentity } from "./service-identity.ts";
import { addCounter, cohortEnteredSince, type FoldKeys, loadFoldState, type Tx } from "./store.ts";
import { sliced } from "./turns.ts";
import { writeOwnRows, writeSharedRows } from "./write/dye-result.ts";
import { rawTransaction } from "./write/raw-tx.ts";
import type { Retention } from "./write/retention.ts";

export interface DecodedDye {
  readonly message: InMessage;
  readonly batch?: DyeBatchView;
  readonly error?: string;
}

/** A partition batch decoded, with the keys of the state its fold needs (over every decodable message). */
export interface PreparedDye {
  readonly decoded: DecodedDye[];
  readonly keys: FoldKeys;
}

function decodeOne(message: InMessage): DecodedDye {
  try {
    const batch = decodeDyeBatch(message.value ?? new Uint8Array());
    if (batch.agentId === "") throw new Error("DyeEventBatch without agent_id");
    return { message, batch };
  } catch (error) {
    return { message, error: `undecodable DyeEventBatch: ${errorText(error)}` };
  }
}

/** The keys of the state folding `batches` needs. */
async function foldKeys(batches: readonly DyeBatchView[]): Promise<FoldKeys> {
  const agents = new Set<string>();
  const traces = new Set<string>();
  const dyes = new Set<number>();
  await sliced(batches, (batch) => {
    agents.add(batch.agentId);
    for (const e of batch.events) {
      if (e.traceId !== "") traces.add(e.traceId);
      if (e.dye !== 0) dyes.add(e.dye);
    }
  });
  return { agents: [...agents].sort(), traces: [...traces], dyes: [...dyes] };
}

/** Everything that needs no database, done before the transaction: it overlaps another batch's writes. */
export async function prepareDye(messages: readonly InMessage[]): Promise<PreparedDye> {
  const decoded: DecodedDye[] = [];
  await sliced(messages, (m) => decoded.push(decodeOne(m)));
  const batches: DyeBatchView[] = [];
  for (const { batch } of decoded) if (batch) batches.push(batch);
  return { decoded, keys: await foldKeys(batches) };
}

// Cohort entries, taken pending rows and coverage are written by one transaction at a time, whatever the
// partition or the projector instance: an undyed request stored as pending by one while another commits its
// trace's cohort entry would otherwise be seen by neither, and the miss lost. Transaction-scoped: released
// at commit or rollback. Everything before it (loading, folding, the batch's own rows) runs in parallel.
export const DYE_LOCK = 0x696e6469676f01n; // "indigo" 1

export interface DyeFoldOptions {
  readonly group: string;
  readonly identity: ServiceIdentity;
  readonly bucketMs: number;
  readonly retention?: readonly Retention[];
  /** Trace ids it does not hold are not looked up in cohort_traces; absent: every id is. */
  readonly cohortFilter?: CohortFilter;
}

interface Folded {
  readonly state: FoldState & { cohortPosition: bigint };
  readonly result: FoldResult;
  readonly pending: PendingRow[];
}

async function foldAndWriteOwn(
  opts: DyeFoldOptions,
  tx: Tx,
  batches: readonly DyeBatchView[],
  keys: FoldKeys,
  filter: CohortFilter | undefined,
): Promise<Folded> {
  const state = await loadFoldState(tx, keys, filter);
  const result = newFoldResult();
  await sliced(batches, (batch) => foldDyeBatch(batch, state, opts.identity, opts.bucketMs, result));
  const pending = resolvePendingInBatch(result, state);
  await writeOwnRows(tx, result, state, pending);
  return { state, result, pending };
}

/** Folds and writes `batches`: their own rows beside other transactions, the shared ones under the lock. */
async function foldAndWrite(
  opts: DyeFoldOptions,
  tx: Tx,
  batches: readonly DyeBatchView[],
  keys: FoldKeys,
): Promise<void> {
  await tx.execute(sql`savepoint dye_fold`);
  let folded = await foldAndWriteOwn(opts, tx, batches, keys, opts.cohortFilter);
  await tx.execute(sql`select pg_advisory_xact_lock(${DYE_LOCK})`);
  const since = await cohortEnteredSince(tx, folded.state.cohortPosition);
  let plan = reconcile(folded.result.enteredTraces, folded.pending, since);
  if (plan.refold) {
    // Rolling back to the savepoint gives up the lock taken after it too (measured: another session takes
    // it at once): taken again, so that this fold runs under it and its snapshot is exact. Without the
    // filter: the position it covers may be a read's from before the last holder committed.
    await tx.execute(sql`rollback to savepoint dye_fold`);
    await tx.execute(sql`select pg_advisory_xact_lock(${DYE_LOCK})`);
    folded = await foldAndWriteOwn(opts, tx, batches, keys, undefined);
    plan = allEntered(folded.result.enteredTraces);
  }
  const { result } = folded;
  await writeSharedRows(tx, opts.identity, result, plan.entered, plan.take);
  const newestBucketMs = Math.max(...result.buckets.keys());
  for (const r of opts.retention ?? []) await r.sweep(rawTransaction(tx), newestBucketMs);
  const duplicates = [...result.applied.values()].reduce((n, a) => n + a.duplicates, 0);
  await addCounter(tx, opts.group, "dye_events_duplicate", duplicates);
  await addCounter(tx, opts.group, "dye_events_unknown_dye", result.unknownDye);
}

/**
 * Folds the batch's messages from `fromOffset` on (the position guard) and writes. When something in them
 * cannot be applied, they are applied again one at a time, and those that fail alone are dead letters.
 */
export async function applyDye(
  opts: DyeFoldOptions,
  tx: Tx,
  prepared: PreparedDye,
  fromOffset: bigint,
  dead: DeadLetter[],
): Promise<void> {
  const fresh: { message: InMessage; batch: DyeBatchView }[] = [];
  for (const d of prepared.decoded) {
    if (d.message.offset < fromOffset) continue;
    if (d.batch) fresh.push({ message: d.message, batch: d.batch });
    else dead.push({ message: d.message, error: d.error ?? "undecodable DyeEventBatch" });
  }
  if (fresh.length === 0) return;
  // Savepoints of the client's own (nested transactions): postgres.js remembers a failed query of a
  // transaction and throws it at commit, whatever the caller did about it, unless it ran in a savepoint
  // scope that rolled back.
  try {
    await tx.transaction((savepoint) =>
      foldAndWrite(
        opts,
        savepoint,
        fresh.map((f) => f.batch),
        prepared.keys,
      ),
    );
    return;
  } catch (error) {
    if (!isMessageFault(error)) throw error;
  }
  for (const { message, batch } of fresh) {
    try {
      const keys = await foldKeys([batch]);
      await tx.transaction((savepoint) => foldAndWrite(opts, savepoint, [batch], keys));
    } catch (error) {
      if (!isMessageFault(error)) throw error;
      dead.push({ message, error: `unappliable DyeEventBatch: ${rootCauseText(error)}` });
    }
  }
}
