// Kernel benchmarks of the dye engine (issue 3): eBPF time per request against the floor (empty programs on
// the same hooks, same run), added latency over interleaved pairs, and throughput loss, all on a 1 KiB
// HTTP-shaped request/response loop between two network namespaces.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { bpfObjectPath } from "../packages/agent/src/bpf-objects.ts";
import { findCgroup2Root } from "../packages/agent/src/cgroup.ts";
import { runAsync } from "../packages/agent/src/testing/run.ts";
import type { Benchmark, BenchResult } from "./benchmark.ts";
import { median, medianConfidenceInterval } from "./kernel/stats.ts";
import { createTopology, inCgroup, type Topology } from "./kernel/topology.ts";

const ROOT = resolve(import.meta.dir, "..");
// bpf/build/, or INDIGO_BPF_DIR: another build of the engine, for comparing a change before it lands.
const ENGINE_OBJECT = bpfObjectPath("indigo");
const FLOOR_OBJECT = bpfObjectPath("floor");
// The floor with sock_ops asking for the header-option callbacks (bpf/floor.bpf.c): what carrying a dye in the
// TCP header costs before any work, reported beside the floor.
const OPTION_FLOOR_OBJECT = bpfObjectPath("floor_option");
const OBJECTS = [ENGINE_OBJECT, FLOOR_OBJECT, OPTION_FLOOR_OBJECT];
const CLI = join(ROOT, "packages/agent/src/cli/main.ts");
const PAIRS = Number(process.env.INDIGO_BENCH_PAIRS ?? 30);
const ROUND_TRIPS = Number(process.env.INDIGO_BENCH_ROUND_TRIPS ?? 2000);
const PORT = 18600;
// Round trips run and discarded after each agent start (and before each baseline run, for symmetry): a node's
// agent has run for days, one just started still compiles its drain loop while the first events come in.
const WARMUP_ROUND_TRIPS = Number(process.env.INDIGO_BENCH_WARMUP_ROUND_TRIPS ?? 2000);

interface LoopRun {
  readonly medianNs: number;
  readonly perSecond: number;
  readonly bpfNsPerRequest: number | null;
  /** per program: ns and calls per round trip */
  readonly perProgram: Map<string, { ns: number; calls: number }>;
  /** CPU time of the agent process (all its threads) per round trip, µs */
  readonly agentCpuUs: number | null;
}

const NAMES = {
  ebpf: "kernel.ebpf_ns_per_request",
  floor: "kernel.ebpf_floor_ns_per_request",
  ratio: "kernel.ebpf_floor_ratio",
  latency: "kernel.latency_delta_ci_upper_pct",
  throughput: "kernel.throughput_loss_pct",
  sparse: "kernel.ebpf_ns_per_request_cohort_5pct",
  optionFloor: "kernel.ebpf_option_floor_ns_per_request",
} as const;
/** How the pairs' round trips are timed (the latency and throughput figures). */
const TIMED = `each run after ${WARMUP_ROUND_TRIPS} round trips not counted; both runs of a pair timed with kernel.bpf_stats_enabled=0, as a node runs (the accounting adds two clock reads to every program run; it is on only for the eBPF-time runs)`;
/** The informational mix: one request in 20 is cohort, as in a gray release's early steps. */
const SPARSE_EVERY = 20;

function unavailable(reason: string): BenchResult[] {
  return [
    { name: NAMES.ebpf, value: null, unit: "ns", target: null, better: "lower", detail: reason },
    { name: NAMES.ratio, value: null, unit: "ratio", target: 2, better: "lower", detail: reason },
    { name: NAMES.latency, value: null, unit: "%", target: 2, better: "lower", detail: reason },
    { name: NAMES.throughput, value: null, unit: "%", target: 2, better: "lower", detail: reason },
  ];
}

/** Ids of the BPF programs `pid` holds open, from its fds' fdinfo (this bpftool cannot list holders). */
function programIds(pid: number): number[] {
  const ids = new Set<number>();
  for (const fd of readdirSync(`/proc/${pid}/fdinfo`)) {
    try {
      const id = /^prog_id:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, "utf8"))?.[1];
      if (id) ids.add(Number(id));
    } catch {
      // closed while we looked
    }
  }
  return [...ids];
}

/** run_time_ns and run_cnt per program name of the BPF programs `pid` holds (needs kernel.bpf_stats_enabled=1). */
async function bpfRunTimes(pid: number): Promise<Map<string, { ns: number; count: number }>> {
  const out = new Map<string, { ns: number; count: number }>();
  for (const id of programIds(pid)) {
    const prog = JSON.parse(await runAsync(["bpftool", "-j", "prog", "show", "id", String(id)])) as {
      name?: string;
      run_time_ns?: number;
      run_cnt?: number;
    };
    out.set(prog.name ?? String(id), { ns: prog.run_time_ns ?? 0, count: prog.run_cnt ?? 0 });
  }
  return out;
}

