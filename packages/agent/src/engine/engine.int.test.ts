// The dye engine (bpf/build/indigo.bpf.o) against the real kernel: two network namespaces joined by veth,
// python3 servers and clients inside a fresh child cgroup, the engine loaded in-process and scoped to it.
// Every dye is produced the real way: the engine gets a trace-id rule, the python3 client sends HTTP/1.1
// requests whose x-trace-id matches it (cohort) or not (non-cohort), the send path judges each request, the
// TCP option carries the dye, and a thread that read a dyed request passes it on (testing/py/dyetraffic.py).
// Root + BPF only: skips with a reason elsewhere, except under CI=true where it must run.
import { afterEach, beforeAll, expect } from "bun:test";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { bpfObjectPath } from "../bpf-objects.ts";
import { ensureBpffs } from "../bpffs.ts";
import { ChildCgroup, findCgroup2Root } from "../cgroup.ts";
import type { DyeEvent } from "../events/decode-dye-event.ts";
import { BpfObject, ifindexOf, TcAttachment, withNetns } from "../libbpf/index.ts";
import { compileRules } from "../rules/compile.ts";
import type { CohortRuleInput } from "../rules/types.ts";
import { startCapture } from "../testing/capture.ts";
import { cleanUp } from "../testing/cleanup.ts";
import { buildBpf, kernelGate, skipping } from "../testing/kernel-gate.ts";
import { createVethPair, inCgroupAndNetns, type VethPair } from "../testing/netns.ts";
import { type DyedSegment, readPcap } from "../testing/pcap.ts";
import { DEFAULT_OPTION_EXID, type DyeConfig, dyeMark } from "./dye-config.ts";
import { Engine } from "./engine.ts";

const T = 60_000;
const PY = join(import.meta.dir, "../testing/py/dyetraffic.py");
const { it, skipReason } = kernelGate("dye engine integration tests", [
  "make",
  "clang",
  "bpftool",
  "python3",
  "ip",
  "tc",
  "tcpdump",
]);

beforeAll(() => {
  if (skipping("dye engine integration tests", skipReason)) return;
  buildBpf(bpfObjectPath("indigo"));
}, T);

