// `COPY … FROM STDIN` (binary format, see binary-rows.ts): the cheapest way into Postgres for the tables that
// take a row per event (no per-row JSON to build and parse, no ON CONFLICT arbitration). Only for tables
// where a row can never conflict.
import type { TransactionSql } from "postgres";

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * A query queued behind the COPY. postgres.js detaches a COPY's stream once its data has ended, so an error
 * the server reports then (a constraint, a bad value) neither reaches the stream nor finishes it; this query
 * fails instead, the transaction being aborted. It can only be queued once the stream is detached, which
 * happens a turn after the end of the data.
 */
async function queryBehind(tx: TransactionSql, table: string): Promise<void> {
  for (;;) {
    await nextTurn();
    try {
      await tx`select 1`;
      return;
    } catch (error) {
      if ((error as { code?: unknown }).code === "COPY_IN_PROGRESS") continue;
      throw new Error(`copy into ${table} failed (the Postgres log has the reason): ${errorText(error)}`, {
        cause: error,
      });
    }
  }
}

/** Streams `data` (binary COPY format, as BinaryRows builds it) into `table (columns)`. */
export async function copyIn(
  tx: TransactionSql,
  table: string,
  columns: readonly string[],
  data: Buffer,
): Promise<void> {
  if (data.length === 0) return;
  const query = tx.unsafe(`copy ${table} (${columns.join(", ")}) from stdin with (format binary)`);
  const stream = await query.writable();
  query.catch(() => {}); // its failure reaches us through the stream or the query behind it
  // The connection can fail at any point of this: postgres.js then destroys the stream with the socket's
  // error, and the write's own callback may never be called. So the stream's end is watched from the start
  // (a rejection nobody awaited yet was an unhandled rejection, which ends the process) and raced with
  // each step (a write waiting for its callback waited forever, and its partition with it).
  const finished = new Promise<void>((resolve, reject) => {
    stream.on("error", reject);
    stream.on("finish", resolve);
  });
  finished.catch(() => {});
  const failed = finished.then(() => new Promise<never>(() => {}));
  await Promise.race([
    new Promise<void>((resolve, reject) =>
      stream.write(data, (error) => (error ? reject(error) : resolve())),
    ),
    failed,
  ]);
  stream.end();
  await Promise.race([queryBehind(tx, table), failed]);
  await finished;
}