const sumNs = (m: Map<string, { ns: number }>) => [...m.values()].reduce((n, p) => n + p.ns, 0);

const pinDirOf = (object: string) => `/sys/fs/bpf/indigo-bench-${basename(object, ".bpf.o")}`;

interface Agent {
  readonly pid: number;
  readonly stop: () => Promise<void>;
}

async function startAgent(topology: Topology, object: string, rulesFile: string): Promise<Agent> {
  // A pin folder per object: the floors' maps must not be mistaken for the engine's (or a running agent's).
  const pinDir = pinDirOf(object);
  const proc = Bun.spawn(
    [
      "bun",
      CLI,
      "run",
      "--standalone",
      "--rules",
      rulesFile,
      "--cgroup",
      topology.cgroup,
      "--iface",
      topology.hostIface,
      "--object",
      object,
      "--pin-dir",
      pinDir,
      // what the daemon reports in production: undyed events no consumer uses are counted, not reported
      "--skip-undyed",
    ],
    { stdout: "ignore", stderr: "pipe" },
  );
  const reader = proc.stderr.getReader();
  let pending: ReturnType<typeof reader.read> | undefined;
  let seen = "";
  const deadline = Date.now() + 20_000;
  while (!/\bready\b/.test(seen)) {
    if (Date.now() > deadline) {
      proc.kill("SIGKILL");
      throw new Error(`agent did not report ready: ${seen}`);
    }
    // One read in flight across timeouts: a read abandoned to a timeout would swallow its chunk.
    pending ??= reader.read();
    const chunk = await Promise.race([pending, Bun.sleep(1000).then(() => null)]);
    if (chunk) pending = undefined;
    if (chunk?.done) throw new Error(`agent exited before ready: ${seen}`);
    if (chunk?.value) seen += new TextDecoder().decode(chunk.value);
  }
  reader.releaseLock();
  return {
    pid: proc.pid,
    stop: async () => {
      proc.kill("SIGTERM");
      await proc.exited;
    },
  };
}

/** User + system CPU time of process `pid` and all its threads, µs (from /proc, in clock ticks of 10 ms). */
function cpuUs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

function rrClient(topology: Topology, rr: string, roundTrips: number, every: number): Promise<string> {
  return runAsync(
    inCgroup(
      topology.cgroup,
      [rr, "client", topology.serverIp, String(PORT), String(roundTrips), String(every)],
      topology.netns,
    ),
  );
}

async function loop(topology: Topology, rr: string, agent: Agent | null, every = 2): Promise<LoopRun> {
  const before = agent ? await bpfRunTimes(agent.pid) : new Map<string, { ns: number; count: number }>();
  const cpuBefore = agent ? cpuUs(agent.pid) : 0;
  const out = await rrClient(topology, rr, ROUND_TRIPS, every);
  const cpuAfter = agent ? cpuUs(agent.pid) : 0;
  const after = agent ? await bpfRunTimes(agent.pid) : new Map<string, { ns: number; count: number }>();
  const [count, medianNs, , elapsedNs] = out.trim().split(" ").map(Number) as [
    number,
    number,
    number,
    number,
  ];
  return {
    medianNs,
    perSecond: count / (elapsedNs / 1e9),
    bpfNsPerRequest: agent ? (sumNs(after) - sumNs(before)) / count : null,
    agentCpuUs: agent ? (cpuAfter - cpuBefore) / count : null,
    perProgram: new Map(
      [...after].map(([name, a]) => {
        const b = before.get(name) ?? { ns: 0, count: 0 };
        return [name, { ns: (a.ns - b.ns) / count, calls: (a.count - b.count) / count }];
      }),
    ),
  };
}

/** The kernel's run-time accounting: with it on, every program run pays two clock reads more. */
async function accounting(on: boolean): Promise<void> {
  await runAsync(["sysctl", "-qw", `kernel.bpf_stats_enabled=${on ? 1 : 0}`]);
}

/**
 * The engine's half of a pair: its round trips timed with the accounting off, as a node runs it, then the
 * same loop again with the same agent and the accounting on, for its eBPF time. Leaves the accounting off.
 */
