// The projector process: a Kafka consumer group whose every batch goes through applyBatch. The database — not
// Kafka — says where to resume: nothing is committed to Kafka, so a fresh assignment starts at the log's
// beginning or wherever the seek on assignment puts it, never past the stored offset, and the position
// guard in applyBatch skips whatever was applied before. (Were Kafka's committed offset ever ahead of the
// database's, e.g. after `rebuild`, messages in between would be skipped for good.)
import { type Admin, type Kafka, keepConnecting, type Producer } from "@indigo/bus";
import type { Database } from "@indigo/db";
import { schema } from "@indigo/db";
import { and, eq } from "drizzle-orm";
import {
  type ApplyContext,
  applyBatch,
  type DeadLetter,
  type InMessage,
  type ProjectorTopics,
} from "./apply-batch.ts";
import { CohortFilter, DEFAULT_COHORT_FILTER_MAX_ENTRIES } from "./cohort-filter.ts";
import { rootCauseText } from "./message-fault.ts";
import { PartitionLanes } from "./partition-lanes.ts";
import type { ServiceIdentity } from "./service-identity.ts";
import {
  DEFAULT_TRACE_RETENTION_MS,
  DEFAULT_UNDYED_RETENTION_MS,
  projectionRetention,
} from "./write/retention.ts";

export interface ProjectorOptions {
  readonly kafka: Kafka;
  readonly db: Database;
  readonly group: string;
  readonly topics: ProjectorTopics;
  readonly identity: ServiceIdentity;
  readonly bucketMs: number;
  /** Window (ms, event time) after which undyed hop requests are deleted; 0 keeps them. Default 1 h. */
  readonly undyedRetentionMs?: number;
  /** Window (ms, event time) after which trace timelines and cohort entries are deleted; 0 keeps them.
   * Default 7 days. */
  readonly traceRetentionMs?: number;
  /** Cohort entries up to which trace ids are filtered before their lookup (cohort-filter.ts); 0: no filter.
   * Default DEFAULT_COHORT_FILTER_MAX_ENTRIES. */
  readonly cohortFilterMaxEntries?: number;
  readonly log?: (line: string) => void;
}

interface QueuedBatch {
  readonly topic: string;
  readonly partition: number;
  readonly messages: InMessage[];
}

export interface RunningProjector {
  readonly stop: () => Promise<void>;
  /** Resolves when every partition's stored offset has reached the log end measured at the call. */
  readonly caughtUp: (timeoutMs: number) => Promise<void>;
}

// Batches applied at once: one decodes and folds while another's transaction writes (dye transactions take
// turns on the dye lock, see apply-dye.ts). kafkajs may hand over more partitions' batches at once than that:
// they wait in their lanes (partition-lanes.ts).
const PARTITIONS_IN_FLIGHT = 3;
const PARTITIONS_HANDED_OVER = 8;

async function storedOffsets(db: Database, group: string, topic: string): Promise<Map<number, bigint>> {
  const o = schema.consumerOffsets;
  const rows = await db
    .select({ partition: o.partition, next: o.nextOffset })
    .from(o)
    .where(and(eq(o.consumerGroup, group), eq(o.topic, topic)));
  return new Map(rows.map((r) => [r.partition, r.next]));
}

/** The stored offsets, asked a few times (a listener's rejection would go unhandled); undefined if unread. */
async function storedOffsetsRetried(
  db: Database,
  group: string,
  topic: string,
  log: (line: string) => void,
): Promise<Map<number, bigint> | undefined> {
  for (let attempt = 1, delay = 200; ; attempt++, delay *= 2) {
    try {
      return await storedOffsets(db, group, topic);
    } catch (error) {
      if (attempt === 5) {
        log(`stored offsets of ${topic} unread, starting from the log's beginning: ${rootCauseText(error)}`);
        return undefined;
      }
      await Bun.sleep(delay);
    }
  }
}

async function sendToDlq(
  producer: Producer,
  dlq: string,
  topic: string,
  partition: number,
  dead: DeadLetter[],
): Promise<void> {
  await producer.send({
    topic: dlq,
    acks: -1,
    messages: dead.map((d) => ({
      key: d.message.key,
      value: d.message.value,
      headers: {
        "indigo-error": d.error,
        "indigo-topic": topic,
        "indigo-partition": String(partition),
        "indigo-offset": String(d.message.offset),
      },
    })),
  });
}

function cohortFilter(
  db: Database,
  maxEntries: number,
  log: (line: string) => void,
): CohortFilter | undefined {
  return maxEntries > 0 ? new CohortFilter({ maxEntries, log, db }) : undefined;
}

/**
 * The filter's first read (every cohort entry, in pages) in a transaction of its own, while Kafka connects:
 * made by the first batch instead, it held that batch's offset and seq range locks for as long.
 */
async function warmUp(db: Database, filter: CohortFilter | undefined, log: (line: string) => void) {
  if (!filter) return;
  try {
    await db.transaction((tx) => filter.catchUp(tx).then(() => {}));
  } catch (error) {
    log(`cohort filter not read at start (${rootCauseText(error)}); the first batch reads it`);
  }
}

