// Agent benchmarks (issue 4): events per second from the kernel into Kafka for one agent (the daemon, a
// child process, producing to topics of the benchmark's own on the dev broker) and the CPU it costs, with
// every event accounted for; and the spool's replay rate. Load: bench/load/evload.c, small HTTP/1.1 request/
// response round trips, pipelined in bursts, over a few keep-alive loopback connections multiplexed with
// epoll, client and server in a child cgroup the agent is scoped to: every send and every read that starts
// a burst is a kernel event through the engine's real programs (the load costs little CPU besides them, so
// the agent's rate, not the load's, is what gets measured on two cores).
import { mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { findCgroup2Root } from "../packages/agent/src/cgroup.ts";
import {
  createTestTopics,
  type DaemonProcess,
  deleteTestTopics,
  metricValue,
  startDaemon,
} from "../packages/agent/src/testing/daemon.ts";
import { runAsync } from "../packages/agent/src/testing/run.ts";
import { brokerReachable, brokersFromEnv } from "../packages/bus/src/index.ts";
import type { Benchmark, BenchResult } from "./benchmark.ts";
import { inCgroup } from "./kernel/topology.ts";

const ROOT = resolve(import.meta.dir, "..");
const PORT = 18700;
const SECONDS = Number(process.env.INDIGO_BENCH_AGENT_SECONDS ?? 10);
/** evload: client threads, connections per thread, requests per pipelined burst, server threads */
const LOAD = {
  threads: Number(process.env.INDIGO_BENCH_AGENT_THREADS ?? 1),
  conns: Number(process.env.INDIGO_BENCH_AGENT_CONNS ?? 16),
  depth: Number(process.env.INDIGO_BENCH_AGENT_DEPTH ?? 16),
  serverThreads: Number(process.env.INDIGO_BENCH_AGENT_SERVER_THREADS ?? 1),
};
const LOAD_TEXT = `evload: ${LOAD.threads} client thread(s) × ${LOAD.conns} loopback connections, bursts of ${LOAD.depth} pipelined requests, ${LOAD.serverThreads} server thread(s)`;
const TARGET = 200_000;
const CLK_TCK = 100;

const NAMES = {
  rate: "agent.events_per_s",
  cpu: "agent.cpu_cores",
  cpuPerEvent: "agent.cpu_us_per_event",
  loss: "agent.unreported_loss_events",
  ringbuf: "agent.ringbuf_drop_pct",
  replay: "agent.spool_replay_events_per_s",
} as const;

const none = (
  name: string,
  unit: string,
  better: "lower" | "higher",
  detail: string,
  target: number | null = null,
) => ({
  name,
  value: null,
  unit,
  target,
  better,
  detail,
});

function unavailable(reason: string): BenchResult[] {
  return [
    none(NAMES.rate, "events/s", "higher", reason, TARGET),
    none(NAMES.cpu, "cores", "lower", reason),
    none(NAMES.cpuPerEvent, "µs/event", "lower", reason),
    none(NAMES.loss, "events", "lower", reason, 0),
    none(NAMES.ringbuf, "%", "lower", reason),
    none(NAMES.replay, "events/s", "higher", reason),
  ];
}

/** utime + stime of a process, in seconds (/proc/<pid>/stat fields 14 and 15). The daemon runs as `sh`-less bun. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/** The load for `seconds`; resolves to the round trips it made. */
async function load(cgroup: string, evload: string, seconds: number): Promise<number> {
  const argv = [evload, "client", "127.0.0.1", String(PORT), String(LOAD.threads), String(LOAD.conns)];
  const out = await runAsync(inCgroup(cgroup, [...argv, String(seconds), String(LOAD.depth)]));
  return Number(out.trim().split(" ")[0] ?? 0);
}

/** A child cgroup of the cgroup-v2 root that the load runs in and the agent is scoped to. */
function makeCgroup(root: string): { path: string; remove: () => Promise<void> } {
  const path = join(root, `indigo-bench-agent-${Math.random().toString(16).slice(2, 8)}`);
  mkdirSync(path);
  return {
    path,
    remove: async () => {
      try {
        rmdirSync(path);
      } catch {
        writeFileSync(join(path, "cgroup.kill"), "1");
        await Bun.sleep(200);
        rmdirSync(path);
      }
    },
  };
}

const waitFor = async (ok: () => Promise<boolean>, ms: number): Promise<boolean> => {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await ok()) return true;
    await Bun.sleep(100);
  }
  return false;
};

