// The row order before a COPY follows the server's own hash of the trace id: checked against hashtext() on
// the real Postgres, for every tail length of lookup3's 12-byte blocks and for text that is not ASCII.
import { afterAll, beforeAll, expect, test } from "bun:test";
import postgres from "postgres";
import { createSandbox, type Sandbox } from "../testing/sandbox.ts";
import { bucketOrderKey, inBucketOrder, pgHashText } from "./pg-hash.ts";

let sb: Sandbox;
let sql: postgres.Sql;
beforeAll(async () => {
  sb = await createSandbox("pghash", { dye: 1, agent: 1, release: 1 });
  sql = postgres(sb.databaseUrl, { max: 1, onnotice: () => {} });
}, 60_000);
afterAll(async () => {
  await sql.end();
  await sb.close();
}, 60_000);

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
  const ordered = inBucketOrder(rows, (r) => r.traceId);
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
