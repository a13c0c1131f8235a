// When the agents' rules last changed: every start, pause, resume, ramp step, promotion and rollback publishes
// them, and each leaves its release's updatedAt at that moment (a draft's creation publishes nothing). An
// agent whose applied publication is older, in a status sent well after, has not taken the change.
import { schema } from "@indigo/db";
import { max, ne } from "drizzle-orm";
import type { Queryable } from "./projection.ts";

export async function rulesChangedAt(db: Queryable): Promise<Date | null> {
  const r = schema.releases;
  const [row] = await db
    .select({ at: max(r.updatedAt) })
    .from(r)
    .where(ne(r.state, "draft"));
  return row?.at ?? null;
}

/** The latest of `times` (null when there is none). */
export function latest(times: readonly (Date | null | undefined)[]): Date | null {
  let out: Date | null = null;
  for (const t of times) if (t && (!out || t > out)) out = t;
  return out;
}
