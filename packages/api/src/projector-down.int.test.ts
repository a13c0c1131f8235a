// The API with its projector stopped (crashed, stuck, or far behind) on the real broker and database: pause
// and rollback still take effect, decided on the release log itself, and the agents' rules are published
// from the log, not from the stale projection — also by an API that starts meanwhile, whose start-up
// publication used to bring a rolled-back release's rule back. Starting a release still waits for the
// projection (admitting it needs every running cohort): a 503. When the projector is back, reads catch up.
import { expect, test } from "bun:test";
import { type RunningProjector, ServiceIdentity, startProjector } from "@indigo/projector";
import { AgentControlSchema, fromBinary } from "@indigo/proto";
import { readTopic } from "./testing/topic.ts";
import { useWorld } from "./testing/use-world.ts";
import { otherInstance, sampleRelease } from "./testing/world.ts";

const w = useWorld("projector_down");

/** The dyes of the rules last published to every agent (key "*"). */
async function publishedDyes(): Promise<number[]> {
  const all = await readTopic(w.sb.kafka, w.controlTopic);
  const last = all.filter((m) => m.key === "*").at(-1);
  if (!last?.value) throw new Error("nothing published to key *");
  return fromBinary(AgentControlSchema, last.value)
    .rules.map((r) => r.dye)
    .sort((a, b) => a - b);
}

const create = async (name: string) => {
  const res = await w.call("POST", "/v1/releases", { body: sampleRelease({ name }) });
  expect(res.status).toBe(201);
  return (await res.json()) as { id: string; dye: number };
};

const send = async (id: string, verb: string, ifMatch: number) => {
  const res = await w.call("POST", `/v1/releases/${id}/${verb}`, { ifMatch });
  return { res, body: (await res.json()) as { state?: string; detail?: string } };
};

test("projector stopped: pause and rollback work on the log, rules follow the log, start waits; reads catch up after", async () => {
  const one = await create("down-one");
  const two = await create("down-two");
  const three = await create("down-three");
  expect((await send(one.id, "start", 1)).res.status).toBe(200);
  expect((await send(two.id, "start", 1)).res.status).toBe(200);
  expect(await publishedDyes()).toEqual([one.dye, two.dye].sort((a, b) => a - b));

  await w.projector.stop();

  let t0 = Date.now();
  const rolledBack = await send(one.id, "rollback", 2);
  const rollbackMs = Date.now() - t0;
  expect(rolledBack.res.status, JSON.stringify(rolledBack.body)).toBe(200);
  expect(rolledBack.body.state).toBe("rolled_back");
  expect(rolledBack.res.headers.get("indigo-projected")).toBe("false");
  expect(rolledBack.res.headers.get("indigo-control-published")).toBe("true");
  expect(await publishedDyes()).toEqual([two.dye]);
  // A second stop while the projector is still down: before, every command after the first was a 503
  // ("the projection is behind the release log").
  t0 = Date.now();
  const paused = await send(two.id, "pause", 2);
  const pauseMs = Date.now() - t0;
  expect(paused.res.status, JSON.stringify(paused.body)).toBe(200);
  expect(paused.body.state).toBe("paused");
  expect(await publishedDyes()).toEqual([]);
  console.log(`with the projector down: rollback answered in ${rollbackMs} ms, pause in ${pauseMs} ms`);
  // Each waits at most a second for the projection (the rollback for its own event: it was 5 s).
  expect(rollbackMs).toBeLessThan(2500);
  expect(pauseMs).toBeLessThan(2500);

  // The same rollback again is refused by the state folded from the log, not applied twice.
  const again = await send(one.id, "rollback", 2);
  expect(again.res.status).toBe(409);

  const start = await send(three.id, "start", 1);
  expect(start.res.status).toBe(503);
  expect(start.body.detail).toContain("projection is behind the release log");

  // The projection is stale: it still shows both releases running.
  const stale = (await (await w.call("GET", `/v1/releases/${one.id}`)).json()) as { state: string };
  expect(stale.state).toBe("running");
  // An API that starts now publishes once at start: from the log, so neither rule comes back.
  const producer = w.sb.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    const restarted = otherInstance(w, producer);
    const before = (await readTopic(w.sb.kafka, w.controlTopic)).length;
    await restarted.publishPending();
    expect((await readTopic(w.sb.kafka, w.controlTopic)).length).toBe(before + 1);
    expect(await publishedDyes()).toEqual([]);
  } finally {
    await producer.disconnect();
  }

  // The projector back: the reads show what the commands did.
  let projector: RunningProjector | undefined;
  try {
    projector = await startProjector({
      kafka: w.sb.kafka,
      db: w.sb.database.db,
      group: w.projectorGroup,
      topics: w.sb.topics,
      identity: new ServiceIdentity([]),
      bucketMs: 10_000,
      log: () => {},
    });
    await projector.caughtUp(30_000);
    const states = await Promise.all(
      [one, two, three].map(
        async (r) =>
          ((await (await w.call("GET", `/v1/releases/${r.id}`)).json()) as { state: string }).state,
      ),
    );
    expect(states).toEqual(["rolled_back", "paused", "draft"]);
    expect((await send(three.id, "start", 1)).res.status).toBe(200);
  } finally {
    await projector?.stop();
  }
}, 90_000);