const daemonArgs = (id: string, cgroup: string, spoolDir: string, pinDir: string) => [
  "--agent-id",
  id,
  "--cgroup",
  cgroup,
  "--spool-dir",
  spoolDir,
  "--pin-dir",
  pinDir,
  "--spool-max-bytes",
  String(4 * 2 ** 30),
  // Every event goes on the ring, undyed ingress and responses included (34 per burst): what is measured is
  // the event path's rate, which the load generator could not reach with the daemon's default (undyed
  // events no consumer uses are only counted: 16 per burst).
  "--report-undyed",
  ...(process.env.INDIGO_BENCH_AGENT_BATCH_EVENTS
    ? ["--batch-events", process.env.INDIGO_BENCH_AGENT_BATCH_EVENTS]
    : []),
];

async function measure(): Promise<BenchResult[]> {
  if (process.getuid?.() !== 0) return unavailable("needs root (eBPF, network namespaces)");
  const cgroupRoot = findCgroup2Root();
  if (!cgroupRoot) return unavailable("no cgroup v2 mount on this host");
  const brokers = brokersFromEnv();
  if (!(await brokerReachable(brokers)))
    return unavailable(`no Kafka broker at ${brokers.join(",")}: run ./dev up`);

  const work = join(ROOT, ".run/bench");
  mkdirSync(work, { recursive: true });
  const evload = join(work, "evload");
  await runAsync(["gcc", "-O2", "-pthread", "-o", evload, join(import.meta.dir, "load/evload.c")]);
  const id = `bench-${Date.now().toString(36)}`;
  const topics = await createTestTopics(brokers, `${id}.`);
  const spoolDir = mkdtempSync(join(tmpdir(), "indigo-bench-spool-"));
  const pinDir = `/sys/fs/bpf/indigo-bench-agent`;
  // the benchmark's own pins: ones a killed run left (maybe of another ring size) would be reused or refused
  rmSync(pinDir, { recursive: true, force: true });
  const cgroup = makeCgroup(cgroupRoot);
  const server = Bun.spawn(
    inCgroup(cgroup.path, [evload, "server", String(PORT), String(LOAD.serverThreads)]),
    {
      stdout: "ignore",
      stderr: "ignore",
    },
  );
  const env = { INDIGO_TOPIC_PREFIX: topics.prefix, INDIGO_KAFKA_BROKERS: brokers.join(",") };
  let daemon: DaemonProcess | undefined;
  const results: BenchResult[] = [];
  try {
    await Bun.sleep(300);
    // 1. Throughput into Kafka, CPU, accounting.
    daemon = await startDaemon(daemonArgs(id, cgroup.path, spoolDir, pinDir), env);
    const d = daemon;
    const m = async () => {
      const text = await d.metrics();
      const v = (n: string) => metricValue(text, n) ?? 0;
      return {
        emitted: v('indigo_agent_kernel_counter_total{name="events_emitted"}'),
        reserveFailed: v('indigo_agent_kernel_counter_total{name="ringbuf_reserve_failed"}'),
        sampledOut: v('indigo_agent_kernel_counter_total{name="events_sampled_out"}'),
        received: v("indigo_agent_events_received_total"),
        produced: v("indigo_agent_events_produced_total"),
        spooled: v("indigo_agent_spooled_events"),
        dropped: v("indigo_agent_spool_dropped_events_total"),
        connected: v("indigo_agent_kafka_connected"),
      };
    };
    if (metricValue(await d.metrics(), "indigo_agent_engine_attached") !== 1) {
      const ready = d.log().find((o) => o.ready === true);
      const why = JSON.stringify((ready?.degraded as { reason?: string } | undefined)?.reason ?? "unknown");
      return unavailable(`the agent could not attach its eBPF programs (degraded mode: ${why})`);
    }
    await waitFor(async () => (await m()).connected === 1 && (await m()).spooled === 0, 30_000);
    const before = await m();
    const cpu0 = cpuSeconds(d.child.pid ?? 0);
    const t0 = performance.now();
    const roundTrips = await load(cgroup.path, evload, SECONDS);
    // drained: everything the kernel emitted was read and acknowledged by Kafka
    await waitFor(async () => {
      const x = await m();
      return x.received === x.emitted && x.produced + x.dropped >= x.received && x.spooled === 0;
    }, 60_000);
    const after = await m();
    const elapsed = (performance.now() - t0) / 1000;
    const cpu = cpuSeconds(d.child.pid ?? 0) - cpu0;
    const produced = after.produced - before.produced;
    const emitted = after.emitted - before.emitted;
    const reserveFailed = after.reserveFailed - before.reserveFailed;
    const sampledOut = after.sampledOut - before.sampledOut;
    const dropped = after.dropped - before.dropped;
    const unreported = emitted - produced - dropped;
    const rate = produced / elapsed;
    const detail = `${produced} events into Kafka in ${elapsed.toFixed(1)} s (load ${SECONDS} s, ${roundTrips} round trips, ${LOAD_TEXT}; the rate counts until the last event was acknowledged); kernel emitted ${emitted}, ring-buffer reserve failures ${reserveFailed}, sampled out ${sampledOut}, spool dropped ${dropped}`;
    results.push(
      {
        name: NAMES.rate,
        value: Math.round(rate),
        unit: "events/s",
        target: TARGET,
        better: "higher",
        detail,
      },
      {
        name: NAMES.cpu,
        value: Number((cpu / elapsed).toFixed(3)),
        unit: "cores",
        target: null,
        better: "lower",
        detail: `agent process CPU (utime+stime from /proc/${d.child.pid}/stat): ${cpu.toFixed(2)} s over ${elapsed.toFixed(1)} s`,
      },
      {
        name: NAMES.cpuPerEvent,
        value: produced > 0 ? Number(((cpu * 1e6) / produced).toFixed(2)) : null,
        unit: "µs/event",
        target: null,
        better: "lower",
        detail: "agent CPU per event produced",
      },
      {
        name: NAMES.loss,
        value: unreported,
        unit: "events",
        target: 0,
        better: "lower",
        detail: `emitted − produced − spool-dropped; kernel-side losses are reported separately (reserve failures ${reserveFailed}, sampled out ${sampledOut})`,
      },
      {
        name: NAMES.ringbuf,
        value:
          emitted + reserveFailed > 0
            ? Number(((100 * reserveFailed) / (emitted + reserveFailed)).toFixed(3))
            : null,
        unit: "%",
        target: null,
        better: "lower",
        detail: "reported (counted) ring-buffer reserve failures over events the programs tried to emit",
      },
    );
    await d.stop();
    daemon = undefined;

    // 2. Spool replay: spool under load with a broker address that refuses connections, then restart the
    //    agent on the same spool with the real broker and time the replay.
    const dead = await startDaemon(daemonArgs(id, cgroup.path, spoolDir, pinDir), {
      ...env,
      INDIGO_KAFKA_BROKERS: "127.0.0.1:9",
    });
    await load(cgroup.path, evload, Math.max(3, Math.round(SECONDS / 2)));
    await Bun.sleep(500);
    await dead.stop();
    daemon = await startDaemon(daemonArgs(id, cgroup.path, spoolDir, pinDir), env);
    const r = daemon;
    const spooled = metricValue(await r.metrics(), "indigo_agent_spooled_events") ?? 0;
    const t1 = performance.now();
    const ok = await waitFor(
      async () => metricValue(await r.metrics(), "indigo_agent_spooled_events") === 0,
      120_000,
    );
    const replaySeconds = (performance.now() - t1) / 1000;
    results.push(
      ok && spooled > 0
        ? {
            name: NAMES.replay,
            value: Math.round(spooled / replaySeconds),
            unit: "events/s",
            target: null,
            better: "higher",
            detail: `${spooled} spooled events replayed into Kafka in ${replaySeconds.toFixed(2)} s after a restart (polled every 100 ms)`,
          }
        : none(
            NAMES.replay,
            "events/s",
            "higher",
            ok ? "nothing was spooled" : "the spool did not drain within 120 s",
          ),
    );
  } finally {
    await daemon?.stop().catch(() => {});
    server.kill();
    await cgroup.remove();
    rmSync(spoolDir, { recursive: true, force: true });
    rmSync(pinDir, { recursive: true, force: true });
    await deleteTestTopics(brokers, topics).catch(() => {});
  }
  return results;
}

export const benchmarks: Benchmark[] = [{ name: "agent.events_per_s", run: measure }];
