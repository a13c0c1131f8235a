// Kernel benchmarks of the dye engine (issue 3): eBPF time per request against the floor (empty programs on
// the same hooks, same run), added latency over interleaved pairs, and throughput loss, all on a 1 KiB
// HTTP-shaped request/response loop between two network namespaces.
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { findCgroup2Root } from "../packages/agent/src/cgroup.ts";
import type { Benchmark, BenchResult } from "./benchmark.ts";
import { median, medianConfidenceInterval } from "./kernel/stats.ts";
import { createTopology, inCgroup, type Topology } from "./kernel/topology.ts";

const ROOT = resolve(import.meta.dir, "..");
const ENGINE_OBJECT = join(ROOT, "bpf/build/indigo.bpf.o");
const FLOOR_OBJECT = join(ROOT, "bpf/build/floor.bpf.o");
const CLI = join(ROOT, "packages/agent/src/cli/main.ts");
const PAIRS = Number(process.env.INDIGO_BENCH_PAIRS ?? 30);
const ROUND_TRIPS = Number(process.env.INDIGO_BENCH_ROUND_TRIPS ?? 2000);
const PORT = 18600;

interface LoopRun {
  readonly medianNs: number;
  readonly perSecond: number;
  readonly bpfNsPerRequest: number | null;
}

const NAMES = {
  ebpf: "kernel.ebpf_ns_per_request",
  floor: "kernel.ebpf_floor_ns_per_request",
  ratio: "kernel.ebpf_floor_ratio",
  latency: "kernel.latency_delta_ci_upper_pct",
  throughput: "kernel.throughput_loss_pct",
} as const;

function unavailable(reason: string): BenchResult[] {
  return [
    { name: NAMES.ebpf, value: null, unit: "ns", target: null, better: "lower", detail: reason },
    { name: NAMES.ratio, value: null, unit: "ratio", target: 2, better: "lower", detail: reason },
    { name: NAMES.latency, value: null, unit: "%", target: 2, better: "lower", detail: reason },
    { name: NAMES.throughput, value: null, unit: "%", target: 2, better: "lower", detail: reason },
  ];
}

