// The API process (main.ts, as ./dev and a deployment run it) started while the broker at its address
// accepts connections and answers nothing (a stopped or overloaded broker; the test's relay to the real one,
// frozen): it serves at once, /healthz says Kafka is not connected, a command is a 503 naming Kafka. Once
// the broker answers (the relay thaws) it connects by itself and /healthz turns 200. Before, the API waited
// for kafkajs' connect before it listened, and a connect that failed was final: /healthz said "Broker not
// connected" for the life of the process, and `./dev up` waited its 180 s for an API that never got ready.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import { brokersFromEnv } from "@indigo/bus";
import { type FreezableProxy, freePort, freezableProxy } from "./testing/freezable-proxy.ts";
import { createWorld, sampleRelease, type World } from "./testing/world.ts";

let world: World;
let proxy: FreezableProxy | undefined;
let api: ReturnType<typeof Bun.spawn> | undefined;
beforeAll(async () => {
  world = await createWorld("kafka_at_start");
}, 120_000);
afterAll(async () => {
  api?.kill("SIGKILL");
  await proxy?.close().catch(() => {});
  await world.close();
}, 60_000);

interface Health {
  ok: boolean;
  checks: Record<string, { ok: boolean; error?: string }>;
}

test("started with the broker not answering: serves at once, commands are 503s naming Kafka; connects when it answers", async () => {
  const [host = "127.0.0.1", port = "19092"] = (brokersFromEnv()[0] ?? "").split(":");
  proxy = await freezableProxy(host, Number(port), await freePort());
  proxy.freeze();
  const apiPort = await freePort();
  const started = performance.now();
  let stderr = "";
  api = Bun.spawn(["bun", join(import.meta.dir, "main.ts")], {
    env: {
      ...process.env,
      INDIGO_API_PORT: String(apiPort),
      INDIGO_DATABASE_URL: world.sb.databaseUrl,
      INDIGO_KAFKA_BROKERS: `127.0.0.1:${proxy.port}`,
      // no background passes: this API shares nothing with the others but its database
      INDIGO_ANALYSIS_PERIOD_MS: "0",
      INDIGO_SAMPLING_PERIOD_MS: "0",
      INDIGO_CONTROL_RETRY_MS: "0",
    },
    stdout: "ignore",
    stderr: "pipe",
  });
  void (async () => {
    for await (const chunk of api.stderr as ReadableStream<Uint8Array>)
      stderr += new TextDecoder().decode(chunk);
  })();
  const base = `http://127.0.0.1:${apiPort}`;
  const health = async (): Promise<{ status: number; body: Health } | undefined> => {
    const r = await fetch(`${base}/healthz`).catch(() => undefined);
    return r ? { status: r.status, body: (await r.json()) as Health } : undefined;
  };

  let first: { status: number; body: Health } | undefined;
  while (!first && performance.now() - started < 15_000) {
    first = await health();
    if (!first) await Bun.sleep(100);
  }
  expect(first, stderr).toBeDefined();
  // kafkajs' connect waits up to its request timeout (30 s) for an answer; the server does not wait for it
  expect(performance.now() - started, stderr).toBeLessThan(10_000);
  expect(first?.status).toBe(503);
  expect(first?.body.checks.postgres).toEqual({ ok: true });
  expect(first?.body.checks.kafka?.ok).toBe(false);
  expect(first?.body.checks.kafka?.error).toMatch(/^not connected yet: /);

  const created = await fetch(`${base}/v1/releases`, {
    method: "POST",
    headers: { authorization: `Bearer ${world.tokens.operator}`, "content-type": "application/json" },
    body: JSON.stringify(sampleRelease({ name: "before-kafka" })),
  });
  const problem = (await created.json()) as { type: string; detail: string };
  expect([created.status, problem.type], `${JSON.stringify(problem)}\n${stderr}`).toEqual([
    503,
    "/problems/unavailable",
  ]);
  expect(problem.detail).toMatch(/^Kafka did not answer: /);
  const listed = await world.call("GET", "/v1/releases");
  expect(((await listed.json()) as { releases: unknown[] }).releases).toEqual([]);

  // kafkajs gives up on the first connect after its request timeout (30 s); the broker answers after that.
  const giveUp = performance.now() + 60_000;
  while (!stderr.includes("api: kafka not reachable yet") && performance.now() < giveUp) await Bun.sleep(200);
  expect(stderr).toContain("api: kafka not reachable yet");
  expect((await health())?.body.checks.kafka?.error).toMatch(/^not connected yet: .+/);
  proxy.thaw();
  const appeared = performance.now();
  let now: { status: number; body: Health } | undefined;
  while (performance.now() - appeared < 60_000) {
    now = await health();
    if (now?.status === 200) break;
    await Bun.sleep(200);
  }
  expect(now?.status, `${JSON.stringify(now)}\n${stderr}`).toBe(200);
  expect(now?.body).toEqual({ ok: true, checks: { postgres: { ok: true }, kafka: { ok: true } } });
  console.log(
    `api served ${(appeared - started).toFixed(0)} ms before the broker answered; healthy ${(performance.now() - appeared).toFixed(0)} ms after`,
  );

  api.kill("SIGTERM");
  expect(await api.exited).toBe(0);
  api = undefined;
}, 110_000);
