// /metrics shows the projector's lag per partition and its counters, measured on the real broker and
// database: zero once it caught up, the whole log for a group that applied nothing, dead letters counted.
import { afterAll, beforeAll, expect, test } from "bun:test";
import type { Admin } from "@indigo/bus";
import { renderProjectorMetrics } from "./projector-metrics.ts";
import { createWorld, type World } from "./testing/world.ts";

let world: World;
beforeAll(async () => {
  world = await createWorld("projector_metrics");
}, 60_000);
afterAll(() => world.close(), 60_000);

/** The samples of one metric as label text → value. */
function samples(text: string, metric: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    const m = new RegExp(`^${metric}(\\{[^}]*\\})? (\\S+)$`).exec(line);
    if (m) out.set(m[1] ?? "", Number(m[2]));
  }
  return out;
}

const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);

test("lag is zero per partition once the projector caught up; dead letters are counted", async () => {
  const { sb } = world;
  const producer = sb.kafka.producer();
  await producer.connect();
  await producer.send({
    topic: sb.topics.dye,
    messages: [{ key: "a1", value: Buffer.from("not a DyeEventBatch") }],
  });
  await producer.disconnect();
  await world.projector.caughtUp(30_000);

  const res = await world.app.request("/metrics");
  expect(res.status).toBe(200);
  const text = await res.text();
  const lag = samples(text, "indigo_projector_lag_messages");
  // Every partition of the three topics: 3 dye, 1 agent, 1 release (the sandbox's).
  expect(lag.size).toBe(5);
  expect(lag.get(`{topic="${sb.topics.release}",partition="0"}`)).toBe(0);
  expect(sum(lag)).toBe(0);
  expect(samples(text, "indigo_projector_lag_up").get("")).toBe(1);
  expect(samples(text, "indigo_projector_counter_total").get('{name="dead_letters"}')).toBe(1);
}, 60_000);

test("a group that applied nothing lags by the whole log; a broker that fails or does not answer reads as lag_up 0", async () => {
  const { sb } = world;
  const topics = [sb.topics.dye, sb.topics.agent, sb.topics.release];
  let inLog = 0;
  for (const topic of topics)
    for (const o of await sb.admin.fetchTopicOffsets(topic)) inLog += Number(o.high) - Number(o.low);
  expect(inLog).toBeGreaterThan(0);
  const idle = await renderProjectorMetrics({ db: sb.database.db, admin: sb.admin, group: "idle", topics });
  expect(sum(samples(idle, "indigo_projector_lag_messages"))).toBe(inLog);
  expect(samples(idle, "indigo_projector_counter_total").size).toBe(0);

  const down = {
    fetchTopicOffsets: async () => {
      throw new Error("broker down");
    },
  } as unknown as Admin;
  const cut = await renderProjectorMetrics({
    db: sb.database.db,
    admin: down,
    group: world.projectorGroup,
    topics,
  });
  expect(samples(cut, "indigo_projector_lag_messages").size).toBe(0);
  expect(samples(cut, "indigo_projector_lag_up").get("")).toBe(0);
  expect(samples(cut, "indigo_projector_counter_total").get('{name="dead_letters"}')).toBe(1);

  // A broker that never answers: the scrape does not wait for it.
  const silent = { fetchTopicOffsets: () => new Promise(() => {}) } as unknown as Admin;
  const started = performance.now();
  const hung = await renderProjectorMetrics({
    db: sb.database.db,
    admin: silent,
    group: world.projectorGroup,
    topics,
    timeoutMs: 300,
  });
  expect(performance.now() - started).toBeLessThan(2000);
  expect(samples(hung, "indigo_projector_lag_up").get("")).toBe(0);
}, 60_000);