async function engineRun(
  topology: Topology,
  rr: string,
  rulesFile: string,
): Promise<{ timed: LoopRun; accounted: LoopRun }> {
  const agent = await startAgent(topology, ENGINE_OBJECT, rulesFile);
  try {
    await rrClient(topology, rr, WARMUP_ROUND_TRIPS, 2);
    const timed = await loop(topology, rr, agent);
    await accounting(true);
    const accounted = await loop(topology, rr, agent);
    return { timed, accounted };
  } finally {
    await accounting(false);
    await agent.stop();
  }
}

/** One measured run with a standalone agent of `object` attached for just that run. */
async function loopWithAgent(
  topology: Topology,
  rr: string,
  object: string,
  rulesFile: string,
  every?: number,
): Promise<LoopRun> {
  const agent = await startAgent(topology, object, rulesFile);
  try {
    await rrClient(topology, rr, WARMUP_ROUND_TRIPS, every ?? 2);
    return await loop(topology, rr, agent, every);
  } finally {
    await agent.stop();
  }
}

async function measure(): Promise<BenchResult[]> {
  if (process.getuid?.() !== 0) return unavailable("needs root (eBPF, network namespaces)");
  for (const [what, path] of [
    ["engine object", ENGINE_OBJECT],
    ["floor object", FLOOR_OBJECT],
    ["option floor object", OPTION_FLOOR_OBJECT],
    ["agent CLI", CLI],
  ] as const) {
    if (!existsSync(path)) return unavailable(`${what} missing at ${path}: run ./dev build`);
  }
  const cgroupRoot = findCgroup2Root();
  if (!cgroupRoot) return unavailable("no cgroup v2 mount on this host");

  const work = join(ROOT, ".run/bench");
  mkdirSync(work, { recursive: true });
  const rr = join(work, "rr");
  await runAsync(["gcc", "-O2", "-pthread", "-o", rr, join(import.meta.dir, "kernel/rr.c")]);
  const rulesFile = join(work, "rules.json");
  writeFileSync(rulesFile, JSON.stringify([{ dye: 7, traceIdPattern: "^t-[0-9a-f]{8}-[0-9a-f]{4}" }]));

  const statsBefore = (await runAsync(["sysctl", "-n", "kernel.bpf_stats_enabled"])).trim();
  await accounting(false);
  const topology = await createTopology(cgroupRoot);
  const server = Bun.spawn(inCgroup(topology.cgroup, [rr, "server", String(PORT)]), {
    stdout: "pipe",
    stderr: "ignore",
  });
  try {
    await Bun.sleep(300);
    const baseline: LoopRun[] = [];
    const engine: LoopRun[] = [];
    const engineAccounted: LoopRun[] = [];
    const floor: LoopRun[] = [];
    const sparse: LoopRun[] = [];
    const optionFloor: LoopRun[] = [];
    for (let i = 0; i < PAIRS; i++) {
      const engineFirst = Math.random() < 0.5;
      for (const withEngine of engineFirst ? [true, false] : [false, true]) {
        if (!withEngine) {
          await rrClient(topology, rr, WARMUP_ROUND_TRIPS, 2);
          baseline.push(await loop(topology, rr, null));
          continue;
        }
        const { timed, accounted } = await engineRun(topology, rr, rulesFile);
        engine.push(timed);
        engineAccounted.push(accounted);
      }
      // The floor interleaves too, one run every third pair: same hooks, empty programs; and so do the
      // engine on the sparse mix and the option floor. These runs are for eBPF time only: accounting on.
      await accounting(true);
      if (i % 3 === 0) floor.push(await loopWithAgent(topology, rr, FLOOR_OBJECT, rulesFile));
      if (i % 3 === 2) optionFloor.push(await loopWithAgent(topology, rr, OPTION_FLOOR_OBJECT, rulesFile));
      if (i % 3 === 1) sparse.push(await loopWithAgent(topology, rr, ENGINE_OBJECT, rulesFile, SPARSE_EVERY));
      await accounting(false);
    }

    const ebpfNs = median(engineAccounted.map((r) => r.bpfNsPerRequest ?? 0));
    const breakdown = (runs: LoopRun[]) =>
      [...(runs[0]?.perProgram.keys() ?? [])]
        .map((name) => {
          const ns = median(runs.map((r) => r.perProgram.get(name)?.ns ?? 0));
          const calls = median(runs.map((r) => r.perProgram.get(name)?.calls ?? 0));
          return `${name} ${Math.round(ns)} ns in ${calls.toFixed(1)} calls`;
        })
        .join(", ");
    const floorNs = median(floor.map((r) => r.bpfNsPerRequest ?? 0));
    const sparseNs = median(sparse.map((r) => r.bpfNsPerRequest ?? 0));
    const optionFloorNs = median(optionFloor.map((r) => r.bpfNsPerRequest ?? 0));
    const deltas = engine.map((r, i) => r.medianNs - baseline[i]!.medianNs);
    // What the accounting itself adds: the same agent's round trips with it on, minus with it off.
    const accountingNs = median(engineAccounted.map((r, i) => r.medianNs - engine[i]!.medianNs));
    const baseMedian = median(baseline.map((r) => r.medianNs));
    const [, deltaUpper] = medianConfidenceInterval(deltas, 0.95);
    const baseRate = median(baseline.map((r) => r.perSecond));
    const engineRate = median(engine.map((r) => r.perSecond));
    const setup = `${PAIRS} interleaved pairs of ${ROUND_TRIPS} round trips (1 KiB request, 1 KiB response, half of the requests cohort), client netns ↔ root netns over veth; the standalone agent drains the ring as the daemon reports (--skip-undyed: a non-cohort round trip reports its egress request only, the rest is counted)`;
    return [
      {
        name: NAMES.ebpf,
        value: Math.round(ebpfNs),
        unit: "ns",
        target: null,
        better: "lower",
        detail: `median over runs of Σ run_time_ns of the engine's programs / round trips (${breakdown(engineAccounted)}), each run right after the engine's run of a pair, same agent, kernel.bpf_stats_enabled=1; ${setup}`,
      },
      {
        name: NAMES.floor,
        value: Math.round(floorNs),
        unit: "ns",
        target: null,
        better: "lower",
        detail: `empty programs on the same hooks, ${floor.length} runs interleaved with the pairs (${breakdown(floor)})`,
      },
      {
        name: NAMES.ratio,
        value: Number((ebpfNs / floorNs).toFixed(2)),
        unit: "ratio",
        target: 2,
        better: "lower",
        detail: `${Math.round(ebpfNs)} ns / ${Math.round(floorNs)} ns per request`,
      },
      {
        name: NAMES.sparse,
        value: sparse.length > 0 ? Math.round(sparseNs) : null,
        unit: "ns",
        target: null,
        better: "lower",
        detail:
          sparse.length > 0
            ? `informational, the same loop with one request in ${SPARSE_EVERY} cohort (the headline figures alternate, so every request changes the dye): ${(sparseNs / floorNs).toFixed(2)} × the floor, ${sparse.length} runs interleaved with the pairs (${breakdown(sparse)})`
            : "needs at least 2 pairs",
      },
      {
        name: NAMES.optionFloor,
        value: optionFloor.length > 0 ? Math.round(optionFloorNs) : null,
        unit: "ns",
        target: null,
        better: "lower",
        detail:
          optionFloor.length > 0
            ? `informational: the floor with the header-option callbacks asked for on every connection (WRITE_HDR_OPT, PARSE_UNKNOWN_HDR_OPT) and every program still empty, which any carrier of a per-request dye in the TCP header pays before doing anything: ${(optionFloorNs / floorNs).toFixed(2)} × the floor, ${optionFloor.length} runs interleaved with the pairs (${breakdown(optionFloor)})`
            : "needs at least 3 pairs",
      },
      {
        name: NAMES.latency,
        value: Number(((deltaUpper / baseMedian) * 100).toFixed(2)),
        unit: "%",
        target: 2,
        better: "lower",
        detail: `median round-trip delta ${Math.round(median(deltas))} ns, 95 % CI upper bound ${Math.round(deltaUpper)} ns, baseline median ${Math.round(baseMedian)} ns; ${setup}; ${TIMED}; the engine's round trip with the accounting on was ${Math.round(accountingNs)} ns longer (median over the pairs, same agent, back to back)`,
      },
      {
        name: NAMES.throughput,
        value: Number((((baseRate - engineRate) / baseRate) * 100).toFixed(2)),
        unit: "%",
        target: 2,
        better: "lower",
        detail: `round trips/s: baseline median ${Math.round(baseRate)}, engine median ${Math.round(engineRate)}; ${TIMED}; the agent process (draining the ring, one JSON line per event to /dev/null) used ${median(engine.map((r) => r.agentCpuUs ?? 0)).toFixed(1)} µs of CPU per round trip (median over the engine's runs)`,
      },
    ];
  } finally {
    server.kill("SIGKILL");
    await server.exited;
    await topology.close();
    for (const object of OBJECTS) rmSync(pinDirOf(object), { recursive: true, force: true });
    await runAsync(["sysctl", "-qw", `kernel.bpf_stats_enabled=${statsBefore}`]);
  }
}

export const benchmarks: Benchmark[] = [{ name: "kernel.engine", run: measure }];
