// The projector seen from /metrics: how far behind the log it is per partition (log end − the offset it
// stored with its last transaction) and its counters. A projector that stalls — stopped, crashing on a
// batch, or cut off from Postgres — shows as lag that grows; dead letters as a counter that grows.
import type { Admin } from "@indigo/bus";
import { type Database, schema } from "@indigo/db";
import { eq } from "drizzle-orm";
import { logEnd } from "./projection.ts";
import { within } from "./within.ts";

export interface ProjectorWatchOptions {
  readonly db: Database;
  readonly admin: Admin;
  /** The projector's consumer group (INDIGO_PROJECTOR_GROUP). */
  readonly group: string;
  /** The topics it consumes. */
  readonly topics: readonly string[];
  /** How long the lag may take to measure before it reads as `lag_up 0` (default 2 s): a scrape must not
   * wait out the Kafka client's own timeouts, or it loses the API's metrics too. */
  readonly timeoutMs?: number;
}

const label = (value: string) => value.replace(/[\\"\n]/g, (c) => (c === "\n" ? "\\n" : `\\${c}`));

async function lagLines(w: ProjectorWatchOptions): Promise<string[]> {
  const o = schema.consumerOffsets;
  const [ends, stored] = await Promise.all([
    Promise.all(w.topics.map(async (topic) => ({ topic, end: await logEnd({ ...w, topic }) }))),
    w.db
      .select({ topic: o.topic, partition: o.partition, next: o.nextOffset })
      .from(o)
      .where(eq(o.consumerGroup, w.group)),
  ]);
  const next = new Map(stored.map((r) => [`${r.topic}\u0000${r.partition}`, r.next]));
  const lines: string[] = [];
  for (const { topic, end } of ends) {
    for (const [partition, high] of end) {
      const behind = high - (next.get(`${topic}\u0000${partition}`) ?? 0n);
      lines.push(
        `indigo_projector_lag_messages{topic="${label(topic)}",partition="${partition}"} ${behind > 0n ? behind : 0n}`,
      );
    }
  }
  return lines;
}

/** Prometheus text for the projector's lag and counters; what cannot be measured says so (`…_up 0`). */
export async function renderProjectorMetrics(w: ProjectorWatchOptions): Promise<string> {
  const lines = [
    "# HELP indigo_projector_lag_messages Messages in the log the projector has not applied (log end - stored offset).",
    "# TYPE indigo_projector_lag_messages gauge",
  ];
  let up = 1;
  try {
    lines.push(...(await within(w.timeoutMs ?? 2000, lagLines(w))));
  } catch {
    up = 0;
  }
  lines.push(
    "# HELP indigo_projector_lag_up 1 when the lag could be measured (Kafka and Postgres answered).",
    "# TYPE indigo_projector_lag_up gauge",
    `indigo_projector_lag_up ${up}`,
    "# HELP indigo_projector_counter_total The projector's counters: dead letters, duplicate and unknown-dye events.",
    "# TYPE indigo_projector_counter_total counter",
  );
  try {
    const c = schema.projectorCounters;
    const rows = await w.db
      .select({ name: c.name, value: c.value })
      .from(c)
      .where(eq(c.consumerGroup, w.group))
      .orderBy(c.name);
    for (const r of rows) lines.push(`indigo_projector_counter_total{name="${label(r.name)}"} ${r.value}`);
  } catch {
    // Postgres unreachable: the lag gauge already says `up 0`, and /healthz why.
  }
  return `${lines.join("\n")}\n`;
}
