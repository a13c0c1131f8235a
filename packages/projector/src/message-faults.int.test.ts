// Release and agent messages: a database error that says nothing about the message (here a lock timeout, as a
// DBA may set one) fails the batch, which is applied again once the error clears — a release event
// dead-lettered for it would be lost for good, every later event of that release too (they apply only at
// version + 1); a value Postgres refuses as data is the message's own fault, a dead letter.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { openDatabase, schema } from "@indigo/db";
import { AgentStatusSchema, create, toBinary } from "@indigo/proto";
import { and, eq } from "drizzle-orm";
import postgres from "postgres";
import { ServiceIdentity } from "./service-identity.ts";
import { releaseCreated, releaseStarted } from "./testing/events.ts";
import { projectUntilCaughtUp } from "./testing/project.ts";
import { createSandbox, type Sandbox } from "./testing/sandbox.ts";

let sb: Sandbox;
beforeAll(async () => {
  sb = await createSandbox("transient");
}, 60_000);
afterAll(() => sb.close(), 60_000);

const identity = new ServiceIdentity([]);

test("a release event that meets a lock timeout is applied when the lock is gone, not dead-lettered", async () => {
  const producer = sb.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  await producer.send({
    topic: sb.topics.release,
    acks: -1,
    messages: [
      { key: "tr", value: releaseCreated("tr", 7, 1_000) },
      { key: "tr", value: releaseStarted("tr", 2_000) },
    ],
  });
  await producer.disconnect();

  // Another session holds a lock the release's insert needs until the projector has failed on it (or 20 s);
  // the projector's connections give up waiting after 100 ms.
  const blocker = postgres(sb.databaseUrl, { max: 1, onnotice: () => {} });
  const admin = postgres(sb.databaseUrl, { max: 1, onnotice: () => {} });
  const dbName = new URL(sb.databaseUrl).pathname.slice(1);
  await admin.unsafe(`alter database "${dbName}" set lock_timeout = '100ms'`);
  const projectorDb = openDatabase(sb.databaseUrl, 4);
  const logged: string[] = [];
  let failedOnLock!: () => void;
  const sawFailure = new Promise<void>((resolve) => {
    failedOnLock = resolve;
  });
  let holding!: () => void;
  const held = new Promise<void>((resolve) => {
    holding = resolve;
  });
  const blocking = blocker.begin(async (tx) => {
    await tx.unsafe("lock table release_events in exclusive mode");
    holding();
    await Promise.race([sawFailure, Bun.sleep(20_000)]);
  });
  await held;
  try {
    await projectUntilCaughtUp(sb, "transient", identity, 1000, {
      db: projectorDb.db,
      log: (line) => {
        logged.push(line);
        if (line.includes("lock timeout")) failedOnLock();
      },
    });
  } finally {
    await blocking;
    await projectorDb.close();
    await admin.unsafe(`alter database "${dbName}" reset lock_timeout`);
    await admin.end();
    await blocker.end();
  }

  expect(logged.some((l) => l.includes("lock timeout"))).toBe(true);
  expect(logged.filter((l) => l.startsWith("dead letter"))).toEqual([]);
  const db = sb.database.db;
  const [release] = await db.select().from(schema.releases).where(eq(schema.releases.id, "tr"));
  expect(release?.state).toBe("running");
  expect(release?.version).toBe(2);
  const c = schema.projectorCounters;
  const dead = await db
    .select()
    .from(c)
    .where(and(eq(c.consumerGroup, "transient"), eq(c.name, "dead_letters")));
  expect(dead.map((r) => Number(r.value))).not.toContain(1);
  expect(dead.reduce((sum, r) => sum + Number(r.value), 0)).toBe(0);
}, 60_000);

test("an agent status Postgres refuses as data is a dead letter with Postgres' words; the next one applies", async () => {
  const status = (node: string, atMs: number) =>
    Buffer.from(
      toBinary(
        AgentStatusSchema,
        create(AgentStatusSchema, { agentId: "nul", node, timeUnixNano: BigInt(atMs) * 1_000_000n }),
      ),
    );
  const producer = sb.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  await producer.send({
    topic: sb.topics.agent,
    acks: -1,
    messages: [
      { key: "nul", value: status("node\u0000one", 1_000) },
      { key: "nul", value: status("node-two", 2_000) },
    ],
  });
  await producer.disconnect();
  const logged: string[] = [];
  await projectUntilCaughtUp(sb, "data-fault", identity, 1000, { log: (line) => logged.push(line) });
  expect(logged).toEqual([
    expect.stringMatching(
      /^dead letter .*agent\/0@0: unappliable AgentStatus: invalid byte sequence for encoding "UTF8": 0x00$/,
    ),
  ]);
  const [agent] = await sb.database.db.select().from(schema.agents).where(eq(schema.agents.agentId, "nul"));
  expect(agent?.node).toBe("node-two");
}, 60_000);
