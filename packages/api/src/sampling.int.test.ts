// The sampling controller on the real log: agent statuses showing a burst with drops make the API publish
// a lower rate under the agent's own key (with the running releases' rules); recovery publishes it back up.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { BOOT_NS } from "@indigo/projector/testing";
import {
  AgentControlSchema,
  AgentMode,
  AgentStatusSchema,
  create,
  fromBinary,
  toBinary,
} from "@indigo/proto";
import { samplingTick } from "./sampling.ts";
import { readTopic } from "./testing/topic.ts";
import { createWorld, sampleRelease, type World } from "./testing/world.ts";

let w: World;
beforeAll(async () => {
  w = await createWorld("sampling");
}, 60_000);
afterAll(async () => {
  await w?.close();
}, 30_000);

async function status(i: number, rate: number, failures: number): Promise<void> {
  const producer = w.sb.kafka.producer();
  await producer.connect();
  const value = create(AgentStatusSchema, {
    agentId: "agent-s",
    node: "n",
    timeUnixNano: BOOT_NS + BigInt(i) * 5_000_000_000n,
    mode: AgentMode.FULL,
    eventRatePerS: rate,
    ringbufReserveFailures: BigInt(failures),
  });
  await producer.send({
    topic: w.sb.topics.agent,
    messages: [{ key: "agent-s", value: Buffer.from(toBinary(AgentStatusSchema, value)) }],
  });
  await producer.disconnect();
  await w.projector.caughtUp(20_000);
}

const latestFor = async (key: string) => {
  const msgs = (await readTopic(w.sb.kafka, w.controlTopic)).filter((m) => m.key === key);
  return fromBinary(AgentControlSchema, msgs[msgs.length - 1]?.value ?? Buffer.alloc(0));
};

test("a burst with drops lowers the agent's published rate; recovery raises it again", async () => {
  const r = (await (await w.call("POST", "/v1/releases", { body: sampleRelease() })).json()) as {
    id: string;
  };
  expect((await w.call("POST", `/v1/releases/${r.id}/start`, { ifMatch: 1 })).status).toBe(200);
  const publish = () => w.commands.publishControl();
  await status(0, 10_000, 0);
  await samplingTick(w.sb.database.db, w.sampling, publish);
  await status(1, 500_000, 1000);
  expect(await samplingTick(w.sb.database.db, w.sampling, publish)).toBe(true);
  const low = await latestFor("agent-s");
  expect(low.target).toBe("agent-s");
  expect(low.rules.map((x) => x.releaseId)).toEqual([r.id]);
  expect(low.sampling[0]?.perMillion).toBeLessThanOrEqual(100_000);
  const star = await latestFor("*");
  expect(star.generation).toBe(low.generation);
  expect(star.sampling).toEqual([]);
  for (let i = 2; i < 10; i++) {
    await status(i, 10_000, 1000);
    await samplingTick(w.sb.database.db, w.sampling, publish);
  }
  expect((await latestFor("agent-s")).sampling[0]?.perMillion).toBe(1_000_000);
}, 90_000);
