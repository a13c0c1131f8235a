// @indigo/db: the projection schema (drizzle), its committed migrations and the way to open the database.
export {
  type Database,
  type DatabaseHandle,
  databaseUrlFromEnv,
  openDatabase,
  type PoolOptions,
} from "./client.ts";
export { applyMigrations, MIGRATIONS_FOLDER } from "./migrate.ts";
export { ping } from "./ping.ts";
export * as schema from "./schema.ts";
export { msSetting, type SessionSettings, sessionSettings, wholeSetting } from "./session.ts";
