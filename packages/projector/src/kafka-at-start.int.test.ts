// The projector process started while nothing answers at the broker address it was given: it stays up and
// says it is waiting, and once the broker is there (a relay to the real one opens on that port) it joins its
// group and projects what the agents wrote meanwhile. Before, a failed first connect ended the process.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { brokersFromEnv } from "@indigo/bus";
import { type FreezableProxy, freePort, freezableProxy } from "../../api/src/testing/freezable-proxy.ts";
import { waitCaughtUp } from "./projector.ts";
import { spawnProjector } from "./testing/child.ts";
import { cleanSnapshot } from "./testing/project.ts";
import { createSandbox, type Sandbox } from "./testing/sandbox.ts";
import { snapshot } from "./testing/snapshot.ts";
import { produceAgentBatches, tracesAcrossAgents } from "./testing/stream.ts";

let sb: Sandbox;
let proxy: FreezableProxy | undefined;
let projector: ReturnType<typeof spawnProjector> | undefined;
beforeAll(async () => {
  sb = await createSandbox("kafka_at_start", { dye: 2, agent: 1, release: 1 });
}, 120_000);
afterAll(async () => {
  projector?.kill("SIGKILL");
  await proxy?.close().catch(() => {});
  await sb.close();
}, 60_000);

test("started with no broker at its address: it waits, then projects everything once the broker is there", async () => {
  const port = await freePort();
  const group = `at_start_${sb.id}`;
  projector = spawnProjector(
    sb,
    group,
    1000,
    sb.databaseUrl,
    { INDIGO_KAFKA_BROKERS: `127.0.0.1:${port}` },
    "pipe",
  );
  let stderr = "";
  void (async () => {
    for await (const chunk of projector.stderr as ReadableStream<Uint8Array>)
      stderr += new TextDecoder().decode(chunk);
  })();
  const events = tracesAcrossAgents({
    eventsPerBatch: 50,
    hopsPerTrace: 3,
    cohortEvery: 2,
    missEvery: 5,
    dye: 3,
    releaseId: "r3",
    tracePrefix: "K",
  });
  await produceAgentBatches(sb, 2, 5, events);

  const waiting = performance.now() + 30_000;
  while (!stderr.includes("kafka not reachable yet") && performance.now() < waiting) await Bun.sleep(100);
  expect(stderr).toContain("projector: kafka not reachable yet");
  // kafkajs' own retries of the first connect are over by now: the old projector had exited.
  await Bun.sleep(8_000);
  expect(projector.exitCode, stderr).toBeNull();

  const [host = "127.0.0.1", brokerPort = "19092"] = (brokersFromEnv()[0] ?? "").split(":");
  proxy = await freezableProxy(host, Number(brokerPort), port);
  const topics = [sb.topics.dye, sb.topics.agent, sb.topics.release];
  await waitCaughtUp(sb.admin, sb.database.db, group, topics, 45_000);
  const projected = await snapshot(sb.database.db);
  expect(projected.coverage.length).toBeGreaterThan(0);
  expect(projected).toEqual(await cleanSnapshot(sb, 1000));
  projector.kill("SIGTERM");
  expect(await projector.exited).toBe(0);
  projector = undefined;
}, 110_000);
