// Whether the projection holds everything the analysis window should: a ramp step is a promotion, and one
// taken on a window that lacks a node's events judges the gray version without them (a gray callee whose
// node cannot reach Kafka answers 5xx unseen, and the ramp walks on). Three ways events go missing for a
// while: an agent keeps them in its spool while Kafka is out of its reach; an agent cut off from Kafka
// altogether says nothing at all, statuses included, so it only shows as gone quiet; and the projector has
// not applied what is in the log. Each is a reason to hold a ramp, never to roll back: the rollback judges
// what is seen.
import { type Database, schema } from "@indigo/db";
import { eq, sql } from "drizzle-orm";
import { within } from "./within.ts";

export interface AgentBacklog {
  readonly agentId: string;
  readonly node: string;
  readonly mode: string;
  readonly lastSeenAt: Date;
  /** AgentStatus.spooled_events at its last status: events waiting on its node, not in Kafka yet */
  readonly spooledEvents: bigint;
  /** AgentStatus.stopped of its last status: it stopped cleanly, its last batch handed over */
  readonly stopped: boolean;
}

/**
 * Pure: the agents whose events the window may lack. One that said, at a status no older than `staleMs`,
 * that it holds events in its spool; one that went quiet within the window (its last status older than
 * `staleMs`, newer than the window's start) without saying it stopped, which is what a node that cannot
 * reach Kafka looks like from here; and one that stopped within the window with events left in its spool
 * (they reach Kafka when it starts again). A clean stop with an empty spool lost nothing (a node drained,
 * scaled in, upgraded). A degraded agent reports no dye events to miss. One quiet for longer than the
 * window is not asked: the window holds nothing of it either way, /v1/agents shows it stale, and a node
 * removed for good must not hold every ramp for ever.
 */
export function agentGaps(
  agents: readonly AgentBacklog[],
  now: number,
  staleMs: number,
  windowMs: number,
): string[] {
  const gaps: string[] = [];
  for (const a of [...agents].sort((x, y) => x.agentId.localeCompare(y.agentId))) {
    const seen = a.lastSeenAt.getTime();
    const at = a.lastSeenAt.toISOString();
    const name = `agent ${a.agentId} (node ${a.node})`;
    if (a.stopped) {
      if (a.spooledEvents > 0n && seen >= now - windowMs)
        gaps.push(
          `${name} stopped at ${at} with ${a.spooledEvents} events in its spool: they reach Kafka when it starts again`,
        );
    } else if (now - seen <= staleMs) {
      if (a.spooledEvents > 0n)
        gaps.push(`${name} holds ${a.spooledEvents} events in its spool, not in Kafka yet (status of ${at})`);
    } else if (seen >= now - windowMs && a.mode !== "degraded")
      gaps.push(
        `${name} has not reported since ${at}, within the window: its events may not have reached Kafka`,
      );
  }
  return gaps;
}

/** What each agent's last status (the projected row) said of its spool and whether it stopped. */
export async function loadAgentBacklogs(db: Database): Promise<AgentBacklog[]> {
  const a = schema.agents;
  // two fields of each status, not the whole of it (programs and counters: kilobytes an agent)
  const rows = await db
    .select({
      agentId: a.agentId,
      node: a.node,
      mode: a.mode,
      lastSeenAt: a.lastSeenAt,
      // protobuf JSON: a uint64 is a string, and a default value (0, false) is left out
      spooled: sql<string>`coalesce(${a.status} ->> 'spooledEvents', '0')`,
      stopped: sql<boolean>`coalesce((${a.status} ->> 'stopped')::boolean, false)`,
    })
    .from(a);
  return rows.map(({ spooled, ...r }) => ({ ...r, spooledEvents: BigInt(spooled) }));
}

export interface ProjectorProgressOptions {
  readonly db: Database;
  /** The projector's consumer group (INDIGO_PROJECTOR_GROUP). */
  readonly group: string;
  /** The topics the window is made of: dye events and agent statuses. */
  readonly topics: readonly string[];
  /** Next offset to read per partition of `topic`, now (the log end). */
  readonly logEnd: (topic: string) => Promise<ReadonlyMap<number, bigint>>;
  /** How long reading the log ends may take (default 2 s). */
  readonly timeoutMs?: number;
}

/**
 * Whether the projector has applied, by now, everything that was in the log at the previous check. Not "is
 * it at the log end": under traffic it never is, by the messages in flight. Called once per analysis pass,
 * that asks for everything produced a pass ago.
 */
export class ProjectorProgress {
  #previous: Map<string, bigint> | undefined;

  constructor(private readonly o: ProjectorProgressOptions) {}

  /** Why the projection may lack what the log held at the previous check; [] when it does not. */
  async gaps(): Promise<string[]> {
    let ends: Map<string, bigint>;
    try {
      ends = await within(this.o.timeoutMs ?? 2000, this.#logEnds());
    } catch (error) {
      // the check before stays the one to compare against: nothing was learned
      return [
        `the log ends could not be read (${error instanceof Error ? error.message : String(error)}): whether the projector is behind is unknown`,
      ];
    }
    const previous = this.#previous;
    this.#previous = ends;
    if (!previous) return ["the projector's progress is measured from the next pass on"];
    const o = schema.consumerOffsets;
    const stored = await this.o.db
      .select({ topic: o.topic, partition: o.partition, next: o.nextOffset })
      .from(o)
      .where(eq(o.consumerGroup, this.o.group));
    const applied = new Map(stored.map((r) => [`${r.topic}\u0000${r.partition}`, r.next]));
    const gaps: string[] = [];
    for (const [key, end] of previous) {
      const missing = end - (applied.get(key) ?? 0n);
      if (missing <= 0n) continue;
      const [topic, partition] = key.split("\u0000");
      gaps.push(
        `the projector has not applied ${missing} messages of ${topic} partition ${partition} that were in the log at the last pass`,
      );
    }
    return gaps;
  }

  async #logEnds(): Promise<Map<string, bigint>> {
    const ends = new Map<string, bigint>();
    for (const topic of this.o.topics)
      for (const [partition, end] of await this.o.logEnd(topic)) ends.set(`${topic}\u0000${partition}`, end);
    return ends;
  }
}
