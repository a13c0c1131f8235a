// A drizzle database over postgres.js, pointed at INDIGO_DATABASE_URL.
import { drizzle, type PostgresJsDatabase } from "drizzle-orm/postgres-js";
import postgres from "postgres";
import * as schema from "./schema.ts";

export type Database = PostgresJsDatabase<typeof schema>;

export function databaseUrlFromEnv(env: Record<string, string | undefined> = process.env): string {
  return (
    env.INDIGO_DATABASE_URL ?? `postgres://indigo:indigo@127.0.0.1:${env.INDIGO_PG_PORT ?? "15432"}/indigo`
  );
}

export interface DatabaseHandle {
  readonly db: Database;
  readonly close: () => Promise<void>;
}

export interface PoolOptions {
  /** Seconds a new connection may take to be established (postgres.js' own default: 30). */
  readonly connectTimeoutS?: number;
}

/** `settings`: run-time parameters every connection of the pool starts with (e.g. statement_timeout, in ms). */
export function openDatabase(
  url: string = databaseUrlFromEnv(),
  maxConnections = 10,
  settings: Record<string, number | string> = {},
  pool: PoolOptions = {},
): DatabaseHandle {
  const sql = postgres(url, {
    max: maxConnections,
    onnotice: () => {},
    connection: settings,
    ...(pool.connectTimeoutS !== undefined ? { connect_timeout: pool.connectTimeoutS } : {}),
  });
  return { db: drizzle(sql, { schema }), close: () => sql.end({ timeout: 5 }) };
}
