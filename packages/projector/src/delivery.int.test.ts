// Bad messages go to the DLQ and the stream after them is still projected; duplicated and reordered
// delivery of the same events does not change the result.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { schema } from "@indigo/db";
import { create, DetectionSource, ReleaseEventSchema, toBinary } from "@indigo/proto";
import { asc, eq, inArray } from "drizzle-orm";
import { ServiceIdentity } from "./service-identity.ts";
import { dyeBatch, type Ev, releaseCreated, releaseStarted } from "./testing/events.ts";
import { projectUntilCaughtUp } from "./testing/project.ts";
import { createSandbox, type Sandbox } from "./testing/sandbox.ts";

let sb: Sandbox;
beforeAll(async () => {
  sb = await createSandbox("delivery");
}, 60_000);
afterAll(() => sb.close(), 60_000);

const identity = new ServiceIdentity([{ service: "api", port: 8080 }]);
const events = (agent: number, from: number, to: number): Ev[] =>
  Array.from({ length: to - from + 1 }, (_, i) => {
    const seq = from + i;
    const cohort = seq % 3 !== 0;
    return {
      seq,
      atMs: seq * 100,
      dye: cohort ? 5 : 0,
      releaseId: cohort ? "rel" : "",
      source: cohort ? DetectionSource.PAYLOAD : DetectionSource.UNSPECIFIED,
      comm: `svc${agent}`,
      sport: 30000 + seq,
      dport: 8080,
      traceId: cohort ? `T${agent}-${seq}` : seq % 2 === 0 ? `T${agent}-${seq - 1}` : `U${seq}`,
    };
  });

const project = (group: string) => projectUntilCaughtUp(sb, group, identity, 1000);

interface Dead {
  readonly key: string;
  readonly error: string;
  readonly topic: string;
}

/** The DLQ from its beginning, until `enough` says so (or 20 s). */
async function readDeadLetters(enough: (dead: Dead[]) => boolean): Promise<Dead[]> {
  const consumer = sb.kafka.consumer({
    groupId: `dlq-reader-${sb.id}-${Math.random().toString(36).slice(2)}`,
  });
  await consumer.connect();
  await consumer.subscribe({ topic: sb.topics.dlq, fromBeginning: true });
  const dead: Dead[] = [];
  await new Promise<void>((resolveAll) => {
    consumer.run({
      eachMessage: async ({ message }) => {
        dead.push({
          key: String(message.key),
          error: String(message.headers?.["indigo-error"]),
          topic: String(message.headers?.["indigo-topic"]),
        });
        if (enough(dead)) resolveAll();
      },
    });
    setTimeout(resolveAll, 20_000);
  });
  await consumer.disconnect();
  return dead;
}

async function coverageRows() {
  const c = schema.coverage;
  return sb.database.db.select().from(c).orderBy(asc(c.caller), asc(c.bucketStart), asc(c.source));
}

test("undecodable and unappliable messages land in the DLQ with the error; the stream after them is projected", async () => {
  const producer = sb.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const gap = create(ReleaseEventSchema, {
    releaseId: "rel",
    version: 9n,
    actor: "x",
    kind: { case: "promoted", value: {} },
  });
  await producer.send({
    topic: sb.topics.release,
    messages: [
      { key: "rel", value: releaseCreated("rel", 5, 0) },
      { key: "rel", value: Buffer.from([0xff, 0xff, 0xff]) },
      { key: "rel", value: Buffer.from(toBinary(ReleaseEventSchema, gap)) },
      { key: "rel", value: releaseStarted("rel", 1) },
    ],
  });
  await producer.send({
    topic: sb.topics.dye,
    messages: [
      { key: "a1", value: Buffer.from("not protobuf at all \u0000\u0001") },
      { key: "a1", value: dyeBatch("a1", events(1, 1, 30)) },
    ],
  });
  await producer.send({
    topic: sb.topics.agent,
    messages: [{ key: "a1", value: Buffer.from([0x0a, 0xff]) }],
  });
  await producer.disconnect();
  await project("g_dlq");

  const dead = await readDeadLetters((d) => d.length === 4);
  dead.sort((a, b) => a.error.localeCompare(b.error));
  expect(dead).toEqual([
    {
      key: "rel",
      error: "unappliable ReleaseEvent: release rel is at version 1; event version 9 does not follow",
      topic: sb.topics.release,
    },
    { key: "a1", error: expect.stringContaining("undecodable AgentStatus"), topic: sb.topics.agent },
    { key: "a1", error: expect.stringContaining("undecodable DyeEventBatch"), topic: sb.topics.dye },
    { key: "rel", error: expect.stringContaining("undecodable ReleaseEvent"), topic: sb.topics.release },
  ]);
  const [release] = await sb.database.db.select().from(schema.releases);
  expect(release?.state).toBe("running");
  const [counter] = await sb.database.db
    .select()
    .from(schema.projectorCounters)
    .where(eq(schema.projectorCounters.name, "dead_letters"));
  expect(counter?.value).toBe(4);
  const [delivery] = await sb.database.db.select().from(schema.agentDelivery);
  expect(delivery?.events).toBe(30);
}, 90_000);