async function run(argv: string[]): Promise<string> {
  const proc = Bun.spawn(argv, { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  if (code !== 0) throw new Error(`${argv.join(" ")} exited ${code}: ${err.trim()}`);
  return out;
}

/** Sum of run_time_ns over the BPF programs held open by `pid` (kernel.bpf_stats_enabled must be 1). */
async function bpfRunTimeNs(pid: number): Promise<number> {
  const progs = JSON.parse(await run(["bpftool", "-j", "prog", "show"])) as {
    run_time_ns?: number;
    pids?: { pid: number }[];
  }[];
  return progs
    .filter((p) => p.pids?.some((h) => h.pid === pid))
    .reduce((sum, p) => sum + (p.run_time_ns ?? 0), 0);
}

interface Agent {
  readonly pid: number;
  readonly stop: () => Promise<void>;
}

async function startAgent(topology: Topology, object: string, rulesFile: string): Promise<Agent> {
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
    ],
    { stdout: "ignore", stderr: "pipe" },
  );
  const reader = proc.stderr.getReader();
  let seen = "";
  const deadline = Date.now() + 20_000;
  while (!/\bready\b/.test(seen)) {
    if (Date.now() > deadline) throw new Error(`agent did not report ready: ${seen}`);
    const chunk = await Promise.race([reader.read(), Bun.sleep(1000).then(() => null)]);
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

async function loop(topology: Topology, rr: string, agent: Agent | null): Promise<LoopRun> {
  const before = agent ? await bpfRunTimeNs(agent.pid) : 0;
  const out = await run(
    inCgroup(
      topology.cgroup,
      [rr, "client", topology.serverIp, String(PORT), String(ROUND_TRIPS)],
      topology.netns,
    ),
  );
  const after = agent ? await bpfRunTimeNs(agent.pid) : 0;
  const [count, medianNs, , elapsedNs] = out.trim().split(" ").map(Number) as [
    number,
    number,
    number,
    number,
  ];
  return {
    medianNs,
    perSecond: count / (elapsedNs / 1e9),
    bpfNsPerRequest: agent ? (after - before) / count : null,
  };
}

async function measure(): Promise<BenchResult[]> {
  if (process.getuid?.() !== 0) return unavailable("needs root (eBPF, network namespaces)");
  for (const [what, path] of [
    ["engine object", ENGINE_OBJECT],
    ["floor object", FLOOR_OBJECT],
    ["agent CLI", CLI],
  ] as const) {
    if (!existsSync(path)) return unavailable(`${what} missing at ${path}: run ./dev build`);
  }
  const cgroupRoot = findCgroup2Root();
  if (!cgroupRoot) return unavailable("no cgroup v2 mount on this host");

  const work = join(ROOT, ".run/bench");
  mkdirSync(work, { recursive: true });
  const rr = join(work, "rr");
  await run(["gcc", "-O2", "-pthread", "-o", rr, join(import.meta.dir, "kernel/rr.c")]);
  const rulesFile = join(work, "rules.json");
  writeFileSync(rulesFile, JSON.stringify([{ dye: 7, traceIdPattern: "^t-[0-9a-f]{8}-[0-9a-f]{4}" }]));

  const statsBefore = (await run(["sysctl", "-n", "kernel.bpf_stats_enabled"])).trim();
  await run(["sysctl", "-qw", "kernel.bpf_stats_enabled=1"]);
  const topology = await createTopology(cgroupRoot);
  const server = Bun.spawn(inCgroup(topology.cgroup, [rr, "server", String(PORT)]), {
    stdout: "pipe",
    stderr: "ignore",
  });
  try {
    await Bun.sleep(300);
    const baseline: LoopRun[] = [];
    const engine: LoopRun[] = [];
    const floor: LoopRun[] = [];
    for (let i = 0; i < PAIRS; i++) {
      const engineFirst = Math.random() < 0.5;
      for (const withEngine of engineFirst ? [true, false] : [false, true]) {
        if (!withEngine) {
          baseline.push(await loop(topology, rr, null));
          continue;
        }
        const agent = await startAgent(topology, ENGINE_OBJECT, rulesFile);
        try {
          engine.push(await loop(topology, rr, agent));
        } finally {
          await agent.stop();
        }
      }
      // The floor interleaves too, one run every third pair: same hooks, empty programs.
      if (i % 3 === 0) {
        const agent = await startAgent(topology, FLOOR_OBJECT, rulesFile);
        try {
          floor.push(await loop(topology, rr, agent));
        } finally {
          await agent.stop();
        }
      }
    }

    const ebpfNs = median(engine.map((r) => r.bpfNsPerRequest ?? 0));
    const floorNs = median(floor.map((r) => r.bpfNsPerRequest ?? 0));
    const deltas = engine.map((r, i) => r.medianNs - baseline[i]!.medianNs);
    const baseMedian = median(baseline.map((r) => r.medianNs));
    const [, deltaUpper] = medianConfidenceInterval(deltas, 0.95);
    const baseRate = median(baseline.map((r) => r.perSecond));
    const engineRate = median(engine.map((r) => r.perSecond));
    const setup = `${PAIRS} interleaved pairs of ${ROUND_TRIPS} round trips (1 KiB request, 1 KiB response, half of the requests cohort), client netns ↔ root netns over veth`;
    return [
      {
        name: NAMES.ebpf,
        value: Math.round(ebpfNs),
        unit: "ns",
        target: null,
        better: "lower",
        detail: `median over runs of Σ run_time_ns of the engine's programs / round trips; ${setup}`,
      },
      {
        name: NAMES.floor,
        value: Math.round(floorNs),
        unit: "ns",
        target: null,
        better: "lower",
        detail: `empty programs on the same hooks, ${floor.length} runs interleaved with the pairs`,
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
        name: NAMES.latency,
        value: Number(((deltaUpper / baseMedian) * 100).toFixed(2)),
        unit: "%",
        target: 2,
        better: "lower",
        detail: `median round-trip delta ${Math.round(median(deltas))} ns, 95 % CI upper bound ${Math.round(deltaUpper)} ns, baseline median ${Math.round(baseMedian)} ns; ${setup}`,
      },
      {
        name: NAMES.throughput,
        value: Number((((baseRate - engineRate) / baseRate) * 100).toFixed(2)),
        unit: "%",
        target: 2,
        better: "lower",
        detail: `round trips/s: baseline median ${Math.round(baseRate)}, engine median ${Math.round(engineRate)}`,
      },
    ];
  } finally {
    server.kill("SIGKILL");
    await server.exited;
    await topology.close();
    await run(["sysctl", "-qw", `kernel.bpf_stats_enabled=${statsBefore}`]);
  }
}

export const benchmarks: Benchmark[] = [{ name: "kernel.engine", run: measure }];
