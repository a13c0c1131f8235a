// One Kafka batch (one partition) → one Postgres transaction: lock the partition's stored offset, skip what
// was applied before (the position guard), decode and apply the rest, store the next offset, commit.
// Messages that fail to decode or apply are returned for the dead-letter topic and counted in the same
// transaction, so the count is exact whatever happens to the DLQ produce.

import { TOPICS } from "@indigo/bus";
import type { Database } from "@indigo/db";
import { AgentStatusSchema, fromBinary, ReleaseEventSchema } from "@indigo/proto";
import { EvolveError } from "@indigo/release";
import { applyDye, prepareDye } from "./apply-dye.ts";
import type { CohortFilter } from "./cohort-filter.ts";
import { applyAgentStatus } from "./fold/agents.ts";
import { applyReleaseEvent } from "./fold/releases.ts";
import { errorText, isMessageFault, MessageFault, rootCauseText } from "./message-fault.ts";
import type { ServiceIdentity } from "./service-identity.ts";
import { addCounter, lockOffset, storeOffset, type Tx } from "./store.ts";
import type { Retention } from "./write/retention.ts";

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
  /** Swept inside the dye transactions; absent or empty: everything is kept. */
  readonly retention?: readonly Retention[];
  /** Shared by the process's dye transactions (apply-dye.ts); absent: every trace id is looked up. */
  readonly cohortFilter?: CohortFilter;
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

async function applyOneByOne(
  what: string,
  tx: Tx,
  messages: InMessage[],
  dead: DeadLetter[],
  apply: (m: InMessage, savepoint: Tx) => Promise<void>,
): Promise<void> {
  for (const m of messages) {
    // A savepoint per message: a refused one rolls back alone and the batch goes on. Anything else fails
    // the transaction, and the batch is applied again.
    try {
      await tx.transaction((savepoint) => apply(m, savepoint));
    } catch (error) {
      if (!isMessageFault(error)) throw error;
      const reason =
        error instanceof MessageFault ? error.message : `unappliable ${what}: ${rootCauseText(error)}`;
      dead.push({ message: m, error: reason });
    }
  }
}

function decode<T>(what: string, parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    throw new MessageFault(`undecodable ${what}: ${errorText(error)}`);
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
  // Decoding needs no database: done before the transaction, it overlaps another partition's writes.
  const dye = topic === ctx.topics.dye ? await prepareDye(messages) : undefined;
  return ctx.db.transaction(async (tx) => {
    const stored = await lockOffset(tx, ctx.group, topic, partition);
    const fresh = messages.filter((m) => m.offset >= stored);
    const dead: DeadLetter[] = [];
    if (dye) {
      await applyDye(ctx, tx, dye, stored, dead);
    } else if (topic === ctx.topics.release) {
      await applyOneByOne("ReleaseEvent", tx, fresh, dead, async (m, sp) => {
        const event = decode("ReleaseEvent", () =>
          fromBinary(ReleaseEventSchema, m.value ?? new Uint8Array()),
        );
        try {
          await applyReleaseEvent(sp, event);
        } catch (error) {
          if (error instanceof EvolveError)
            throw new MessageFault(`unappliable ReleaseEvent: ${error.message}`);
          throw error;
        }
      });
    } else if (topic === ctx.topics.agent) {
      await applyOneByOne("AgentStatus", tx, fresh, dead, async (m, sp) => {
        const status = decode("AgentStatus", () => {
          const s = fromBinary(AgentStatusSchema, m.value ?? new Uint8Array());
          if (s.agentId === "") throw new MessageFault("AgentStatus without agent_id");
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