test("duplicated and reordered delivery of the same events gives the same coverage, duplicates counted", async () => {
  const reference = await coverageRows();
  expect(reference.reduce((n, r) => n + r.dyed, 0)).toBe(20);
  // Agent a2 gets the same stream as a1, but split differently, out of order and with repeats.
  const producer = sb.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const parts: [number, number][] = [
    [21, 30],
    [1, 10],
    [5, 15],
    [11, 20],
    [1, 30],
  ];
  await producer.send({
    topic: sb.topics.dye,
    messages: parts.map(([from, to]) => ({
      key: "a2",
      value: dyeBatch(
        "a2",
        events(1, from, to).map((e) => ({
          ...e,
          comm: "svc2",
          traceId: e.traceId?.replace("T1-", "T2-").replace(/^U/, "V"),
        })),
      ),
    })),
  });
  await producer.disconnect();
  await project("g_dlq");
  const all = await coverageRows();
  const a2 = all.filter((r) => r.caller === "svc2");
  expect(a2.map(({ caller: _, ...r }) => r)).toEqual(reference.map(({ caller: _, ...r }) => r));
  const [delivery] = await sb.database.db
    .select()
    .from(schema.agentDelivery)
    .where(eq(schema.agentDelivery.agentId, "a2"));
  expect(delivery).toEqual({ agentId: "a2", events: 30, duplicates: 6 + 5 + 30, maxSeq: 30n });
}, 90_000);

test("a DyeEventBatch that decodes but cannot be stored goes to the DLQ alone; the messages around it are projected", async () => {
  const dyed = (seq: number, traceId: string, dye: number): Ev => ({
    seq,
    atMs: seq,
    dye,
    releaseId: "rel",
    source: DetectionSource.PAYLOAD,
    comm: "svc9",
    sport: 30000,
    dport: 8080,
    traceId,
  });
  const deadLettersCounted = async () => {
    const [counter] = await sb.database.db
      .select()
      .from(schema.projectorCounters)
      .where(eq(schema.projectorCounters.name, "dead_letters"));
    return counter?.value ?? 0;
  };
  const countedBefore = await deadLettersCounted();
  const producer = sb.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  // dye is a uint32 on the wire; 4 000 000 000 does not fit the projections' int4 columns.
  await producer.send({
    topic: sb.topics.dye,
    messages: [
      { key: "a9", value: dyeBatch("a9", [dyed(1, "P1", 5)]) },
      { key: "a9", value: dyeBatch("a9", [dyed(2, "P2", 4_000_000_000)]) },
      { key: "a9", value: dyeBatch("a9", [dyed(3, "P3", 5)]) },
    ],
  });
  await producer.disconnect();
  await project("g_dlq");

  const dead = (await readDeadLetters((d) => d.some((x) => x.key === "a9"))).filter((d) => d.key === "a9");
  expect(dead).toEqual([
    { key: "a9", error: expect.stringContaining("unappliable DyeEventBatch"), topic: sb.topics.dye },
  ]);
  expect(dead[0]?.error).toBe(
    'unappliable DyeEventBatch: value "4000000000" is out of range for type integer',
  );
  const entered = await sb.database.db
    .select({ t: schema.cohortTraces.traceId })
    .from(schema.cohortTraces)
    .where(inArray(schema.cohortTraces.traceId, ["P1", "P2", "P3"]))
    .orderBy(asc(schema.cohortTraces.traceId));
  expect(entered.map((r) => r.t)).toEqual(["P1", "P3"]);
  expect(await deadLettersCounted()).toBe(countedBefore + 1);
  const [delivery] = await sb.database.db
    .select()
    .from(schema.agentDelivery)
    .where(eq(schema.agentDelivery.agentId, "a9"));
  expect(delivery).toMatchObject({ events: 2, maxSeq: 3n }); // seq 2 is a gap: it is in the DLQ
}, 90_000);
