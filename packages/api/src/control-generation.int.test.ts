// A publication's generation is never earlier than the rules change it carries, whatever the clock of the
// API instance that publishes: agents compare it with the change (rulesBehind), and a change stamped by an
// instance whose clock runs ahead made every agent read as behind.
import { expect, test } from "bun:test";
import { schema } from "@indigo/db";
import { AgentControlSchema, fromBinary } from "@indigo/proto";
import { eq, sql } from "drizzle-orm";
import { agentCondition } from "./agent-condition.ts";
import { readTopic } from "./testing/topic.ts";
import { useWorld } from "./testing/use-world.ts";
import { sampleRelease } from "./testing/world.ts";

const w = useWorld("ctlgen");

/** The generation of the newest publication to every agent. */
async function lastGeneration(): Promise<bigint> {
  const all = (await readTopic(w.sb.kafka, w.controlTopic)).filter((m) => m.key === "*");
  const value = all.at(-1)?.value;
  if (!value) throw new Error("no publication to every agent");
  return fromBinary(AgentControlSchema, value).generation;
}

test("a publication is stamped after the change it carries, even when that change's clock ran ahead", async () => {
  const created = (await (await w.call("POST", "/v1/releases", { body: sampleRelease() })).json()) as {
    id: string;
  };
  const started = await w.call("POST", `/v1/releases/${created.id}/start`, { ifMatch: 1 });
  expect(started.status).toBe(200);
  const r = schema.releases;
  // The start as another instance, 10 s ahead of this one, would have stamped it.
  await w.sb.database.db
    .update(r)
    .set({ updatedAt: sql`${r.updatedAt} + interval '10 seconds'` })
    .where(eq(r.id, created.id));
  const [row] = await w.sb.database.db.select({ at: r.updatedAt }).from(r).where(eq(r.id, created.id));
  const changed = row!.at;

  await w.commands.publishControl();
  const generation = await lastGeneration();
  expect(generation).toBeGreaterThan(BigInt(changed.getTime()) * 1000n);
  // so an agent that applied it, reporting well after the change, is not behind
  const condition = agentCondition(
    {
      mode: "full",
      lastSeenAt: new Date(changed.getTime() + 6_000),
      idConflict: "",
      idConflictAt: null,
      appliedGeneration: generation,
      stopped: false,
    },
    changed.getTime() + 6_000,
    30_000,
    changed,
  );
  expect(condition.rulesBehind).toBe(false);
}, 60_000);
