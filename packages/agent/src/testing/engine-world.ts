// The world of the dye engine's real-kernel tests: two network namespaces joined by veth, python3 servers
// and clients (py/dyetraffic.py) inside a fresh child cgroup, the engine (bpf/build/indigo.bpf.o) loaded
// in-process and scoped to it. A test file calls `engineTests()` once: it builds the object, gives the `it`
// that skips with a reason where root or BPF is missing (never under CI=true), and tears each case's world
// down after it, whatever failed.
import { afterEach } from "bun:test";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { ensureBpffs } from "../bpffs.ts";
import { ChildCgroup, findCgroup2Root } from "../cgroup.ts";
import { DEFAULT_OPTION_EXID, type DyeConfig } from "../engine/dye-config.ts";
import { Engine } from "../engine/engine.ts";
import type { DyeEvent } from "../events/decode-dye-event.ts";
import { compileRules } from "../rules/compile.ts";
import type { CohortRuleInput } from "../rules/types.ts";
import { startCapture } from "./capture.ts";
import { cleanUp } from "./cleanup.ts";
import { buildEngineBeforeAll, ENGINE_TRAFFIC_TOOLS, kernelGate } from "./kernel-gate.ts";
import { createVethPair, inCgroupAndNetns, type VethPair } from "./netns.ts";
import { type DyedSegment, readPcap } from "./pcap.ts";

export const T = 60_000;
const PY = join(import.meta.dir, "py/dyetraffic.py");

/** One case's world; everything in it is torn down by afterEach, whatever failed. */
export interface World {
  net: VethPair;
  cgroup: ChildCgroup;
  pinDir: string;
  engine?: Engine;
  drained?: Promise<void>;
  events: DyeEvent[];
  children: ChildProcess[];
}
let world: World | undefined;
let seq = 0;
/** A number for this case's file names. */
export const caseNumber = () => seq;

/** Trace ids: COHORT matches PATTERN (exactly 10 bytes, hex after "t-"), OTHER has the length but not the class. */
export const PATTERN = "^t-[0-9a-f]{8}";
export const COHORT = "t-0123abcd";
export const OTHER = "t-0123abcz";
/** One rule: requests whose trace id matches PATTERN get `dye`. */
export const ruleFor = (dye: number): CohortRuleInput[] => [{ dye, traceIdPattern: PATTERN }];
/** The trace id a request needs to get `dye` (non-zero) or no dye (0) from ruleFor(dye). */
export const idsFor = (dyes: number[]): string[] => dyes.map((d) => (d ? COHORT : OTHER));

/** The namespaces and the cgroup of a case, without the engine (see attachEngine). */
export const setUpWorld = (opts: { ipv6?: boolean } = {}): World => {
  const tag = `${process.pid}-${seq++}`;
  const w: World = {
    net: createVethPair(opts),
    cgroup: ChildCgroup.create(findCgroup2Root() ?? "", `indigo-test-engine-${tag}`),
    pinDir: join(ensureBpffs(), `indigo-test-engine-${tag}`),
    events: [],
    children: [],
  };
  world = w;
  return w;
};

export const attachEngine = (
  w: World,
  config: Partial<DyeConfig> = {},
  rules: CohortRuleInput[] = [],
  tcOn: "A" | "none" = "A",
): World => {
  w.engine = Engine.start({
    pinDir: w.pinDir,
    cgroupPath: w.cgroup.path,
    interfaces: tcOn === "A" ? [w.net.ifA] : [],
    netnsPath: w.net.nsPath(w.net.nsA),
    config,
  });
  w.engine.writeRules(compileRules(rules));
  w.drained = w.engine.drain((e) => w.events.push(e));
  return w;
};

export const setUp = (
  config: Partial<DyeConfig> = {},
  rules: CohortRuleInput[] = [],
  tcOn: "A" | "none" = "A",
): World => attachEngine(setUpWorld(), config, rules, tcOn);

/** `bind`: the address to listen on (default 0.0.0.0; an IPv6 one listens on IPv6 only). */
export const startServer = async (
  w: World,
  ns: string,
  port: number,
  forward?: string,
  bind?: string,
): Promise<void> => {
  const [cmd, ...args] = inCgroupAndNetns(w.cgroup.path, ns, [
    "python3",
    PY,
    "server",
    String(port),
    ...(forward ? [forward] : []),
  ]);
  const child = spawn(cmd!, args, {
    stdio: ["ignore", "pipe", "inherit"],
    env: bind ? { ...process.env, BIND_ADDR: bind } : process.env,
  });
  w.children.push(child);
  await new Promise<void>((resolve, reject) => {
    child.stdout?.once("data", () => resolve());
    child.once("exit", (code) => reject(new Error(`server exited ${code}`)));
  });
};

export interface ClientLine {
  i: number;
  trace_id: string;
  client_mark: number;
  server: { mark: number; forwarded?: { mark: number } };
}

/** dyetraffic.py's client in nsA and the case's cgroup: one keep-alive connection, one request per trace id. */
const clientArgv = (w: World, target: string, traceIds: string[], primer?: string): string[] =>
  inCgroupAndNetns(w.cgroup.path, w.net.nsA, [
    "python3",
    PY,
    "client",
    target,
    traceIds.join(","),
    ...(primer ? [primer] : []),
  ]);

