// One Kafka batch (one partition) → one Postgres transaction: lock the partition's stored offset, skip what
// was applied before (the position guard), decode and apply the rest, store the next offset, commit.
// Messages that fail to decode or apply are returned for the dead-letter topic and counted in the same
// transaction, so the count is exact whatever happens to the DLQ produce.

import { TOPICS } from "@indigo/bus";
import type { Database } from "@indigo/db";
import {
  AgentStatusSchema,
  type DyeEventBatch,
  DyeEventBatchSchema,
  fromBinary,
  ReleaseEventSchema,
} from "@indigo/proto";
import { EvolveError } from "@indigo/release";
import { applyAgentStatus } from "./fold/agents.ts";
import { foldDyeBatch, newFoldResult, resolvePendingInBatch } from "./fold/dye-events.ts";
import { applyReleaseEvent } from "./fold/releases.ts";
import type { ServiceIdentity } from "./service-identity.ts";
import { addCounter, loadFoldState, lockOffset, storeOffset, type Tx, writeDyeResult } from "./store.ts";

export interface InMessage {
  readonly offset: bigint;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
}

export interface DeadLetter {
  readonly message: InMessage;
  readonly error: string;
}

export interface BatchOutcome {
  readonly applied: number;
  readonly skipped: number;
  readonly deadLetters: DeadLetter[];
  readonly nextOffset: bigint;
}

export interface ApplyContext {
  readonly db: Database;
  readonly group: string;
  readonly identity: ServiceIdentity;
  readonly bucketMs: number;
  readonly topics: ProjectorTopics;
}

/** The topics a projector reads and writes; tests run on topics of their own. */
export interface ProjectorTopics {
  readonly dye: string;
  readonly agent: string;
  readonly release: string;
  readonly dlq: string;
}

export const CONTRACT_TOPICS: ProjectorTopics = {
  dye: TOPICS.dye,
  agent: TOPICS.agent,
  release: TOPICS.release,
  dlq: TOPICS.dlq,
};

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

async function applyDye(ctx: ApplyContext, tx: Tx, messages: InMessage[], dead: DeadLetter[]): Promise<void> {
  const batches: DyeEventBatch[] = [];
  for (const m of messages) {
    try {
      const batch = fromBinary(DyeEventBatchSchema, m.value ?? new Uint8Array());
      if (batch.agentId === "") throw new Error("DyeEventBatch without agent_id");
      batches.push(batch);
    } catch (error) {
      dead.push({ message: m, error: `undecodable DyeEventBatch: ${errorText(error)}` });
    }
  }
  const agents = [...new Set(batches.map((b) => b.agentId))].sort();
  const traces = [...new Set(batches.flatMap((b) => b.events.map((e) => e.traceId)).filter((t) => t !== ""))];
  const dyes = [...new Set(batches.flatMap((b) => b.events.map((e) => e.dye)).filter((d) => d !== 0))];
  const state = await loadFoldState(tx, agents, traces, dyes);
  const result = newFoldResult();
  for (const batch of batches) foldDyeBatch(batch, state, ctx.identity, ctx.bucketMs, result);
  const pending = resolvePendingInBatch(result, state);
  await writeDyeResult(tx, result, state, pending);
  const duplicates = [...result.applied.values()].reduce((n, a) => n + a.duplicates, 0);
  await addCounter(tx, ctx.group, "dye_events_duplicate", duplicates);
  await addCounter(tx, ctx.group, "dye_events_unknown_dye", result.unknownDye);
}

async function applyOneByOne(
  tx: Tx,
  messages: InMessage[],
  dead: DeadLetter[],
  apply: (m: InMessage, savepoint: Tx) => Promise<void>,
): Promise<void> {
  for (const m of messages) {
    // A savepoint per message: a refused one rolls back alone and the batch goes on.
    try {
      await tx.transaction((savepoint) => apply(m, savepoint));
    } catch (error) {
      dead.push({ message: m, error: errorText(error) });
    }
  }
}

function decode<T>(what: string, parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    throw new Error(`undecodable ${what}: ${errorText(error)}`);
  }
}

/**
 * `sendDeadLetters` runs inside the transaction, before commit: a crash after it replays the batch and sends
 * them again (the DLQ is at-least-once), but a dead letter is never lost.
 */
export async function applyBatch(
  ctx: ApplyContext,
  topic: string,
  partition: number,
  messages: InMessage[],
  sendDeadLetters: (dead: DeadLetter[]) => Promise<void>,
): Promise<BatchOutcome> {
  return ctx.db.transaction(async (tx) => {
    const stored = await lockOffset(tx, ctx.group, topic, partition);
    const fresh = messages.filter((m) => m.offset >= stored);
    const dead: DeadLetter[] = [];
    if (topic === ctx.topics.dye) {
      await applyDye(ctx, tx, fresh, dead);
    } else if (topic === ctx.topics.release) {
      await applyOneByOne(tx, fresh, dead, async (m, sp) => {
        const event = decode("ReleaseEvent", () =>
          fromBinary(ReleaseEventSchema, m.value ?? new Uint8Array()),
        );
        try {
          await applyReleaseEvent(sp, event);
        } catch (error) {
          if (error instanceof EvolveError) throw new Error(`unappliable ReleaseEvent: ${error.message}`);
          throw error;
        }
      });
    } else if (topic === ctx.topics.agent) {
      await applyOneByOne(tx, fresh, dead, async (m, sp) => {
        const status = decode("AgentStatus", () => {
          const s = fromBinary(AgentStatusSchema, m.value ?? new Uint8Array());
          if (s.agentId === "") throw new Error("AgentStatus without agent_id");
          return s;
        });
        await applyAgentStatus(sp, status);
      });
    } else {
      for (const m of fresh) dead.push({ message: m, error: `no projection reads topic ${topic}` });
    }
    await addCounter(tx, ctx.group, "dead_letters", dead.length);
    if (dead.length > 0) await sendDeadLetters(dead);
    const last = messages.at(-1);
    const next = last && last.offset + 1n > stored ? last.offset + 1n : stored;
    await storeOffset(tx, ctx.group, topic, partition, next);
    return {
      applied: fresh.length - dead.length,
      skipped: messages.length - fresh.length,
      deadLetters: dead,
      nextOffset: next,
    };
  });
}
