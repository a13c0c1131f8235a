// The postgres.js transaction under a drizzle one: COPY and array parameters are postgres.js features that
// drizzle does not expose, and they must run on the transaction's own connection.
import type { Database } from "@indigo/db";
import { PostgresJsSession } from "drizzle-orm/postgres-js";
import type { TransactionSql } from "postgres";

export type Tx = Parameters<Parameters<Database["transaction"]>[0]>[0];

export function rawTransaction(tx: Tx): TransactionSql {
  const session = tx._.session;
  if (!(session instanceof PostgresJsSession)) throw new Error("not a postgres.js transaction");
  // A transaction's session holds the TransactionSql that postgres.js' begin() handed to drizzle.
  return session.client as TransactionSql;
}