export async function startProjector(opts: ProjectorOptions): Promise<RunningProjector> {
  const log = opts.log ?? ((line: string) => console.error(`projector: ${line}`));
  const ctx: ApplyContext = {
    db: opts.db,
    group: opts.group,
    identity: opts.identity,
    bucketMs: opts.bucketMs,
    topics: opts.topics,
    retention: projectionRetention(
      opts.undyedRetentionMs ?? DEFAULT_UNDYED_RETENTION_MS,
      opts.traceRetentionMs ?? DEFAULT_TRACE_RETENTION_MS,
    ),
    cohortFilter: cohortFilter(
      opts.db,
      opts.cohortFilterMaxEntries ?? DEFAULT_COHORT_FILTER_MAX_ENTRIES,
      log,
    ),
  };
  const warming = warmUp(opts.db, ctx.cohortFilter, log);
  const topics = [opts.topics.dye, opts.topics.agent, opts.topics.release];
  const producer = opts.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  const admin = opts.kafka.admin();
  const consumer = opts.kafka.consumer({
    groupId: opts.group,
    sessionTimeout: 10_000,
    heartbeatInterval: 1_000,
    maxBytesPerPartition: 4 * 1024 * 1024,
  });
  // A broker that is down or still loading at start is waited for, not a reason to exit: a supervisor would
  // only start the projector again into the same broker.
  await keepConnecting(() => Promise.all([producer.connect(), consumer.connect(), admin.connect()]), {
    reset: () => Promise.allSettled([producer.disconnect(), consumer.disconnect(), admin.disconnect()]),
    onFailure: (error, retryInMs) =>
      log(`kafka not reachable yet (${error}); trying again in ${retryInMs} ms`),
  }).ready;
  await consumer.subscribe({ topics, fromBeginning: true });
  await warming;

  consumer.on(consumer.events.GROUP_JOIN, async ({ payload }) => {
    for (const [topic, partitions] of Object.entries(payload.memberAssignment)) {
      const stored = await storedOffsetsRetried(opts.db, opts.group, topic, log);
      // Unread (the database did not answer): no seek, so Kafka starts from the log's beginning and the
      // position guard skips what was applied — slower, never wrong.
      if (stored === undefined) continue;
      for (const partition of partitions) {
        consumer.seek({ topic, partition, offset: String(stored.get(partition) ?? 0n) });
      }
    }
  });

  const lanes = new PartitionLanes<QueuedBatch>(
    async (b) => {
      const outcome = await applyBatch(ctx, b.topic, b.partition, b.messages, (dead) =>
        sendToDlq(producer, opts.topics.dlq, b.topic, b.partition, dead),
      );
      for (const d of outcome.deadLetters)
        log(`dead letter ${b.topic}/${b.partition}@${d.message.offset}: ${d.error}`);
    },
    { slots: PARTITIONS_IN_FLIGHT, log },
  );

  await consumer.run({
    autoCommit: false,
    partitionsConsumedConcurrently: PARTITIONS_HANDED_OVER,
    eachBatchAutoResolve: false,
    eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
      if (!isRunning() || isStale() || batch.messages.length === 0) return;
      const messages = batch.messages.map((m) => ({ offset: BigInt(m.offset), key: m.key, value: m.value }));
      // Queued, not yet applied: kafkajs fetches on while the lane applies. Its position is not a commit
      // (nothing is committed to Kafka), so a crash here loses nothing: the next start seeks to the stored offset.
      await lanes.push(
        `${batch.topic}/${batch.partition}`,
        { topic: batch.topic, partition: batch.partition, messages },
        messages.length + Math.max(0, Number(batch.offsetLag())),
      );
      resolveOffset(batch.lastOffset());
      await heartbeat();
    },
  });

  return {
    stop: async () => {
      await lanes.stop();
      await consumer.disconnect();
      await producer.disconnect();
      await admin.disconnect();
      // a rebuild still reading would fail on the pool the caller closes next
      await ctx.cohortFilter?.idle();
    },
    caughtUp: (timeoutMs) => waitCaughtUp(admin, opts.db, opts.group, topics, timeoutMs),
  };
}

/** Waits until the group's stored offsets reach the topics' ends as measured at the call. */
export async function waitCaughtUp(
  admin: Admin,
  db: Database,
  group: string,
  topics: readonly string[],
  timeoutMs: number,
): Promise<void> {
  const ends = new Map<string, Map<number, bigint>>();
  for (const topic of topics) {
    const offsets = await admin.fetchTopicOffsets(topic);
    ends.set(topic, new Map(offsets.map((o) => [o.partition, BigInt(o.high)])));
  }
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let behind: bigint | undefined = 0n;
    let unread: unknown;
    try {
      for (const [topic, partitions] of ends) {
        const stored = await storedOffsets(db, group, topic);
        for (const [partition, end] of partitions) {
          const at = stored.get(partition) ?? 0n;
          if (at < end) behind += end - at;
        }
      }
    } catch (error) {
      // A dropped connection is the projector's to ride out too: ask again until the deadline.
      behind = undefined;
      unread = error;
    }
    if (behind === 0n) return;
    if (Date.now() > deadline) {
      const state = behind === undefined ? `unread (${rootCauseText(unread)})` : `${behind} messages behind`;
      throw new Error(`projector group ${group} still ${state} after ${timeoutMs} ms`);
    }
    await Bun.sleep(25);
  }
}
