// How long the API waits for Postgres, from the environment. Without bounds, a database that stops answering
// (a frozen host, a partition, a lock held by a stuck session) held every request that reached it, and
// /healthz with them, until the kernel gave up on the connection: a load balancer saw hanging requests,
// not a 503 to route around.
import { msSetting, type SessionSettings, sessionSettings } from "@indigo/db";

export const API_APPLICATION = "indigo-api";

export interface ApiDatabaseConfig {
  /** Sent with every connection: the server ends a statement or an idle transaction past these. */
  readonly session: SessionSettings;
  /** Seconds a new connection may take. */
  readonly connectTimeoutS: number;
  /** A /v1 request not answered by then gets a 503; covers a server that cannot even time out (frozen). */
  readonly requestTimeoutMs: number;
  /** Each /healthz check (Postgres, Kafka) that has not answered by then is reported failed. */
  readonly healthTimeoutMs: number;
}

export function apiDatabaseConfigFromEnv(
  env: Record<string, string | undefined> = process.env,
): ApiDatabaseConfig {
  // A command waits up to 5 s for the projection before it decides and up to 5 s after it appends: the
  // statement and request limits leave it that, plus its advisory lock's wait behind a conflicting one.
  return {
    session: sessionSettings(API_APPLICATION, {
      statementTimeoutMs: msSetting(env, "INDIGO_API_STATEMENT_TIMEOUT_MS", 15_000, 1),
      idleInTransactionTimeoutMs: msSetting(env, "INDIGO_API_IDLE_TX_TIMEOUT_MS", 30_000, 1),
    }),
    connectTimeoutS: Math.ceil(msSetting(env, "INDIGO_API_CONNECT_TIMEOUT_MS", 5_000, 1) / 1000),
    requestTimeoutMs: msSetting(env, "INDIGO_API_REQUEST_TIMEOUT_MS", 20_000, 1),
    healthTimeoutMs: msSetting(env, "INDIGO_API_HEALTH_TIMEOUT_MS", 2_000, 1),
  };
}
