// The dye engine against the real kernel (see testing/engine-world.ts): skb marks at tc egress, thread
// inheritance through a service that forwards nothing, the inherit window, and a clean stop and restart on
// the pinned maps. What travels on the wire is wire.int.test.ts's.
// Root + BPF only: skips with a reason elsewhere, except under CI=true where it must run.
import { expect } from "bun:test";
import { readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { bpfObjectPath } from "../bpf-objects.ts";
import { BpfObject, ifindexOf, TcAttachment, withNetns } from "../libbpf/index.ts";
import { bpftoolJson } from "../testing/bpftool.ts";
import { startCapture } from "../testing/capture.ts";
import {
  caseNumber,
  engineTests,
  idsFor,
  MARK,
  ruleFor,
  runClient,
  settle,
  setUp,
  startServer,
  T,
} from "../testing/engine-world.ts";
import { readPcap } from "../testing/pcap.ts";
import { DEFAULT_OPTION_EXID, dyeMark } from "./dye-config.ts";
import { Engine } from "./engine.ts";

const it = engineTests();

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
    const pcap = join("/tmp", `indigo-engine-${process.pid}-${caseNumber()}.pcap`);
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
