// The dye topic's part of a batch: decode (before the transaction, so it overlaps another partition's
// writes), then under the dye lock load the state, fold, write.
import { sql } from "drizzle-orm";
import type { DeadLetter, InMessage } from "./apply-batch.ts";
import { type DyeBatchView, decodeDyeBatch } from "./decode/dye-batch.ts";
import { foldDyeBatch, newFoldResult, resolvePendingInBatch } from "./fold/dye-events.ts";
import type { ServiceIdentity } from "./service-identity.ts";
import { addCounter, type FoldKeys, loadFoldState, type Tx } from "./store.ts";
import { writeDyeResult } from "./write/dye-result.ts";
import { rawTransaction } from "./write/raw-tx.ts";
import type { UndyedRetention } from "./write/retention.ts";

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

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
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

/** Everything that needs no database, done before the transaction: it overlaps another batch's writes. */
export function prepareDye(messages: readonly InMessage[]): PreparedDye {
  const decoded = messages.map(decodeOne);
  const agents = new Set<string>();
  const traces = new Set<string>();
  const dyes = new Set<number>();
  for (const { batch } of decoded) {
    if (!batch) continue;
    agents.add(batch.agentId);
    for (const e of batch.events) {
      if (e.traceId !== "") traces.add(e.traceId);
      if (e.dye !== 0) dyes.add(e.dye);
    }
  }
  return {
    decoded,
    keys: {
      agents: [...agents].sort(),
      tracesJson: traces.size > 0 ? JSON.stringify([...traces]) : undefined,
      dyes: [...dyes],
    },
  };
}

// One transaction at a time folds dye events, whatever the partition or the projector instance: an undyed
// request stored as pending by one while another commits its trace's cohort entry would otherwise see
// neither the other's row, and the miss would be lost. Transaction-scoped: released at commit or rollback.
const DYE_LOCK = 0x696e6469676f01n; // "indigo" 1

export interface DyeFoldOptions {
  readonly group: string;
  readonly identity: ServiceIdentity;
  readonly bucketMs: number;
  readonly undyedRetention?: UndyedRetention;
}

/** Folds the batch's messages from `fromOffset` on (the position guard) under the dye lock, and writes. */
export async function applyDye(
  opts: DyeFoldOptions,
  tx: Tx,
  prepared: PreparedDye,
  fromOffset: bigint,
  dead: DeadLetter[],
): Promise<void> {
  const batches: DyeBatchView[] = [];
  for (const d of prepared.decoded) {
    if (d.message.offset < fromOffset) continue;
    if (d.batch) batches.push(d.batch);
    else dead.push({ message: d.message, error: d.error ?? "undecodable DyeEventBatch" });
  }
  if (batches.length === 0) return;
  await tx.execute(sql`select pg_advisory_xact_lock(${DYE_LOCK})`);
  const state = await loadFoldState(tx, prepared.keys);
  const result = newFoldResult();
  for (const batch of batches) foldDyeBatch(batch, state, opts.identity, opts.bucketMs, result);
  const pending = resolvePendingInBatch(result, state);
  await writeDyeResult(tx, result, state, pending);
  await opts.undyedRetention?.sweep(rawTransaction(tx), Math.max(...result.buckets.keys()));
  const duplicates = [...result.applied.values()].reduce((n, a) => n + a.duplicates, 0);
  await addCounter(tx, opts.group, "dye_events_duplicate", duplicates);
  await addCounter(tx, opts.group, "dye_events_unknown_dye", result.unknownDye);
}
