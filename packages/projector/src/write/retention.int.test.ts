// The undyed_hop_requests retention on the real Postgres: what is older than the window goes, in chunks;
// what is inside it stays; a clock in the future moves nothing.
import { afterAll, beforeAll, expect, test } from "bun:test";
import postgres from "postgres";
import { createSandbox, type Sandbox } from "../testing/sandbox.ts";
import { UndyedRetention } from "./retention.ts";

let sb: Sandbox;
let sql: postgres.Sql;
beforeAll(async () => {
  sb = await createSandbox("retention", { dye: 1, agent: 1, release: 1 });
  sql = postgres(sb.databaseUrl, { max: 1, onnotice: () => {} });
}, 60_000);
afterAll(async () => {
  await sql.end();
  await sb.close();
}, 60_000);

const MINUTE = 60_000;
const T0 = Date.parse("2026-01-01T00:00:00Z");

test("rows older than the window are deleted in chunks, newer ones kept", async () => {
  // 30 rows, one per minute from T0.
  await sql`insert into undyed_hop_requests (trace_id, caller, callee, bucket_start)
            select 'U' || g, 'a', 'b', ${new Date(T0)}::timestamptz + g * interval '1 minute'
            from generate_series(0, 29) g`;
  const retention = new UndyedRetention(10 * MINUTE, 8);
  const newest = T0 + 29 * MINUTE;
  const count = async () =>
    (await sql<{ n: number }[]>`select count(*)::int as n from undyed_hop_requests`)[0]!.n;
  // The cut (minute 19) leaves 19 rows to delete: chunks of 8, 8, 3.
  await sql.begin(async (tx) => expect(await retention.sweep(tx, newest, newest)).toBe(8));
  await sql.begin(async (tx) => expect(await retention.sweep(tx, newest, newest)).toBe(8));
  await sql.begin(async (tx) => expect(await retention.sweep(tx, newest, newest)).toBe(3));
  expect(await count()).toBe(11);
  // Done until the cut has moved on by a minute of event time.
  await sql.begin(async (tx) => expect(await retention.sweep(tx, newest, newest)).toBe(0));
  // An event far in the future: the cut is capped at the wall clock.
  await sql.begin(async (tx) =>
    expect(await retention.sweep(tx, newest + 365 * 24 * 60 * MINUTE, newest)).toBe(0),
  );
  await sql.begin(async (tx) =>
    expect(await retention.sweep(tx, newest + 2 * MINUTE, newest + 2 * MINUTE)).toBe(2),
  );
  expect(await count()).toBe(9);
}, 60_000);

test("a zero window keeps everything", async () => {
  const retention = new UndyedRetention(0);
  await sql.begin(async (tx) => expect(await retention.sweep(tx, Date.now(), Date.now())).toBe(0));
});
