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

/**
 * Runs `query` with the planner held to index probes, pipelined with the settings around it. For lookups of
 * a few keys in tables that grow between analyses: a fresh or freshly loaded table has no statistics, and
 * the planner's guess for it (a third of the rows) sends every call through the whole table.
 */
export async function withIndexProbes<T>(raw: TransactionSql, query: () => Promise<T>): Promise<T> {
  const off = raw
    .unsafe(
      "set local enable_hashjoin = off; set local enable_mergejoin = off; set local enable_seqscan = off",
    )
    .execute();
  const result = query();
  const reset = raw.unsafe("reset enable_hashjoin; reset enable_mergejoin; reset enable_seqscan").execute();
  const [, value] = await Promise.all([off, result, reset]);
  return value;
}
