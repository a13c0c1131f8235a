// `./dev up` twice leaves exactly one of each process (the agent and the demo chain's holder included);
// `./dev down` leaves none, and no namespace, cgroup or pin folder of the demo. Runs a second stack of its
// own (own state folder, own ports) so the stack the other tests use is not disturbed, and so the port
// overrides are exercised too.
import { afterAll, expect, test } from "bun:test";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { ownStack } from "../support/own-stack.ts";
import { listProcesses } from "../support/processes.ts";

const { stateDir, ports, dev, devWithin } = ownStack("lifecycle", 20000, 26000);

/** Bun services of this stack: the same entry file runs in every stack; the state folder tells them apart. */
function service(all: ReturnType<typeof listProcesses>, entry: string) {
  return all.filter(
    (p) => p.env.get("INDIGO_STATE_DIR") === stateDir && p.argv.some((a) => a.endsWith(entry)),
  );
}

function stackProcesses() {
  const all = listProcesses();
  return {
    kafka: all.filter((p) => p.argv.includes(join(stateDir, "kafka/server.properties"))),
    // The data folder may sit outside stateDir (mkdtemp's 0700 folder is closed to the postgres user): the
    // postmaster is recognised by its own port.
    postgres: all.filter(
      (p) => p.argv[0]?.endsWith("/postgres") && p.argv.join(" ").includes(`-p ${ports.INDIGO_PG_PORT}`),
    ),
    api: service(all, "packages/api/src/main.ts"),
    projector: service(all, "packages/projector/src/main.ts"),
    agent: service(all, "packages/agent/src/cli/main.ts"),
    demo: service(all, "infra/demo/main.ts"),
  };
}

afterAll(async () => {
  await dev("down");
  rmSync(stateDir, { recursive: true, force: true });
  // Where ./dev puts the Postgres data of a state folder the postgres user cannot reach (infra/dev/postgres.sh).
  const pgFallback = `/var/tmp/indigo-postgres-${new Bun.CryptoHasher("md5").update(stateDir).digest("hex").slice(0, 10)}`;
  rmSync(pgFallback, { recursive: true, force: true });
}, 120_000);

test("./dev up twice leaves one of each process, each on its overridden port; ./dev down leaves none", async () => {
  const first = await devWithin(200_000, "up");
  expect(first.code, first.output).toBe(0);
  const second = await devWithin(60_000, "up");
  expect(second.code, second.output).toBe(0);

  const running = stackProcesses();
  expect(running.kafka.length).toBe(1);
  expect(running.postgres.length).toBe(1);
  expect(running.api.length).toBe(1);
  expect(running.projector.length).toBe(1);
  expect(running.agent.length).toBe(1);
  expect(running.demo.length).toBe(1);
  const topology = JSON.parse(readFileSync(join(stateDir, "demo/topology.json"), "utf8")) as {
    serving: boolean;
    ns: Record<string, string>;
    cgroupParent: string;
    pinDir: string;
  };
  expect(topology.serving).toBe(true);
  const agentHealth = await fetch(`http://127.0.0.1:${ports.INDIGO_AGENT_PORT}/healthz`);
  expect(agentHealth.status).toBe(200);
  expect(await agentHealth.json()).toMatchObject({ ok: true, kafka_connected: true });
  expect(second.output).toContain(`http://127.0.0.1:${ports.INDIGO_AGENT_PORT}`);
  expect(second.output).toContain(`http://127.0.0.1:${ports.INDIGO_API_PORT}`);
  expect(second.output).toContain(`127.0.0.1:${ports.INDIGO_KAFKA_PORT}`);
  expect(second.output).toContain(`127.0.0.1:${ports.INDIGO_PG_PORT}`);

  const health = await fetch(`http://127.0.0.1:${ports.INDIGO_API_PORT}/healthz`);
  expect(health.status).toBe(200);
  expect(await health.json()).toEqual({ ok: true, checks: { postgres: { ok: true }, kafka: { ok: true } } });

  const down = await dev("down");
  expect(down.code, down.output).toBe(0);
  const after = stackProcesses();
  expect(
    after.kafka.length +
      after.postgres.length +
      after.api.length +
      after.projector.length +
      after.agent.length +
      after.demo.length,
  ).toBe(0);
  const namespaces = Bun.spawnSync(["ip", "netns", "list"]).stdout.toString();
  for (const ns of Object.values(topology.ns)) expect(namespaces).not.toContain(ns);
  expect(existsSync(topology.cgroupParent)).toBe(false);
  expect(existsSync(topology.pinDir)).toBe(false);
  const status = await dev("status");
  expect(status.output).toMatch(/postgres\s+down/);
  expect(status.output).toMatch(/kafka\s+down/);
  expect(status.output).toMatch(/api\s+down/);
  expect(status.output).toMatch(/projector\s+down/);
  expect(status.output).toMatch(/agent\s+down/);
  expect(status.output).toMatch(/demo\s+down/);
}, 300_000);
