// Binary COPY on the real Postgres: strings of any content, timestamps before and after 2000 and 2^53 µs
// neighbours, integers at their limits round-trip; a failing COPY rejects instead of hanging, and so does one whose backend is terminated while
// its data is still being written. The row order
// before a COPY follows the server's own hash of the trace id: checked against hashtext() for every tail
// length of lookup3's 12-byte blocks and for text that is not ASCII.
import { afterAll, beforeAll, expect, test } from "bun:test";
import postgres from "postgres";
import { createSandbox, type Sandbox } from "../testing/sandbox.ts";
import { BinaryRows } from "./binary-rows.ts";
import { copyIn } from "./copy.ts";
import { bucketOrder, bucketOrderKey, pgHashText } from "./pg-hash.ts";

let sb: Sandbox;
let sql: postgres.Sql;
beforeAll(async () => {
  sb = await createSandbox("copy", { dye: 1, agent: 1, release: 1 });
  sql = postgres(sb.databaseUrl, { max: 1, onnotice: () => {} });
  await sql`create table copy_probe (t text not null, i integer not null, b bigint not null, at timestamptz not null)`;
  await sql`create unique index on copy_probe (i)`;
}, 60_000);
afterAll(async () => {
  await sql.end();
  await sb.close();
}, 60_000);

const cases: { t: string; i: number; b: bigint; ms: number }[] = [
  { t: "plain", i: 0, b: 0n, ms: Date.parse("2026-01-01T00:00:00.123Z") },
  { t: "tab\there\nnew\\line\r", i: 2_147_483_647, b: 9_223_372_036_854_775_807n, ms: 0 },
  {
    t: "ünïcödé ✓ 🚀",
    i: -2_147_483_648,
    b: -9_223_372_036_854_775_808n,
    ms: Date.parse("1999-12-31T23:59:59.999Z"),
  },
  { t: "", i: 7, b: 2n ** 53n + 1n, ms: Date.parse("2262-04-11T23:47:16.854Z") },
  // Past the short-ASCII path's length, and a value that leaves it at its last character.
  { t: "long ".repeat(60), i: 9, b: 3n, ms: 2 },
  { t: `${"a".repeat(127)}é`, i: 10, b: 4n, ms: 3 },
];

test("values of every kind round-trip; NUL, which Postgres text cannot hold, becomes U+FFFD", async () => {
  const rows = new BinaryRows(16);
  for (const c of cases) rows.row(4).text(c.t).int4(c.i).int8(c.b).timestamptz(c.ms);
  rows.row(4).text("nul\0inside").int4(8).int8(1n).timestamptz(1);
  await sql.begin((tx) => copyIn(tx, "copy_probe", ["t", "i", "b", "at"], rows.end()));
  const got = await sql<{ t: string; i: number; b: string; ms: string }[]>`
    select t, i, b::text, (extract(epoch from at) * 1000)::bigint::text as ms from copy_probe order by i`;
  const want = [...cases, { t: "nul\uFFFDinside", i: 8, b: 1n, ms: 1 }].sort((x, y) => x.i - y.i);
  expect(got.map((r) => ({ t: r.t, i: r.i, b: BigInt(r.b), ms: Number(r.ms) }))).toEqual(want);
});

test("a COPY the server refuses rejects the transaction", async () => {
  const rows = new BinaryRows().row(4).text("dup").int4(0).int8(0n).timestamptz(0);
  const outcome = sql.begin((tx) => copyIn(tx, "copy_probe", ["t", "i", "b", "at"], rows.end()));
  await expect(outcome).rejects.toThrow("copy into copy_probe failed");
});

test("a COPY whose backend is terminated while its data is written rejects, and nothing goes unhandled", async () => {
  // Tens of megabytes: the write is still waiting for the socket when the backend goes. postgres.js then
  // destroys the stream with the socket's error and may never call the write's callback; copyIn used to
  // wait on that callback forever, and the stream's rejection, not yet awaited, was an unhandled rejection
  // (the process ended).
  const rows = new BinaryRows(64 * 1024 * 1024);
  const text = "x".repeat(100);
  for (let i = 0; i < 400_000; i++)
    rows
      .row(4)
      .text(text)
      .int4(1_000_000 + i)
      .int8(0n)
      .timestamptz(0);
  const data = rows.end();
  const victim = postgres(sb.databaseUrl, {
    max: 1,
    onnotice: () => {},
    connection: { application_name: "copy_victim" },
  });
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on("unhandledRejection", onUnhandled);
  try {
    const copying = victim.begin((tx) => copyIn(tx, "copy_probe", ["t", "i", "b", "at"], data));
    copying.catch(() => {});
    let terminated = 0;
    for (let i = 0; i < 200 && terminated === 0; i++) {
      await Bun.sleep(5);
      const r = await sql`
        select pg_terminate_backend(pid) from pg_stat_activity
        where application_name = 'copy_victim' and state = 'active' and query ilike 'copy %'`;
      terminated = r.length;
    }
    expect(terminated).toBe(1);
    const outcome = await Promise.race([
      copying.then(
        () => "committed",
        () => "rejected",
      ),
      Bun.sleep(10_000).then(() => "still waiting after 10 s"),
    ]);
    await Bun.sleep(100); // a rejection is reported as unhandled a turn after it has none
    expect(outcome).toBe("rejected");
    expect(unhandled).toEqual([]);
  } finally {
    process.off("unhandledRejection", onUnhandled);
    await victim.end({ timeout: 1 });
  }
  const [left] = await sql<
    { n: number }[]
  >`select count(*)::int as n from copy_probe where i between 1000000 and 1399999`;
  expect(left?.n).toBe(0);
}, 30_000);

test("pgHashText equals hashtext() of the database", async () => {
  const values = [
    ...Array.from({ length: 40 }, (_, n) => "t".repeat(n)),
    ...Array.from({ length: 200 }, (_, i) => `U${i % 6}-${i * 7919}`),
    "0af7651916cd43dd8448eb211c80319c",
    "ünïcödé ✓ 🚀",
    "日本語のトレース",
  ];
  const rows = await sql<{ h: number }[]>`
    select hashtext(v) as h from unnest(${values}::text[]) with ordinality as t(v, o) order by o`;
  expect(values.map(pgHashText)).toEqual(rows.map((r) => r.h >>> 0));
});

test("in bucket order, the rows of one bucket come together for any number of buckets; nothing is lost", () => {
  const rows = Array.from({ length: 5000 }, (_, i) => ({ traceId: `T-${i}`, i }));
  const ordered = Array.from(
    bucketOrder(rows, (r) => r.traceId),
    (i) => rows[i]!,
  );
  expect(ordered.map((r) => r.i).sort((a, b) => a - b)).toEqual(rows.map((r) => r.i));
  for (const buckets of [1, 2, 16, 1024, 65_536]) {
    const seen = new Set<number>();
    let current = -1;
    for (const r of ordered) {
      const bucket = pgHashText(r.traceId) & (buckets - 1);
      if (bucket !== current) {
        expect(seen.has(bucket)).toBe(false);
        seen.add(bucket);
        current = bucket;
      }
    }
  }
  expect(bucketOrderKey(1)).toBe(0x80000000);
  expect(bucketOrderKey(0x80000000)).toBe(1);
});
