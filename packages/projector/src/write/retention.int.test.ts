// Retention on the real Postgres: what is older than the window goes, in chunks; what is inside it stays; a
// clock in the future moves nothing. The same for undyed requests, trace timelines and cohort entries.
import { afterAll, beforeAll, expect, test } from "bun:test";
import postgres from "postgres";
import { createSandbox, type Sandbox } from "../testing/sandbox.ts";
import { projectionRetention, Retention } from "./retention.ts";

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
  const retention = new Retention("undyed_hop_requests", 10 * MINUTE, 8);
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

test("timelines and cohort entries go after their own window, undyed requests after theirs", async () => {
  await sql`delete from undyed_hop_requests`;
  // One row per hour from T0 in each table, 48 hours.
  await sql`insert into undyed_hop_requests (trace_id, caller, callee, bucket_start)
            select 'U' || g, 'a', 'b', ${new Date(T0)}::timestamptz + g * interval '1 hour'
            from generate_series(0, 47) g`;
  await sql`insert into trace_hops (trace_id, agent_id, seq, at, ts_ns, service, peer, kind, direction, dye,
                                    source, method, path, status)
            select 'T' || g, 'a1', g, ${new Date(T0)}::timestamptz + g * interval '1 hour', g, 's', 'p',
                   'request', 'egress', 5, 'payload', 'GET', '/', 0
            from generate_series(0, 47) g`;
  await sql`insert into cohort_traces (trace_id, release_id, dye, entered_at)
            select 'T' || g, 'rel', 5, ${new Date(T0)}::timestamptz + g * interval '1 hour'
            from generate_series(0, 47) g`;
  const [undyed, hops, cohort] = projectionRetention(2 * 60 * MINUTE, 24 * 60 * MINUTE);
  const newest = T0 + 47 * 60 * MINUTE;
  await sql.begin(async (tx) => {
    expect(await undyed!.sweep(tx, newest, newest)).toBe(45);
    expect(await hops!.sweep(tx, newest, newest)).toBe(23);
    expect(await cohort!.sweep(tx, newest, newest)).toBe(23);
  });
  const oldest = async (table: string, column: string) =>
    (await sql<{ t: Date }[]>`select min(${sql(column)}) as t from ${sql(table)}`)[0]!.t.getTime();
  expect(await oldest("undyed_hop_requests", "bucket_start")).toBe(T0 + 45 * 60 * MINUTE);
  expect(await oldest("trace_hops", "at")).toBe(T0 + 23 * 60 * MINUTE);
  expect(await oldest("cohort_traces", "entered_at")).toBe(T0 + 23 * 60 * MINUTE);
}, 60_000);

test("a zero window keeps everything; a window that is not a whole number of ms is refused", async () => {
  const retention = new Retention("trace_hops", 0);
  await sql.begin(async (tx) => expect(await retention.sweep(tx, Date.now(), Date.now())).toBe(0));
  expect(() => new Retention("trace_hops", Number.NaN)).toThrow("retention of trace_hops: window must be");
  expect(() => new Retention("cohort_traces", -5)).toThrow("got -5");
});
