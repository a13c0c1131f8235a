// Migrations apply to the real Postgres (twice: the second run is a no-op) and drizzle round-trips rows,
// including bigints beyond 2^53 and jsonb.
import { afterAll, expect, test } from "bun:test";
import { and, eq, sql } from "drizzle-orm";
import { openDatabase } from "./client.ts";
import { applyMigrations } from "./migrate.ts";
import { agents, consumerOffsets } from "./schema.ts";

const { db, close } = openDatabase(undefined, 2);
afterAll(() => close());

test("migrations apply and re-apply cleanly and create every table of the schema", async () => {
  await applyMigrations();
  await applyMigrations();
  const rows = await db.execute<{ table_name: string }>(
    sql`select table_name from information_schema.tables where table_schema = 'public' order by table_name`,
  );
  const tables = rows.map((r) => r.table_name);
  expect(tables).toEqual(expect.arrayContaining(["agents", "consumer_offsets", "releases"]));
  const applied = await db.execute<{ n: number }>(
    sql`select count(*)::int as n from drizzle.__drizzle_migrations`,
  );
  expect(applied[0]?.n).toBeGreaterThan(0);
}, 30_000);

test("a row round-trips through drizzle: insert, upsert, select, delete", async () => {
  const group = `test-${crypto.randomUUID()}`;
  const big = 9_007_199_254_740_993n;
  await db
    .insert(consumerOffsets)
    .values({ consumerGroup: group, topic: "indigo.dye.v1", partition: 3, nextOffset: big });
  await db
    .insert(consumerOffsets)
    .values({ consumerGroup: group, topic: "indigo.dye.v1", partition: 3, nextOffset: big + 10n })
    .onConflictDoUpdate({
      target: [consumerOffsets.consumerGroup, consumerOffsets.topic, consumerOffsets.partition],
      set: { nextOffset: big + 10n },
    });
  const [row] = await db.select().from(consumerOffsets).where(eq(consumerOffsets.consumerGroup, group));
  expect(row?.nextOffset).toBe(big + 10n);
  expect(row?.partition).toBe(3);

  const agentId = `agent-${crypto.randomUUID()}`;
  const status = { counters: { sends: 12 }, note: "ünïcode ✓", nested: [1, 2, 3] };
  const seen = new Date("2026-11-25T12:00:00.123Z");
  await db.insert(agents).values({ agentId, node: "n1", mode: "full", status, lastSeenAt: seen });
  const [agent] = await db.select().from(agents).where(eq(agents.agentId, agentId));
  expect(agent).toEqual({
    agentId,
    node: "n1",
    mode: "full",
    degradedReason: "",
    kernelVersion: "",
    lastSeq: 0n,
    status,
    lastSeenAt: seen,
    idConflict: "",
    idConflictAt: null,
  });

  await db.delete(agents).where(eq(agents.agentId, agentId));
  await db
    .delete(consumerOffsets)
    .where(and(eq(consumerOffsets.consumerGroup, group), eq(consumerOffsets.partition, 3)));
  expect(await db.select().from(agents).where(eq(agents.agentId, agentId))).toEqual([]);
}, 30_000);