/** One case's world; everything in it is torn down by afterEach, whatever failed. */
interface World {
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

/** Trace ids: COHORT matches PATTERN (exactly 10 bytes, hex after "t-"), OTHER has the length but not the class. */
const PATTERN = "^t-[0-9a-f]{8}";
const COHORT = "t-0123abcd";
const OTHER = "t-0123abcz";
/** One rule: requests whose trace id matches PATTERN get `dye`. */
const ruleFor = (dye: number): CohortRuleInput[] => [{ dye, traceIdPattern: PATTERN }];
/** The trace id a request needs to get `dye` (non-zero) or no dye (0) from ruleFor(dye). */
const idsFor = (dyes: number[]): string[] => dyes.map((d) => (d ? COHORT : OTHER));

/** The namespaces and the cgroup of a case, without the engine (see attachEngine). */
const setUpWorld = (): World => {
  const tag = `${process.pid}-${seq++}`;
  const w: World = {
    net: createVethPair(),
    cgroup: ChildCgroup.create(findCgroup2Root() ?? "", `indigo-test-engine-${tag}`),
    pinDir: join(ensureBpffs(), `indigo-test-engine-${tag}`),
    events: [],
    children: [],
  };
  world = w;
  return w;
};

const attachEngine = (
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

const setUp = (
  config: Partial<DyeConfig> = {},
  rules: CohortRuleInput[] = [],
  tcOn: "A" | "none" = "A",
): World => attachEngine(setUpWorld(), config, rules, tcOn);

afterEach(async () => {
  const w = world;
  world = undefined;
  if (!w) return;
  for (const c of w.children) c.kill("SIGKILL");
  await cleanUp([
    async () => {
      await w.engine?.stop();
      await w.drained;
    },
    () => w.net.destroy(),
    () => w.cgroup.remove(),
    () => rmSync(w.pinDir, { recursive: true, force: true }),
  ]);
}, T);

const startServer = async (w: World, ns: string, port: number, forward?: string): Promise<void> => {
  const [cmd, ...args] = inCgroupAndNetns(w.cgroup.path, ns, [
    "python3",
    PY,
    "server",
    String(port),
    ...(forward ? [forward] : []),
  ]);
  const child = spawn(cmd!, args, { stdio: ["ignore", "pipe", "inherit"] });
  w.children.push(child);
  await new Promise<void>((resolve, reject) => {
    child.stdout?.once("data", () => resolve());
    child.once("exit", (code) => reject(new Error(`server exited ${code}`)));
  });
};

interface ClientLine {
  i: number;
  trace_id: string;
  client_mark: number;
  server: { mark: number; forwarded?: { mark: number } };
}

/**
 * One keep-alive connection from nsA, one request per trace id. `primer`: the client's thread first reads a
 * request with that trace id (loopback, see dyetraffic.py), so its connection is born with the inherited dye.
 */
const runClient = (
  w: World,
  target: string,
  traceIds: string[],
  primer?: string,
  bodyBytes = 0,
): ClientLine[] => {
  const [cmd, ...args] = inCgroupAndNetns(w.cgroup.path, w.net.nsA, [
    "python3",
    PY,
    "client",
    target,
    traceIds.join(","),
    ...(primer ? [primer] : []),
  ]);
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

const settle = async (w: World, want: (e: DyeEvent[]) => boolean): Promise<void> => {
  for (let i = 0; i < 100 && !want(w.events); i++) await Bun.sleep(20);
};

const MARK = { markBase: 0x0100_0000, markMask: 0xffff };

const ingressAt8080 = (ev: DyeEvent[]) =>
  ev.filter((e) => e.kind === "request" && e.direction === "ingress" && e.sport === 8080);

/**
 * One client connection from a thread primed with a cohort request (runClient) to the server on B:8080, one
 * request per dye, under a capture on B's veth; returns once the server reported every request.
 */
const capturedRun = async (
  w: World,
  dyes: number[],
): Promise<{ segs: DyedSegment[]; lines: ClientLine[] }> => {
  const pcap = join("/tmp", `indigo-engine-${process.pid}-${seq}.pcap`);
  const cap = await startCapture(w.net.nsB, w.net.ifB, pcap);
  const lines = runClient(w, `${w.net.ipB}:8080`, idsFor(dyes), COHORT);
  await settle(w, (ev) => ingressAt8080(ev).length >= dyes.length);
  await Bun.sleep(200);
  await cap.stop();
  const segs = readPcap(pcap, DEFAULT_OPTION_EXID);
  rmSync(pcap, { force: true });
  return { segs, lines };
};

it(
  "a dyed connection: option on SYN and SYN-ACK, on each dye change of a pooled connection and nowhere else; one ingress event per request; SO_MARK per request at both ends",
  async () => {
    const w = setUp({ ...MARK, setSockMark: true }, ruleFor(7));
    await startServer(w, w.net.nsB, 8080);
    const dyes = [7, 0, 7, 7, 0];
    // The client's thread first serves one cohort request (loopback), so the connection it then opens is
    // born dyed 7 by inheritance (SYN option); each request then carries its own trace id and is judged on
    // it alone (payload: 7 or 0; a request with a trace id of its own never inherits).
    const { segs, lines } = await capturedRun(w, dyes);

    // Wire: SYN and SYN-ACK carry 7; the data segments of requests 1 (→0), 2 (→7), 4 (→0) carry the change;
    // request 0 (7, already announced on the SYN), request 3 (7 again) and every ACK carry nothing.
    const syn = segs.find((s) => s.flags.syn && !s.flags.ack);
    const synAck = segs.find((s) => s.flags.syn && s.flags.ack);
    expect(syn?.dye).toBe(7);
    expect(synAck?.dye).toBe(7);
    const requests = segs.filter((s) => s.dport === 8080 && s.payloadLen > 0);
    expect(requests.map((s) => s.dye ?? null)).toEqual([null, 0, 7, null, 0]);
    expect(segs.filter((s) => !s.flags.syn && s.payloadLen === 0 && s.dye !== undefined)).toEqual([]);
    // The server's responses carry the dye of the request they answer (the send path judges them too), so
    // they announce the same changes on the first segment of responses 1, 2 and 4 — and nothing else.
    const firstOfResponse = new Set<DyedSegment>();
    let answering = false;
    for (const s of segs.filter((s) => s.payloadLen > 0)) {
      if (s.dport === 8080) answering = true;
      else if (answering) {
        firstOfResponse.add(s);
        answering = false;
      }
    }
    expect([...firstOfResponse].map((s) => s.dye ?? null)).toEqual([null, 0, 7, null, 0]);
    expect(
      segs.filter((s) => s.sport === 8080 && !s.flags.syn && !firstOfResponse.has(s) && s.dye !== undefined),
    ).toEqual([]);

    // The server's ingress events: one per request, with the dye its client announced.
    const ingress = ingressAt8080(w.events);
    expect(ingress.map((e) => [e.dye, e.source])).toEqual([
      [7, "tcp_option"],
      [0, "none"],
      [7, "tcp_option"],
      [7, "tcp_option"],
      [0, "none"],
    ]);
    expect(ingress[0]).toMatchObject({ saddr: w.net.ipB, sport: 8080, daddr: w.net.ipA, comm: "python3" });
    expect(ingress[0]?.dport).toBe(syn?.sport);
    // The client's judgement of each request it sent: the rule's dye (payload), or none.
    const egress = w.events.filter(
      (e) => e.kind === "request" && e.direction === "egress" && e.dport === 8080,
    );
    expect(egress.map((e) => [e.dye, e.source, e.trace_id])).toEqual(
      dyes.map((d) => (d ? [7, "payload", COHORT] : [0, "none", OTHER])),
    );
    const answered = w.events.filter(
      (e) => e.kind === "response" && e.direction === "egress" && e.sport === 8080,
    );
    expect(answered.map((e) => [e.dye, e.status])).toEqual(dyes.map((d) => [d, 200]));
    const connects = w.events.filter((e) => e.kind === "connect" && e.dport === 8080);
    expect(connects.map((e) => [e.dye, e.source])).toEqual([[7, "inherit"]]);

    // SO_MARK read by getsockopt in both processes after each request.
    const mark = (dye: number) => (dye ? dyeMark(MARK, dye) : 0);
    expect(lines.map((l) => [l.client_mark, l.server.mark])).toEqual(dyes.map((d) => [mark(d), mark(d)]));
    const c = w.engine!.counters();
    // data: 3 changes by the client, the same 3 by the server's responses, 1 by the primer request (loopback)
    expect([c.opt_written_syn, c.opt_written_synack, c.opt_written_data]).toEqual([1n, 1n, 7n]);
    expect([c.opt_reserve_failed, c.opt_store_failed, c.sock_mark_failed, c.storage_failed]).toEqual([
      0n,
      0n,
      0n,
      0n,
    ]);
  },
  T,
);

it(
  "a listener opened before the engine: its connections get the engine's callbacks when accepted, and a SYN option it did not echo is announced again with the first request",
  async () => {
    const w = setUpWorld();
    await startServer(w, w.net.nsB, 8080); // listening before any program is attached
    attachEngine(w, { ...MARK, setSockMark: true }, ruleFor(7));
    const dyes = [7, 0, 7];
    const { segs } = await capturedRun(w, dyes);

    // The SYN carries 7 (the connection was born dyed); the old listener saved no SYN and echoes nothing, so
    // the client announces 7 again on its first request, then each change.
    expect(segs.find((s) => s.flags.syn && !s.flags.ack)?.dye).toBe(7);
    expect(segs.find((s) => s.flags.syn && s.flags.ack)?.dye).toBeUndefined();
    const requests = segs.filter((s) => s.dport === 8080 && s.payloadLen > 0);
    expect(requests.map((s) => s.dye ?? null)).toEqual([7, 0, 7]);
    // The accepted socket reads the options and judges its responses like any other.
    expect(ingressAt8080(w.events).map((e) => [e.dye, e.source])).toEqual([
      [7, "tcp_option"],
      [0, "none"],
      [7, "tcp_option"],
    ]);
    const answered = w.events.filter(
      (e) => e.kind === "response" && e.direction === "egress" && e.sport === 8080,
    );
    expect(answered.map((e) => e.dye)).toEqual(dyes);
    const c = w.engine!.counters();
    expect([c.late_listener, c.opt_unechoed, c.opt_written_synack]).toEqual([1n, 1n, 0n]);
  },
  T,
);

/** The IP layer's FragFails counter of a namespace: packets it had to drop for being larger than the MTU. */
const fragFails = (ns: string): number => {
  const snmp = spawnSync("ip", ["netns", "exec", ns, "cat", "/proc/net/snmp"], { encoding: "utf8" }).stdout;
  const [names, values] = snmp.split("\n").filter((l) => l.startsWith("Ip:"));
  const column = names!.split(/\s+/).indexOf("FragFails");
  return Number(values!.split(/\s+/)[column]);
};

it(
  "a full-sized send that changes the dye fits the path MTU: the MSS always leaves room for the option",
  async () => {
    const w = setUp({ ...MARK }, ruleFor(7));
    // One MSS per skb (no GSO on the veth): a segment too big for the MTU meets the IP layer as it is.
    for (const [ns, dev] of [
      [w.net.nsA, w.net.ifA],
      [w.net.nsB, w.net.ifB],
    ] as const)
      expect(spawnSync("ip", ["-n", ns, "link", "set", "dev", dev, "gso_max_segs", "1"]).status).toBe(0);
    await startServer(w, w.net.nsB, 8080);
    const pcap = join("/tmp", `indigo-engine-${process.pid}-${seq}.pcap`);
    const cap = await startCapture(w.net.nsB, w.net.ifB, pcap);
    const failsBefore = fragFails(w.net.nsA);
    const dyes = [0, 7, 0, 7];
    // Each request is one send of header + 60 000 bytes: its first segment is a full one and, but for the
    // first, announces a new dye.
    const lines = runClient(w, `${w.net.ipB}:8080`, idsFor(dyes), undefined, 60_000);
    expect(lines.map((l) => l.server.mark)).toEqual([0, dyeMark(MARK, 7), 0, dyeMark(MARK, 7)]);
    await cap.stop();
    expect(fragFails(w.net.nsA) - failsBefore).toBe(0);
    const segs = readPcap(pcap, DEFAULT_OPTION_EXID);
    rmSync(pcap, { force: true });
    const sent = segs.filter((s) => s.dport === 8080 && s.payloadLen > 0);
    const mss = Math.max(...sent.map((s) => s.payloadLen));
    // The announcing segments are full ones, and carry the change.
    const announcing = sent.filter((s) => s.dye !== undefined);
    expect(announcing.map((s) => [s.dye, s.payloadLen])).toEqual([
      [7, mss],
      [0, mss],
      [7, mss],
    ]);
    expect(w.engine!.counters().opt_reserve_failed).toBe(0n);
  },
  T,
);

it(
  "tc egress sets skb->mark per packet from the socket's dye (SO_MARK off, seen by a second tc filter, mark_probe)",
  async () => {
    const w = setUp({ ...MARK, setSockMark: false, setSkbMark: true }, ruleFor(9));
    const mark = dyeMark(MARK, 9);
    // An independent observer after our filter (ours returns TC_ACT_UNSPEC, so the next one runs).
    const probe = BpfObject.open(bpfObjectPath("mark_probe"));
    probe.load();
    const tc = withNetns(w.net.nsPath(w.net.nsA), () =>
      TcAttachment.attach(probe.program("count_marks").fd, w.net.ifA, ifindexOf(w.net.ifA), "egress", 2, 10),
    );
    try {
      await startServer(w, w.net.nsB, 8080);
      const lines = runClient(w, `${w.net.ipB}:8080`, idsFor([9, 9]));
      expect(lines.map((l) => l.client_mark)).toEqual([0, 0]);
      const key = new Uint8Array(4);
      new DataView(key.buffer).setUint32(0, mark, true);
      const seen = probe.map("marks").lookup(key);
      const marked = seen ? new DataView(seen.buffer).getBigUint64(0, true) : 0n;
      const c = w.engine!.counters();
      expect(c.tc_marked).toBeGreaterThan(0n);
      // what the engine says it marked is exactly what the next filter saw carrying the mark
      expect(marked).toBe(c.tc_marked ?? -1n);
    } finally {
      withNetns(w.net.nsPath(w.net.nsA), () => tc.detach());
      probe.close();
    }
  },
  T,
);

it(
  "thread inheritance: a thread-per-request service that forwards nothing passes the dye to its onward connection; an undyed request clears it",
  async () => {
    const w = setUp({ ...MARK, setSockMark: true }, ruleFor(5));
    const pcap = join("/tmp", `indigo-engine-${process.pid}-${seq}.pcap`);
    const cap = await startCapture(w.net.nsB, w.net.ifB, pcap);
    // C answers in nsA; B (nsB) opens a new connection to C for every request it serves and sends no trace
    // header there: B's onward request can only get the dye its thread read (cohort, non-cohort, cohort).
    await startServer(w, w.net.nsA, 9000);
    await startServer(w, w.net.nsB, 8080, `${w.net.ipA}:9000`);
    const lines = runClient(w, `${w.net.ipB}:8080`, idsFor([5, 0, 5]));
    await settle(
      w,
      (ev) => ev.filter((e) => e.kind === "request" && e.dport !== 8080 && e.sport === 9000).length >= 3,
    );
    await Bun.sleep(200);
    await cap.stop();
    const segs = readPcap(pcap, DEFAULT_OPTION_EXID);
    rmSync(pcap, { force: true });

    const onwardSyns = segs.filter((s) => s.flags.syn && !s.flags.ack && s.dport === 9000);
    expect(onwardSyns.map((s) => s.dye ?? 0)).toEqual([5, 0, 5]);
    const connects = w.events.filter((e) => e.kind === "connect");
    expect(connects.map((e) => [e.dye, e.source, e.dport])).toEqual([
      [5, "inherit", 9000],
      [5, "inherit", 9000],
    ]);
    // B's onward requests, judged by the send path: no trace id of their own → the thread's dye.
    const fromB = w.events.filter(
      (e) => e.kind === "request" && e.direction === "egress" && e.dport === 9000,
    );
    expect(fromB.map((e) => [e.dye, e.source, e.trace_id])).toEqual([
      [5, "inherit", undefined],
      [0, "none", undefined],
      [5, "inherit", undefined],
    ]);
    const atC = w.events.filter((e) => e.kind === "request" && e.direction === "ingress" && e.sport === 9000);
    expect(atC.map((e) => [e.dye, e.source])).toEqual([
      [5, "tcp_option"],
      [0, "none"],
      [5, "tcp_option"],
    ]);
    expect(lines.map((l) => l.server.forwarded?.mark)).toEqual([dyeMark(MARK, 5), 0, dyeMark(MARK, 5)]);
    const c = w.engine!.counters();
    expect(c.connect_dyed).toBe(2n);
    expect(c.inherit_cleared).toBeGreaterThanOrEqual(1n);
  },
  T,
);

it(
  "an expired thread dye is not inherited (inherit window 1 ns)",
  async () => {
    const w = setUp({ ...MARK, inheritWindowNs: 1n }, ruleFor(5));
    await startServer(w, w.net.nsA, 9000);
    await startServer(w, w.net.nsB, 8080, `${w.net.ipA}:9000`);
    runClient(w, `${w.net.ipB}:8080`, idsFor([5]));
    await settle(w, (ev) =>
      ev.some((e) => e.kind === "request" && e.direction === "egress" && e.dport === 9000),
    );
    // B's thread read a cohort request, but its dye is already too old for the connect and the onward send.
    const fromB = w.events.filter(
      (e) => e.kind === "request" && e.direction === "egress" && e.dport === 9000,
    );
    expect(fromB.map((e) => [e.dye, e.source])).toEqual([[0, "none"]]);
    const c = w.engine!.counters();
    expect(c.connect_dyed).toBe(0n);
    expect(c.inherit_expired).toBe(1n);
  },
  T,
);

const bpftoolJson = (...args: string[]): unknown => {
  const run = spawnSync("bpftool", ["-j", ...args], { encoding: "utf8" });
  if (run.status !== 0) throw new Error(`bpftool ${args.join(" ")}: ${run.stderr || run.stdout}`);
  return run.stdout.trim() === "" ? [] : JSON.parse(run.stdout);
};

it(
  "stop() leaves no program attached and no link; a restart reuses the pinned maps and their content",
  async () => {
    const w = setUp({ ...MARK });
    // The programs this engine loaded: the ones this process holds fds of (other agents may run on the host).
    const heldIds = () =>
      readdirSync("/proc/self/fdinfo").flatMap((fd) => {
        try {
          const id = /^prog_id:\s+(\d+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, "utf8"))?.[1];
          return id ? [Number(id)] : [];
        } catch {
          return [];
        }
      });
    const progIds = () => (bpftoolJson("prog", "show") as { id: number }[]).map((p) => p.id);
    const before = new Set(heldIds());
    expect(before.size).toBeGreaterThanOrEqual(6);
    const cg = () => bpftoolJson("cgroup", "show", w.cgroup.path) as unknown[];
    expect(cg().length).toBe(3);
    const tcShow = () => w.net.exec(w.net.nsA, `tc filter show dev ${w.net.ifA} egress`);
    expect(tcShow()).toContain("handle_tc_egres"); // BPF_OBJ_NAME_LEN: 15 chars
    const mapId = (bpftoolJson("map", "show", "pinned", join(w.pinDir, "counters")) as { id: number }).id;
    const ours = (w.engine! as Engine).counters().tc_packets;

    await w.engine!.stop();
    await w.drained;
    expect(cg()).toEqual([]);
    expect(tcShow()).not.toContain("handle_tc_egres");
    const links = bpftoolJson("link", "show") as { prog_id: number }[];
    // Programs are freed after an RCU grace period: wait for it rather than race it.
    let left = progIds().filter((id) => before.has(id));
    for (let i = 0; i < 50 && left.length > 0; i++) {
      await Bun.sleep(20);
      left = progIds().filter((id) => before.has(id));
    }
    expect(left).toEqual([]);
    expect(links.filter((l) => before.has(l.prog_id))).toEqual([]);

    // Restart: same pins → same maps (ids), counters kept.
    w.engine = Engine.start({ pinDir: w.pinDir, cgroupPath: w.cgroup.path, config: MARK });
    w.drained = w.engine.drain((e) => w.events.push(e));
    expect([...w.engine.reusedMaps].sort()).toEqual([
      "counters",
      "dye_config",
      "events",
      "recv_mark",
      "rules",
      "sampling",
      "sock_state",
      "thread_state",
    ]);
    expect((bpftoolJson("map", "show", "pinned", join(w.pinDir, "counters")) as { id: number }).id).toBe(
      mapId,
    );
    expect(w.engine.counters().tc_packets).toBeGreaterThanOrEqual(ours ?? 0n);
    expect(cg().length).toBe(3);
  },
  T,
);
