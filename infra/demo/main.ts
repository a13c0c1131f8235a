// The demo chain `./dev up` runs so the dashboard has something to show: tests/chain's client (node) → A (go)
// → B (java) → C (python3), each hop in a network namespace of its own and in a child of one cgroup-v2
// folder that the stack's agent is scoped to (tests/chain/topology.ts, rig.ts). This process holds the chain:
// it makes the namespaces and cgroups and writes $INDIGO_STATE_DIR/demo/{topology.json,agent.args} (the
// agent's arguments; ./dev starts the agent with them), waits until the agent answers on INDIGO_AGENT_PORT,
// then starts the hops and rewrites topology.json with "serving": true. The order matters: the engine sets
// its TCP-option callbacks on sockets it sees created, so a server listening before the agent attached
// would never read the dye its callers send (./dev restarts the demo when it starts the agent again).
// SIGTERM stops the hops and removes the namespaces and cgroups. It sends no traffic itself:
// `bun infra/demo/traffic.ts` does (cohort trace ids t-xxxxxxxx-xxxx and near misses).
//
//   bun infra/demo/main.ts            run the demo (INDIGO_STATE_DIR is required)
//   bun infra/demo/main.ts --cleanup  remove what a demo of this state folder left behind (idempotent)
import { mkdirSync, rmSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { ensureBpffs } from "../../packages/agent/src/bpffs.ts";
import { buildServers, PORTS, startHops } from "../../tests/chain/rig.ts";
import { ChainNet } from "../../tests/chain/topology.ts";
import { demoServiceRules, writeServiceRules } from "./service-rules.ts";
import { cleanupDemo, demoDir, topologyFile, writeTopology } from "./topology.ts";

const line = (o: unknown) =>
  process.stderr.write(`${JSON.stringify({ t: new Date().toISOString(), ...(o as object) })}\n`);

const stateDir = process.env.INDIGO_STATE_DIR;
if (!stateDir) {
  process.stderr.write("infra/demo/main.ts: INDIGO_STATE_DIR is not set (./dev sets it)\n");
  process.exit(2);
}

if (process.argv.includes("--cleanup")) {
  line({ cleanup: cleanupDemo(stateDir) });
  process.exit(0);
}

const agentPort = Number(process.env.INDIGO_AGENT_PORT ?? 7401);
/** The agent answers /healthz (any status: degraded or spooling still means it is attached, or never will be). */
const agentAnswers = async (ms: number): Promise<boolean> => {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    try {
      const r = await fetch(`http://127.0.0.1:${agentPort}/healthz`, { signal: AbortSignal.timeout(1000) });
      const body = (await r.json()) as { agent_id?: string };
      if (body.agent_id) return true;
    } catch {
      // not up yet
    }
    await Bun.sleep(200);
  }
  return false;
};

const main = async (state: string): Promise<void> => {
  if (process.getuid?.() !== 0) throw new Error("the demo chain needs root (network namespaces, cgroups)");
  mkdirSync(demoDir(state), { recursive: true });
  cleanupDemo(state); // a previous demo of this state folder that died without cleaning up
  const built = buildServers();
  const net = ChainNet.create();
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    await net.teardown().catch((e: Error) => line({ error: `teardown: ${e.message}` }));
    line({ stopped: signal });
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
  try {
    const { topo } = net;
    const [l1, l2, l3] = topo.links;
    const pinDir = join(ensureBpffs(), `indigo-demo-${topo.id}`);
    const topology = {
      id: topo.id,
      pid: process.pid,
      serving: false,
      target: `http://${l1.right.addr}:${PORTS.A}`,
      ns: topo.ns,
      cgroupParent: topo.cgroupParent,
      cgroups: topo.cgroups,
      pinDir,
      agentArgs: [
        "run",
        "--agent-id",
        hostname(),
        "--cgroup",
        topo.cgroupParent,
        "--pin-dir",
        pinDir,
        "--netns",
        topo.ns.B,
        "--iface",
        l2.right.ifname,
        "--iface",
        l3.left.ifname,
        "--spool-dir",
        join(state, "agent/spool"),
      ],
    };
    writeTopology(state, topology);
    writeServiceRules(state, demoServiceRules(topo.cgroupIds));
    line({ waitingForAgent: `http://127.0.0.1:${agentPort}/healthz`, cgroup: topo.cgroupParent });
    if (!(await agentAnswers(180_000)))
      line({
        warning: "the agent did not answer within 180 s: starting the hops anyway (they will not be dyed)",
      });
    const hops = await startHops(net, built, { maxSockets: 2 });
    writeTopology(state, { ...topology, serving: true, target: hops.target });
    line({ ready: true, topology: topologyFile(state), target: hops.target, cgroup: topo.cgroupParent });
  } catch (e) {
    await net.teardown().catch(() => {});
    rmSync(topologyFile(state), { force: true });
    throw e;
  }
  setInterval(() => {}, 1 << 30);
};

main(stateDir).catch((e: Error) => {
  line({ error: e.message });
  process.exit(1);
});