/**
 * One keep-alive connection from nsA, one request per trace id. `primer`: the client's thread first reads a
 * request with that trace id (loopback, see dyetraffic.py), so its connection is born with the inherited dye.
 */
export const runClient = (
  w: World,
  target: string,
  traceIds: string[],
  primer?: string,
  bodyBytes = 0,
): ClientLine[] => {
  const [cmd, ...args] = clientArgv(w, target, traceIds, primer);
  const run = spawnSync(cmd!, args, {
    encoding: "utf8",
    timeout: 20_000,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, BODY_BYTES: String(bodyBytes) },
  });
  if (run.status !== 0) throw new Error(`client failed: ${run.stderr}`);
  return run.stdout
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as ClientLine);
};

/**
 * runClient's keep-alive connection, held open after its first `holdAfter` requests until `resume()`: what
 * happens to a connection established before something (the engine) starts. Resolves once those are done.
 */
export const startHeldClient = async (
  w: World,
  target: string,
  traceIds: string[],
  holdAfter: number,
): Promise<{ held: ClientLine[]; resume: () => Promise<ClientLine[]> }> => {
  const [cmd, ...args] = clientArgv(w, target, traceIds);
  const child = spawn(cmd!, args, {
    stdio: ["pipe", "pipe", "inherit"],
    env: { ...process.env, HOLD_AFTER: String(holdAfter) },
  });
  w.children.push(child);
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  let out = "";
  child.stdout?.on("data", (chunk) => {
    out += chunk;
  });
  const lines = () =>
    out
      .split("\n")
      .filter((l) => l.trim() !== "")
      .map((l) => JSON.parse(l) as ClientLine);
  for (let i = 0; i < 250 && lines().length < holdAfter; i++) await Bun.sleep(20);
  if (lines().length < holdAfter)
    throw new Error(`the client did not finish its first ${holdAfter} requests`);
  return {
    held: lines(),
    resume: async () => {
      child.stdin?.end("\n");
      const code = await exited;
      if (code !== 0) throw new Error(`client exited ${code}`);
      return lines();
    },
  };
};

export const settle = async (w: World, want: (e: DyeEvent[]) => boolean): Promise<void> => {
  for (let i = 0; i < 100 && !want(w.events); i++) await Bun.sleep(20);
};

export const MARK = { markBase: 0x0100_0000, markMask: 0xffff };

export const ingressAt8080 = (ev: DyeEvent[]) =>
  ev.filter((e) => e.kind === "request" && e.direction === "ingress" && e.sport === 8080);

/**
 * One client connection from a thread primed with a cohort request (runClient) to the server on B:8080, one
 * request per dye, under a capture on B's veth; returns once the server reported every request.
 */
export const capturedRun = async (
  w: World,
  dyes: number[],
  serverAddress = w.net.ipB,
): Promise<{ segs: DyedSegment[]; lines: ClientLine[] }> => {
  const pcap = join("/tmp", `indigo-engine-${process.pid}-${seq}.pcap`);
  const cap = await startCapture(w.net.nsB, w.net.ifB, pcap);
  const lines = runClient(w, `${serverAddress}:8080`, idsFor(dyes), COHORT);
  await settle(w, (ev) => ingressAt8080(ev).length >= dyes.length);
  await Bun.sleep(200);
  await cap.stop();
  const segs = readPcap(pcap, DEFAULT_OPTION_EXID);
  rmSync(pcap, { force: true });
  return { segs, lines };
};

/** Registers the build and the teardown; returns the `it` to declare cases with. */
export function engineTests(): ReturnType<typeof kernelGate>["it"] {
  const { it, skipReason } = kernelGate("dye engine integration tests", ENGINE_TRAFFIC_TOOLS);
  buildEngineBeforeAll("dye engine integration tests", skipReason, T);
  afterEach(async () => {
    const w = world;
    world = undefined;
    if (!w) return;
    for (const c of w.children) c.kill("SIGKILL");
    await cleanUp(worldTeardown(w));
  }, T);
  return it;
}

/** The steps that take a case's engine, namespaces, cgroup and pins down, for cleanUp (each runs whatever failed). */
export const worldTeardown = (
  w: Pick<World, "engine" | "drained" | "net" | "cgroup" | "pinDir">,
): (() => unknown)[] => [
  async () => {
    await w.engine?.stop();
    await w.drained;
  },
  () => w.net.destroy(),
  () => w.cgroup.remove(),
  () => rmSync(w.pinDir, { recursive: true, force: true }),
];

/** The IP layer's FragFails counter of a namespace: packets it had to drop for being larger than the MTU. */
export const fragFails = (ns: string, family: 4 | 6 = 4): number => {
  if (family === 6) {
    const snmp6 = spawnSync("ip", ["netns", "exec", ns, "cat", "/proc/net/snmp6"], {
      encoding: "utf8",
    }).stdout;
    const line = snmp6.split("\n").find((l) => l.startsWith("Ip6FragFails"));
    return Number(line!.split(/\s+/)[1]);
  }
  const snmp = spawnSync("ip", ["netns", "exec", ns, "cat", "/proc/net/snmp"], { encoding: "utf8" }).stdout;
  const [names, values] = snmp.split("\n").filter((l) => l.startsWith("Ip:"));
  const column = names!.split(/\s+/).indexOf("FragFails");
  return Number(values!.split(/\s+/)[column]);
};
