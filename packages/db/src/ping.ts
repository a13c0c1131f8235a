import { sql } from "drizzle-orm";
import type { Database } from "./client.ts";

// The cheapest round trip that proves the database answers queries.
export async function ping(db: Database): Promise<void> {
  await db.execute(sql`select 1`);
}
