// Multi-row inserts as `INSERT … SELECT FROM json_to_recordset($1::json)`: one parameter whatever the row
// count, so a batch of thousands of rows costs one small statement to build, send and plan (a VALUES list
// costs one parameter per cell, and postgres.js does not serialise every array parameter type).
import { type SQL, sql } from "drizzle-orm";
import type { Tx } from "./raw-tx.ts";

export interface Column<R> {
  readonly name: string;
  /** Postgres type of the column: text, bigint, integer, timestamptz, … */
  readonly type: string;
  readonly value: (row: R) => string | number | null;
}

export async function bulkInsert<R>(
  tx: Tx,
  table: string,
  columns: readonly Column<R>[],
  rows: readonly R[],
  tail: SQL = sql``,
): Promise<void> {
  if (rows.length === 0) return;
  const names = sql.raw(columns.map((c) => `"${c.name}"`).join(", "));
  const shape = sql.raw(columns.map((c) => `"${c.name}" ${c.type}`).join(", "));
  const json = JSON.stringify(rows.map((r) => Object.fromEntries(columns.map((c) => [c.name, c.value(r)]))));
  await tx.execute(
    sql`insert into ${sql.identifier(table)} (${names}) select ${names} from json_to_recordset(${json}::json) as t(${shape}) ${tail}`,
  );
}

export const text = <R>(name: string, value: (r: R) => string): Column<R> => ({ name, type: "text", value });
export const big = <R>(name: string, value: (r: R) => bigint | number): Column<R> => ({
  name,
  type: "bigint",
  value: (r) => String(value(r)),
});
export const time = <R>(name: string, value: (r: R) => Date): Column<R> => ({
  name,
  type: "timestamptz",
  value: (r) => value(r).toISOString(),
});
