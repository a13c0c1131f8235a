// The demo chain's topology file ($INDIGO_STATE_DIR/demo/topology.json): written by main.ts once its
// namespaces and cgroups exist, again with "serving": true once the hops serve; read by traffic.ts, by ./dev (the agent's arguments) and by cleanup, which removes whatever a demo
// left behind (namespaces, cgroups, the agent's pinned maps) even when its process died uncleanly.
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "bun";
import { removeCgroupDir } from "../../packages/agent/src/cgroup.ts";

export interface DemoTopology {
  readonly id: string;
  readonly pid: number;
  /** true once the hops serve (they start after the agent is up: see main.ts) */
  readonly serving: boolean;
  /** base URL of hop A as the client namespace sees it */
  readonly target: string;
  readonly ns: Record<"client" | "A" | "B" | "C", string>;
  readonly cgroupParent: string;
  readonly cgroups: Record<"client" | "A" | "B" | "C", string>;
  /** the agent's bpffs pin folder (removed by cleanup, after the agent stopped) */
  readonly pinDir: string;
  /** `indigo-agent run …` arguments that scope the agent to this demo */
  readonly agentArgs: string[];
}

export const demoDir = (stateDir: string): string => join(stateDir, "demo");
export const topologyFile = (stateDir: string): string => join(demoDir(stateDir), "topology.json");

export const readTopology = (stateDir: string): DemoTopology | undefined => {
  const f = topologyFile(stateDir);
  return existsSync(f) ? (JSON.parse(readFileSync(f, "utf8")) as DemoTopology) : undefined;
};

export const writeTopology = (stateDir: string, t: DemoTopology): void => {
  const args = join(demoDir(stateDir), "agent.args");
  writeFileSync(`${args}.tmp`, `${t.agentArgs.join("\n")}\n`);
  renameSync(`${args}.tmp`, args);
  // Written whole, then renamed: ./dev waits for these files.
  writeFileSync(`${topologyFile(stateDir)}.tmp`, JSON.stringify(t, null, 2));
  renameSync(`${topologyFile(stateDir)}.tmp`, topologyFile(stateDir));
};

const rmCgroupTree = (path: string): void => {
  if (!existsSync(path)) return;
  // cgroup.kill (5.14+) SIGKILLs every process below; then the (empty) folders can go, children first.
  try {
    writeFileSync(join(path, "cgroup.kill"), "1");
  } catch {
    // an older kernel: the processes were stopped by their owner, or rmdir below says why not
  }
  for (const e of readdirSync(path, { withFileTypes: true }))
    if (e.isDirectory()) rmCgroupTree(join(path, e.name));
  removeCgroupDir(path);
};

/** Removes what the demo of this state folder left: namespaces, cgroups, pinned maps, its files. Idempotent. */
export const cleanupDemo = (stateDir: string): string[] => {
  const t = readTopology(stateDir);
  const removed: string[] = [];
  if (t) {
    const list = spawnSync(["ip", "netns", "list"]).stdout.toString();
    const present = new Set(list.split("\n").map((l) => l.split(" ")[0]));
    for (const ns of Object.values(t.ns)) {
      if (present.has(ns) && spawnSync(["ip", "netns", "del", ns]).exitCode === 0)
        removed.push(`netns ${ns}`);
    }
    if (existsSync(t.cgroupParent)) {
      rmCgroupTree(t.cgroupParent);
      removed.push(`cgroup ${t.cgroupParent}`);
    }
    if (existsSync(t.pinDir)) {
      rmSync(t.pinDir, { recursive: true, force: true });
      removed.push(`pins ${t.pinDir}`);
    }
  }
  for (const f of ["topology.json", "agent.args"]) rmSync(join(demoDir(stateDir), f), { force: true });
  return removed;
};
