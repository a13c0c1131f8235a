// When the agents' rules last changed: every start, pause, resume, ramp step, promotion and rollback publishes
// them, and each leaves its release's updatedAt at that moment (a draft's creation publishes nothing). An
// agent whose applied publication is older, in a status sent well after, has not taken the change.
import { type Database, schema } from "@indigo/db";
import { max, ne } from "drizzle-orm";

export async function rulesChangedAt(db: Database): Promise<Date | null> {
  const r = schema.releases;
  const [row] = await db
    .select({ at: max(r.updatedAt) })
    .from(r)
    .where(ne(r.state, "draft"));
  return row?.at ?? null;
}
