// The standalone agent of the chain tests (packages/agent/src/cli/main.ts, or INDIGO_CHAIN_CLI): started on
// the chain's cgroup with tc on B's links, its rules file rewritten + SIGHUP at run time, its events read
// from its stdout; and the engine defaults (option ExID, marks) the verdicts compare the wire with.
import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { type Proc, spawnProc, stopProc } from "../../packages/agent/src/testing/proc.ts";
import { DYE, PATTERN } from "./plan.ts";
import type { ChainNet } from "./topology.ts";
import type { AgentEvent } from "./verdicts.ts";

export const REPO = resolve(import.meta.dir, "../..");
export const CLI = process.env.INDIGO_CHAIN_CLI ?? join(REPO, "packages/agent/src/cli/main.ts");

export interface EngineConfig {
  exid: number;
  mark: (dye: number) => number;
  markMask: number;
}

/** ExID and marks from the agent's own defaults (engine/dye-config.ts), overridable by env. */
export const engineConfig = async (): Promise<EngineConfig> => {
  let exid = 0x1d60;
  let base = 0x0100_0000;
  let mask = 0xffff;
  try {
    const mod = (await import(join(REPO, "packages/agent/src/engine/dye-config.ts"))) as {
      defaultDyeConfig?: () => { optionExid: number; markBase: number; markMask: number };
    };
    const c = mod.defaultDyeConfig?.();
    if (c) [exid, base, mask] = [c.optionExid, c.markBase, c.markMask];
  } catch {
    // older/newer engine layout: the constants above, or the env
  }
  const num = (v: string | undefined, d: number) => (v === undefined ? d : Number(v));
  exid = num(process.env.INDIGO_CHAIN_EXID, exid);
  base = num(process.env.INDIGO_CHAIN_MARK_BASE, base);
  mask = num(process.env.INDIGO_CHAIN_MARK_MASK, mask);
  return { exid, markMask: mask, mark: (dye) => ((base & ~mask) | (dye & mask)) >>> 0 };
};

export interface Agent {
  proc: Proc;
  rulesFile: string;
  pinDir: string;
}

export const writeRules = (file: string, rules: object[]) =>
  writeFileSync(file, `${JSON.stringify(rules, null, 2)}\n`);

export const agentEvents = (a: Agent): AgentEvent[] =>
  a.proc.out.json<AgentEvent>().filter((e) => e.ts_ns !== undefined && e.dye !== undefined);

export const startAgent = async (net: ChainNet, dir: string): Promise<Agent> => {
  const rulesFile = join(dir, "rules.json");
  writeRules(rulesFile, [{ dye: DYE, traceIdPattern: PATTERN }]);
  const pinDir = `/sys/fs/bpf/indigo-chain-${net.topo.id}`;
  const [, l2, l3] = net.topo.links;
  const argv = [
    process.execPath,
    CLI,
    "run",
    "--standalone",
    "--rules",
    rulesFile,
    "--cgroup",
    net.topo.cgroupParent,
    "--pin-dir",
    pinDir,
    "--netns",
    net.topo.ns.B,
    "--iface",
    l2.right.ifname,
    "--iface",
    l3.left.ifname,
  ];
  const proc = net.track(spawnProc("agent", argv));
  try {
    await proc.err.waitFor((l) => /"ready":\s*true/.test(l), 60_000, "agent ready line on stderr");
  } catch (e) {
    await stopProc(proc);
    throw new Error(
      `the agent did not start: ${(e as Error).message}\n$ ${argv.join(" ")}\nstderr:\n${proc.err.lines.join("\n")}`,
    );
  }
  return { proc, rulesFile, pinDir };
};

/** SIGHUP the agent after rewriting its rules; resolves on its {"rules":...} acknowledgement. */
export const reloadRules = async (a: Agent, rules: object[]): Promise<string> => {
  writeRules(a.rulesFile, rules);
  const from = a.proc.err.lines.length;
  a.proc.proc.kill("SIGHUP");
  return a.proc.err.waitFor(
    (l) => /^\{"(rules|error)"/.test(l),
    10_000,
    "agent rules reload acknowledgement",
    from,
  );
};
