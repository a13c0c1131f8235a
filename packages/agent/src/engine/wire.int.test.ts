// The dye engine on the wire, against the real kernel (see testing/engine-world.ts): which segments carry the
// TCP option (tcpdump on the veth), what each end reports, the socket marks, and the segment sizes.
// Every dye is produced the real way: the engine gets a trace-id rule, the python3 client sends HTTP/1.1
// requests whose x-trace-id matches it (cohort) or not (non-cohort), the send path judges each request, the
// TCP option carries the dye, and a thread that read a dyed request passes it on (testing/py/dyetraffic.py).
// The option placement and the segment sizes are checked over IPv4 and over IPv6 (as between the pods of a
// dual-stack cluster).
// Root + BPF only: skips with a reason elsewhere, except under CI=true where it must run.
import { expect } from "bun:test";
import { spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { startCapture } from "../testing/capture.ts";
import {
  attachEngine,
  COHORT,
  capturedRun,
  caseNumber,
  engineTests,
  fragFails,
  idsFor,
  ingressAt8080,
  MARK,
  OTHER,
  ruleFor,
  runClient,
  settle,
  setUpWorld,
  startHeldClient,
  startServer,
  T,
  type World,
} from "../testing/engine-world.ts";
import type { DyedSegment } from "../testing/pcap.ts";
import { readPcap } from "../testing/pcap.ts";
import { DEFAULT_OPTION_EXID, dyeMark } from "./dye-config.ts";

const it = engineTests();

type Family = 4 | 6;
const FAMILIES: Family[] = [4, 6];

/** A case's world on IPv4, or on IPv6 (ULA addresses on the veth, the server listening on IPv6 only). */
const familyWorld = (family: Family) => {
  const w = setUpWorld({ ipv6: family === 6 });
  const [a, b] = family === 4 ? [w.net.ipA, w.net.ipB] : [w.net.ip6A!, w.net.ip6B!];
  const serve = () => startServer(w, w.net.nsB, 8080, undefined, family === 6 ? b : undefined);
  return { w, a, b, serve };
};

for (const family of FAMILIES)
  it(
    `IPv${family}: a dyed connection: option on SYN and SYN-ACK, on each dye change of a pooled connection and nowhere else; one ingress event per request; SO_MARK per request at both ends`,
    async () => {
      const { w, a, b, serve } = familyWorld(family);
      attachEngine(w, { ...MARK, setSockMark: true }, ruleFor(7));
      await serve();
      const dyes = [7, 0, 7, 7, 0];
      // The client's thread first serves one cohort request (loopback), so the connection it then opens is
      // born dyed 7 by inheritance (SYN option); each request then carries its own trace id and is judged on
      // it alone (payload: 7 or 0; a request with a trace id of its own never inherits).
      const { segs, lines } = await capturedRun(w, dyes, b);
      expect(segs.every((s) => s.saddr.includes(family === 4 ? "." : ":"))).toBe(true);

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
        segs.filter(
          (s) => s.sport === 8080 && !s.flags.syn && !firstOfResponse.has(s) && s.dye !== undefined,
        ),
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
      expect(ingress[0]).toMatchObject({ saddr: b, sport: 8080, daddr: a, comm: "python3" });
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
      expect(connects.map((e) => [e.dye, e.source, e.daddr])).toEqual([[7, "inherit", b]]);

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

it(
  "a pooled connection established before the engine is taken in when it starts: its requests are judged, announced, read and marked from then on",
  async () => {
    const w = setUpWorld();
    await startServer(w, w.net.nsB, 8080);
    const pcap = join("/tmp", `indigo-engine-${process.pid}-${caseNumber()}.pcap`);
    const cap = await startCapture(w.net.nsB, w.net.ifB, pcap);
    // Request 0 before any program is attached, on a connection that then stays open.
    const dyes = [7, 7, 0, 7];
    const client = await startHeldClient(w, `${w.net.ipB}:8080`, idsFor(dyes), 1);
    attachEngine(w, { ...MARK, setSockMark: true }, ruleFor(7));
    const lines = await client.resume();
    await settle(w, (ev) => ingressAt8080(ev).length >= 3);
    await Bun.sleep(200);
    await cap.stop();
    const segs = readPcap(pcap, DEFAULT_OPTION_EXID);
    rmSync(pcap, { force: true });

    // One connection, its handshake before the engine: no option there, nor on request 0; then the first
    // request under the engine announces 7, and each change after it.
    expect(segs.filter((s) => s.flags.syn).map((s) => s.dye ?? null)).toEqual([null, null]);
    const requests = segs.filter((s) => s.dport === 8080 && s.payloadLen > 0);
    expect(requests.map((s) => s.dye ?? null)).toEqual([null, 7, 0, 7]);
    // The server's accepted socket was taken in as the passive end: it reads the options, and its responses
    // announce the request they answer.
    expect(ingressAt8080(w.events).map((e) => [e.dye, e.source])).toEqual([
      [7, "tcp_option"],
      [0, "none"],
      [7, "tcp_option"],
    ]);
    // (A response goes out as two segments, its header and its body: the header announces.)
    const responses = segs.filter((s) => s.sport === 8080 && s.payloadLen > 0);
    expect(responses.map((s) => s.dye ?? null)).toEqual([null, null, 7, null, 0, null, 7, null]);
    const mark = (dye: number) => (dye ? dyeMark(MARK, dye) : 0);
    expect(lines.map((l) => [l.client_mark, l.server.mark])).toEqual([
      [0, 0],
      ...dyes.slice(1).map((d) => [mark(d), mark(d)]),
    ]);
    const c = w.engine!.counters();
    expect([c.adopted, c.adopt_failed]).toEqual([2n, 0n]);
    expect(w.engine!.adoption).toEqual({ netns: 2, skipped: [] });
  },
  T,
);

// Where request 1's segment (announcing the change to 0) is dropped, for 300 ms. On the way, TCP retransmits
// it (before snd_nxt); on its own host the send fails, TCP counts it as not sent and sends it again later as
// new data at the same sequence number.
const DROPS = [
  {
    where: "lost on the way (dropped as it enters the server's namespace): its retransmission",
    ns: (w: World) => w.net.nsB,
    chain: "{ type filter hook prerouting priority -300; }",
  },
  {
    where: "refused by its own host (a netfilter OUTPUT drop in the client's namespace): its resend",
    ns: (w: World) => w.net.nsA,
    chain: "{ type filter hook output priority 0; }",
  },
];

for (const drop of DROPS)
  it(
    `an announcing segment ${drop.where} announces again, so the request it carries is judged by its own dye`,
    async () => {
      const w = attachEngine(setUpWorld(), { ...MARK, setSockMark: true }, ruleFor(7));
      await startServer(w, w.net.nsB, 8080);
      const dyes = [7, 0, 7];
      const client = await startHeldClient(w, `${w.net.ipB}:8080`, idsFor(dyes), 1);
      w.net.exec(
        drop.ns(w),
        `nft add table ip loss && nft add chain ip loss c '${drop.chain}' && nft add rule ip loss c tcp dport 8080 drop`,
      );
      const done = client.resume();
      await Bun.sleep(300);
      w.net.exec(drop.ns(w), "nft delete table ip loss");
      const lines = await done;
      await settle(w, (ev) => ingressAt8080(ev).length >= dyes.length);

      expect(ingressAt8080(w.events).map((e) => [e.dye, e.source])).toEqual([
        [7, "tcp_option"],
        [0, "none"],
        [7, "tcp_option"],
      ]);
      const mark = (dye: number) => (dye ? dyeMark(MARK, dye) : 0);
      expect(lines.map((l) => l.server.mark)).toEqual(dyes.map(mark));
      expect(w.engine!.counters().opt_written_again).toBeGreaterThan(0n);
    },
    T,
  );

for (const family of FAMILIES)
  it(
    `IPv${family}: a full-sized send that changes the dye fits the path MTU: the MSS always leaves room for the option`,
    async () => {
      const { w, b, serve } = familyWorld(family);
      attachEngine(w, { ...MARK }, ruleFor(7));
      // One MSS per skb (no GSO on the veth): a segment too big for the MTU meets the IP layer as it is.
      for (const [ns, dev] of [
        [w.net.nsA, w.net.ifA],
        [w.net.nsB, w.net.ifB],
      ] as const)
        expect(spawnSync("ip", ["-n", ns, "link", "set", "dev", dev, "gso_max_segs", "1"]).status).toBe(0);
      await serve();
      const pcap = join("/tmp", `indigo-engine-${process.pid}-${caseNumber()}.pcap`);
      const cap = await startCapture(w.net.nsB, w.net.ifB, pcap);
      const failsBefore = fragFails(w.net.nsA, family);
      const dyes = [0, 7, 0, 7];
      // Each request is one send of header + 60 000 bytes: its first segment is a full one and, but for the
      // first, announces a new dye.
      const lines = runClient(w, `${b}:8080`, idsFor(dyes), undefined, 60_000);
      expect(lines.map((l) => l.server.mark)).toEqual([0, dyeMark(MARK, 7), 0, dyeMark(MARK, 7)]);
      await cap.stop();
      expect(fragFails(w.net.nsA, family) - failsBefore).toBe(0);
      const segs = readPcap(pcap, DEFAULT_OPTION_EXID);
      rmSync(pcap, { force: true });
      const sent = segs.filter((s) => s.dport === 8080 && s.payloadLen > 0);
      const mss = Math.max(...sent.map((s) => s.payloadLen));
      // MTU 1500 − IP header (20 or 40) − TCP 20 − timestamps 12 − the option's room 8.
      expect(mss).toBe(family === 4 ? 1440 : 1420);
      // The first segment of each request is a full one and, but for the first request's, carries the change.
      // (A retransmitted segment says the last announcement again: it is not the first of its request.)
      const firsts = sent.filter(
        (s, i) =>
          Buffer.from(s.payload.subarray(0, 5)).toString() === "POST " &&
          sent.findIndex((o) => o.seq === s.seq) === i,
      );
      expect(firsts.map((s) => [s.dye ?? null, s.payloadLen])).toEqual([
        [null, mss],
        [7, mss],
        [0, mss],
        [7, mss],
      ]);
      // Whatever segment carries an option carries the dye of the request it belongs to.
      const offset = (seq: number) => (seq - firsts[0]!.seq) >>> 0;
      const requestOf = (seq: number) => firsts.filter((f) => offset(f.seq) <= offset(seq)).length - 1;
      const wrong = sent.filter((s) => s.dye !== undefined && s.dye !== dyes[requestOf(s.seq)]);
      expect(wrong).toEqual([]);
      expect(w.engine!.counters().opt_reserve_failed).toBe(0n);
    },
    T,
  );
