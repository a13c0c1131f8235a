// The one migrate step (`./dev up`, `./dev test`): a single connection applies the committed migrations, so
// services never race each other altering the schema at start.
import { fileURLToPath } from "node:url";
import { migrate } from "drizzle-orm/postgres-js/migrator";
import { openDatabase } from "./client.ts";

export const MIGRATIONS_FOLDER = fileURLToPath(new URL("../migrations", import.meta.url));

export async function applyMigrations(url?: string): Promise<void> {
  const { db, close } = openDatabase(url, 1);
  try {
    await migrate(db, { migrationsFolder: MIGRATIONS_FOLDER });
  } finally {
    await close();
  }
}

if (import.meta.main) {
  try {
    await applyMigrations();
  } catch (error) {
    console.error(
      `dev: error: failed to apply migrations: ${error instanceof Error ? error.message : String(error)}`,
    );
    process.exit(1);
  }
}
