// The sampling controller on the real log: agent statuses (with the kernel's per-class counters) showing a
// burst with drops go through the real broker and projector, and make the API publish per-class rates under
// the agent's own key (with the running releases' rules): the bursting class is cut, the others keep every
// event; recovery publishes every class back up. An agent without per-class counters gets one rate for all.
import { expect, test } from "bun:test";
import { BOOT_NS } from "@indigo/projector/testing";
import {
  type AgentControl,
  AgentControlSchema,
  AgentMode,
  AgentStatusSchema,
  create,
  EventClass,
  fromBinary,
  toBinary,
} from "@indigo/proto";
import { samplingTick } from "./sampling-tick.ts";
import { readTopic } from "./testing/topic.ts";
import { useWorld } from "./testing/use-world.ts";
import { sampleRelease } from "./testing/world.ts";

const w = useWorld("sampling");

const PERIOD_S = 5;
const NAMES = ["request", "response", "connection"] as const;

/** Cumulative per-class counters of a simulated agent, advanced one period at a time. */
class Agent {
  i = 0;
  readonly wanted = [0, 0, 0];
  readonly sampledOut = [0, 0, 0];
  readonly failed = [0, 0, 0];
  constructor(readonly id: string) {}

  /** One period at `offered` events/s per class, kept at `perMillion`, with `drops` reserve failures. */
  async period(
    offered: readonly number[],
    perMillion: readonly number[],
    drops: readonly number[] = [0, 0, 0],
    perClass = true,
  ): Promise<void> {
    for (let c = 0; c < 3; c++) {
      const n = (offered[c] ?? 0) * PERIOD_S;
      this.wanted[c] = (this.wanted[c] ?? 0) + n;
      this.sampledOut[c] = (this.sampledOut[c] ?? 0) + Math.round(n * (1 - (perMillion[c] ?? 1e6) / 1e6));
      this.failed[c] = (this.failed[c] ?? 0) + (drops[c] ?? 0);
    }
    const counters: Record<string, bigint> = {
      ringbuf_reserve_failed: BigInt(this.failed.reduce((a, b) => a + b, 0)),
    };
    if (perClass)
      NAMES.forEach((name, c) => {
        counters[`class_${name}_wanted`] = BigInt(this.wanted[c] ?? 0);
        counters[`class_${name}_sampled_out`] = BigInt(this.sampledOut[c] ?? 0);
        counters[`class_${name}_reserve_failed`] = BigInt(this.failed[c] ?? 0);
      });
    const kept = [0, 1, 2].reduce(
      (s, c) => s + ((offered[c] ?? 0) * (perMillion[c] ?? 1e6)) / 1e6 - (drops[c] ?? 0) / PERIOD_S,
      0,
    );
    const value = create(AgentStatusSchema, {
      agentId: this.id,
      node: "n",
      timeUnixNano: BOOT_NS + BigInt(this.i++) * BigInt(PERIOD_S) * 1_000_000_000n,
      mode: AgentMode.FULL,
      counters,
      eventRatePerS: Math.max(0, kept),
      ringbufReserveFailures: counters.ringbuf_reserve_failed,
    });
    const producer = w.sb.kafka.producer();
    await producer.connect();
    await producer.send({
      topic: w.sb.topics.agent,
      messages: [{ key: this.id, value: Buffer.from(toBinary(AgentStatusSchema, value)) }],
    });
    await producer.disconnect();
    await w.projector.caughtUp(20_000);
  }
}

const latestFor = async (key: string): Promise<AgentControl> => {
  const msgs = (await readTopic(w.sb.kafka, w.controlTopic)).filter((m) => m.key === key);
  return fromBinary(AgentControlSchema, msgs[msgs.length - 1]?.value ?? Buffer.alloc(0));
};
const perClass = (c: AgentControl): number[] =>
  [EventClass.REQUEST, EventClass.RESPONSE, EventClass.CONNECTION].map(
    (cls) => c.sampling.find((s) => s.class === cls)?.perMillion ?? -1,
  );

test("a CONNECTION burst with drops cuts CONNECTION only; recovery raises it again; published per class", async () => {
  const r = (await (await w.call("POST", "/v1/releases", { body: sampleRelease() })).json()) as {
    id: string;
  };
  expect((await w.call("POST", `/v1/releases/${r.id}/start`, { ifMatch: 1 })).status).toBe(200);
  const publish = () => w.commands.publishControl();
  const tick = () => samplingTick(w.sb.database.db, w.sampling, publish);
  const a = new Agent("agent-s");
  const full = [1e6, 1e6, 1e6];
  await a.period([10_000, 10_000, 1_000], full);
  await tick();
  await a.period([10_000, 10_000, 1_000], full);
  expect(await tick()).toBe(false); // within the setpoint (0.7 × 50k/s): nothing to publish
  // CONNECTION ×100; the shared ring fails events of every class.
  await a.period([10_000, 10_000, 100_000], full, [2_000, 2_000, 20_000]);
  expect(await tick()).toBe(true);
  const low = await latestFor("agent-s");
  expect(low.target).toBe("agent-s");
  expect(low.rules.map((x) => x.releaseId)).toEqual([r.id]);
  const cut = perClass(low);
  expect(cut.slice(0, 2)).toEqual([1e6, 1e6]);
  // CONNECTION gets what REQUEST and RESPONSE leave of the setpoint (0.7 × 50k): 15k of 100k/s.
  expect(cut[2]).toBe(150_000);
  const star = await latestFor("*");
  expect(star.generation).toBe(low.generation);
  expect(star.sampling).toEqual([]);
  // The burst goes on at the new rates without drops: settled, nothing new to publish.
  await a.period([10_000, 10_000, 100_000], cut);
  expect(await tick()).toBe(false);
  // The burst ends: after the peak hold (2 periods), CONNECTION doubles back per period to every event.
  let rates = cut;
  for (let i = 0; i < 6; i++) {
    await a.period([10_000, 10_000, 1_000], rates);
    await tick();
    rates = perClass(await latestFor("agent-s"));
  }
  expect(rates).toEqual(full);
}, 120_000);

test("an agent without per-class counters: the total drops and rate set one rate for every class", async () => {
  const publish = () => w.commands.publishControl();
  const tick = () => samplingTick(w.sb.database.db, w.sampling, publish);
  const a = new Agent("agent-old");
  await a.period([20_000, 0, 0], [1e6, 1e6, 1e6], [0, 0, 0], false);
  await tick();
  await a.period([500_000, 0, 0], [1e6, 1e6, 1e6], [100_000, 0, 0], false);
  expect(await tick()).toBe(true);
  const rates = perClass(await latestFor("agent-old"));
  expect(rates[0]).toBeLessThanOrEqual(100_000);
  expect(rates[1]).toBe(rates[0] ?? -1);
  expect(rates[2]).toBe(rates[0] ?? -1);
}, 60_000);
