// Every table here is a projection of the Kafka log (DESIGN.md "Event sourcing"): it can be dropped and
// rebuilt by replaying the topics. `consumer_offsets` is the checkpoint stored with the projections it guards.
import { sql } from "drizzle-orm";
import { bigint, integer, jsonb, pgTable, primaryKey, text, timestamp } from "drizzle-orm/pg-core";

export const consumerOffsets = pgTable(
  "consumer_offsets",
  {
    consumerGroup: text("consumer_group").notNull(),
    topic: text("topic").notNull(),
    partition: integer("partition").notNull(),
    // The next offset to read: the last applied offset + 1.
    nextOffset: bigint("next_offset", { mode: "bigint" }).notNull(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.consumerGroup, t.topic, t.partition] })],
);

export const releases = pgTable("releases", {
  id: text("id").primaryKey(),
  name: text("name").notNull(),
  state: text("state").notNull(),
  version: integer("version").notNull(),
  dye: integer("dye").notNull(),
  cohort: jsonb("cohort").notNull(),
  services: jsonb("services").notNull(),
  createdAt: timestamp("created_at", { withTimezone: true }).notNull(),
  updatedAt: timestamp("updated_at", { withTimezone: true }).notNull(),
});

export const agents = pgTable("agents", {
  agentId: text("agent_id").primaryKey(),
  node: text("node").notNull(),
  mode: text("mode").notNull(),
  degradedReason: text("degraded_reason").notNull().default(""),
  kernelVersion: text("kernel_version").notNull().default(""),
  lastSeq: bigint("last_seq", { mode: "bigint" }).notNull().default(sql`0`),
  status: jsonb("status").notNull(),
  lastSeenAt: timestamp("last_seen_at", { withTimezone: true }).notNull(),
});
