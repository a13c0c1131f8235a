// Waiting for the projector: the API writes to Kafka and reads Postgres, so a command first waits until the
// projection holds everything already in the release log (its decision must see the latest version), and
// after appending waits until the projection holds its own event (read-your-write). Both waits are bounded.
import type { Admin } from "@indigo/bus";
import { type Database, schema } from "@indigo/db";
import { and, eq } from "drizzle-orm";

/** A database or a transaction on it (waiting inside a command's transaction needs no second connection). */
export type Queryable = Database | Parameters<Parameters<Database["transaction"]>[0]>[0];

export interface ProjectionWatch {
  readonly db: Queryable;
  readonly admin: Admin;
  /** The projector's consumer group (INDIGO_PROJECTOR_GROUP), whose stored offsets say what is projected. */
  readonly group: string;
  readonly topic: string;
}

/** Next offset to read per partition, as measured now (the log end). */
export async function logEnd(w: ProjectionWatch): Promise<Map<number, bigint>> {
  const offsets = await w.admin.fetchTopicOffsets(w.topic);
  return new Map(offsets.map((o) => [o.partition, BigInt(o.high)]));
}

/** True once the projection's stored offsets reach `target` on every partition; false when time ran out. */
export async function waitProjected(
  w: Pick<ProjectionWatch, "db" | "group" | "topic">,
  target: ReadonlyMap<number, bigint>,
  timeoutMs: number,
): Promise<boolean> {
  const o = schema.consumerOffsets;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rows = await w.db
      .select({ partition: o.partition, next: o.nextOffset })
      .from(o)
      .where(and(eq(o.consumerGroup, w.group), eq(o.topic, w.topic)));
    const stored = new Map(rows.map((r) => [r.partition, r.next]));
    let behind = false;
    for (const [partition, end] of target) if ((stored.get(partition) ?? 0n) < end) behind = true;
    if (!behind) return true;
    if (Date.now() >= deadline) return false;
    await Bun.sleep(15);
  }
}
