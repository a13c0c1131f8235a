// dye_send.bpf.c on real sends: the engine (indigo.bpf.o) attached to a fresh child cgroup, a python3
// client and server inside it, requests sent through send, sendto, sendmsg, write and writev, a trace
// header split across two sends and one large write. Every request must be judged once, with the right
// dye, and reported by exactly one egress REQUEST event; every response by one egress RESPONSE event.
// Root + BPF only: skips with a reason elsewhere, except under CI=true where it must run.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { ensureBpffs } from "../bpffs.ts";
import { ChildCgroup, findCgroup2Root } from "../cgroup.ts";
import { Engine } from "../engine/engine.ts";
import type { DyeEvent, DyeSource } from "../events/decode-dye-event.ts";
import { buildBpf, skipping } from "../testing/kernel-gate.ts";
import { compileRules } from "./compile.ts";

const T = 60_000;
const CI = process.env.CI === "true";
const SCRIPT = join(import.meta.dir, "testdata/send_paths.py");
const COHORT = "t-0123abcd-ffff";
const OTHER = "t-0123abcd-fff0x";

const missing = (): string | undefined => {
  if (process.getuid?.() !== 0) return "needs root (CAP_BPF, cgroup writes)";
  if (!existsSync("/sys/kernel/btf/vmlinux")) return "kernel has no BTF (/sys/kernel/btf/vmlinux)";
  if (findCgroup2Root() === undefined) return "no cgroup v2 mount in /proc/mounts";
  for (const tool of ["make", "clang", "bpftool", "python3"]) {
    if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) return `${tool} is not installed`;
  }
  return undefined;
};
const skipReason = missing();
if (skipReason && !CI) console.warn(`skipping send-path integration test: ${skipReason}`);
const it = skipReason && !CI ? test.skip : test;

let engine: Engine | undefined;
let cgroup: ChildCgroup | undefined;
let pinDir: string | undefined;
let drained: Promise<void> | undefined;
const events: DyeEvent[] = [];

beforeAll(() => {
  if (skipping("send-path integration test", skipReason)) return;
  buildBpf();
  cgroup = ChildCgroup.create(findCgroup2Root() ?? "", `indigo-test-send-${process.pid}`);
  pinDir = join(ensureBpffs(), `indigo-test-send-${process.pid}`);
  // Inheritance off (1 ns window): the client thread reads the server's dyed responses, and this test is
  // about payload judgement only.
  engine = Engine.start({ cgroupPath: cgroup.path, pinDir, config: { inheritWindowNs: 1n } });
  engine.writeRules(compileRules([{ dye: 7, traceIdPattern: "^t-[a-f0-9]{8}-[a-f0-9]{4}" }]));
  drained = engine.drain((e) => events.push(e));
}, T);

afterAll(async () => {
  await engine?.stop();
  await drained;
  if (pinDir) rmSync(pinDir, { recursive: true, force: true });
  cgroup?.remove();
}, T);

it(
  "send, sendto, sendmsg, write, writev, a split header and a large write: one judged event per request",
  async () => {
    if (!engine || !cgroup) throw new Error("engine not started");
    // slots 12/13 (send_continued, send_appended) are read by number: counter-names.ts may not name them yet
    const slot = (n: number): bigint =>
      (engine?.map("counters").lookupPerCpu(new Uint8Array([n, 0, 0, 0])) ?? []).reduce(
        (sum, v) => sum + new DataView(v.buffer, v.byteOffset, 8).getBigUint64(0, true),
        0n,
      );
    const counters = (): Record<string, bigint> => ({
      ...engine?.counters(),
      send_continued: slot(12),
      send_appended: slot(13),
    });
    const before = counters();
    // the kernel's own accounting of the hook's run time (restored afterwards)
    const statsWas = spawnSync("sysctl", ["-n", "kernel.bpf_stats_enabled"], {
      encoding: "utf8",
    }).stdout.trim();
    spawnSync("sysctl", ["-qw", "kernel.bpf_stats_enabled=1"]);
    const run = spawnSync(
      "sh",
      ["-c", `echo $$ > ${cgroup.path}/cgroup.procs && exec python3 ${SCRIPT} ${COHORT} ${OTHER}`],
      { encoding: "utf8", timeout: 30_000 },
    );
    if (run.status !== 0) throw new Error(`send_paths.py failed: ${run.stderr}`);
    const sent = run.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { path: string; trace_id: string });
    await Bun.sleep(300);
    type ProgInfo = {
      id: number;
      run_time_ns?: number;
      run_cnt?: number;
      bytes_xlated?: number;
      bytes_jited?: number;
    };
    const shown = spawnSync("bpftool", ["-j", "prog", "show", "name", "handle_tcp_sendmsg"], {
      encoding: "utf8",
    });
    // one program prints an object, several an array; the newest (highest id) is ours
    const prog = ([] as ProgInfo[]).concat(JSON.parse(shown.stdout || "[]")).sort((a, b) => b.id - a.id)[0];
    spawnSync("sysctl", ["-qw", `kernel.bpf_stats_enabled=${statsWas || "0"}`]);
    const after = counters();
    const delta = (name: string): number => Number((after[name] ?? 0n) - (before[name] ?? 0n));

    const requests = events.filter((e) => e.kind === "request" && e.direction === "egress");
    const responses = events.filter((e) => e.kind === "response" && e.direction === "egress");
    const got = requests.map((e) => ({ path: e.path, trace_id: e.trace_id, dye: e.dye, source: e.source }));
    const want = sent.map((s) => {
      const dye = s.trace_id === COHORT ? 7 : 0;
      const source: DyeSource = dye ? "payload" : "none";
      return { path: s.path, trace_id: s.trace_id, dye, source };
    });
    expect(got).toEqual(want);
    expect(responses.map((e) => e.status)).toEqual(sent.map((s) => (s.path.startsWith("/fail") ? 503 : 200)));
    console.log(
      `send hook: ${delta("send_calls")} calls for ${sent.length} requests + ${responses.length} responses;` +
        ` continued (same send, next skb) ${delta("send_continued")}, appended to an unsent skb ${delta("send_appended")},` +
        ` bytes scanned ${delta("send_bytes_scanned")}, truncated ${delta("scan_truncated")}`,
    );
    if (prog?.run_cnt) {
      console.log(
        `handle_tcp_sendmsg: ${Math.round((prog.run_time_ns ?? 0) / prog.run_cnt)} ns per call over ${prog.run_cnt} calls` +
          ` (all programs' calls in the system while attached), xlated ${prog.bytes_xlated} B, jited ${prog.bytes_jited} B`,
      );
    }
    console.log(`response dyes: ${JSON.stringify(responses.map((e) => [e.dye, e.source]))}`);
    expect(delta("req_egress")).toBe(sent.length);
    expect(delta("req_egress_dyed")).toBe(want.filter((w) => w.dye).length);
    expect(delta("send_continued")).toBeGreaterThan(0); // the 256 KiB write fills many skbs
    expect(delta("send_appended")).toBeGreaterThanOrEqual(2); // the corked pipelined requests
  },
  T,
);
