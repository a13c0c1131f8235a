// verdicts.ts on synthetic events and segments: each correlation rule, the per-hop judgement, the wire checks.
import { describe, expect, test } from "bun:test";
import type { TcpSegment } from "../../packages/agent/src/testing/pcap.ts";
import type { Hop } from "./topology.ts";
import {
  type AgentEvent,
  checkLink,
  coverage,
  formatCells,
  judgeRequests,
  judgeResponses,
  locate,
  normAddr,
  normEnum,
  POINTS,
  type Req,
} from "./verdicts.ts";

const EXID = 0x1d60;
const hops = {
  byCgroup: new Map<string, Hop>([
    ["10", "client"],
    ["11", "A"],
    ["12", "B"],
    ["13", "C"],
  ]),
  byPid: new Map<number, Hop>(),
};
const reqs: Req[] = [
  { seq: 1, traceId: "t-00000001-0001", cohort: true, dye: 42, status: 200 },
  { seq: 2, traceId: "x-2", cohort: false, dye: 42, status: 503 },
];

let clock = 0;
const ev = (
  cg: string,
  kind: string,
  direction: string,
  dye: number,
  more: Partial<AgentEvent> = {},
): AgentEvent => ({
  ts_ns: String(++clock * 1000),
  cgroup_id: cg,
  kind,
  direction,
  dye,
  source: dye ? "payload" : "none",
  socket_cookie: "1",
  ...more,
});

/** A perfect run for seq 1 (cohort) and seq 2 (non-cohort), using every correlation rule once. */
const perfect = (): AgentEvent[] => [
  ev("10", "request", "egress", 42, { path: "/r/1", trace_id: "t-00000001-0001", source: "payload" }),
  ev("11", "request", "ingress", 42, { trace_id: "t-00000001-0001", source: "tcp_option" }),
  ev("11", "request", "egress", 42, { path: "/r/1", source: "payload" }),
  // B ingress: no path, no trace id: tuple + order (A's socket to B is 10.0.2.1:5000; Java reports v4-mapped)
  ev("12", "request", "ingress", 42, {
    source: "tcp_option",
    saddr: "::ffff:a00:202",
    sport: 8082,
    daddr: "::ffff:a00:201",
    dport: 5000,
    tid: 77,
  }),
  // B egress: no path: by thread
  ev("12", "request", "egress", 42, { source: "inherit", tid: 77 }),
  ev("13", "request", "ingress", 42, { path: "/r/1", source: "tcp_option" }),
  ev("13", "response", "egress", 42, { socket_cookie: "9", status: 200 }),
  ev("10", "request", "egress", 0, { path: "/r/2/fail", trace_id: "x-2" }),
  ev("11", "request", "ingress", 0, { path: "/r/2/fail" }),
  ev("11", "request", "egress", 0, { path: "/r/2/fail" }),
  ev("12", "request", "ingress", 0, {
    saddr: "::ffff:a00:202",
    sport: 8082,
    daddr: "::ffff:a00:201",
    dport: 5000,
    tid: 77,
  }),
  ev("12", "request", "egress", 0, { tid: 77 }),
  ev("13", "request", "ingress", 0, { path: "/r/2/fail" }),
  ev("99", "request", "egress", 42, { path: "/r/2" }), // another process on the node: ignored
];
const conns = new Map([["10.0.2.1:5000", [1, 2]]]);

describe("locate + judgeRequests", () => {
  test("a perfect run: every cell ok, each correlation rule used", () => {
    const located = locate(perfect(), hops, reqs, conns);
    const cells = judgeRequests(located, reqs);
    expect(formatCells(cells, reqs)).toBe("");
    expect(cells.length).toBe(2 * POINTS.length);
    const how = new Set(located.map((l) => l.how));
    for (const h of ["path", "trace_id", "tid", "tuple"]) expect(how.has(h as never)).toBe(true);
    expect(coverage(cells, reqs).every((c) => c.recall === 1 && c.precision === 1)).toBe(true);
    expect(judgeResponses(located, reqs)).toEqual([]);
  });

  test("a dyed non-cohort request, a wrong source and a missing event are each reported per hop", () => {
    const evs = perfect();
    const i = evs.findIndex(
      (e) => e.path === "/r/2/fail" && e.cgroup_id === "11" && e.direction === "egress",
    );
    evs[i] = { ...(evs[i] as AgentEvent), dye: 42, source: "inherit" };
    const j = evs.findIndex((e) => e.cgroup_id === "12" && e.direction === "egress" && e.dye === 42);
    evs[j] = { ...(evs[j] as AgentEvent), source: "payload" };
    const cells = judgeRequests(
      locate(
        evs.filter((e) => !(e.cgroup_id === "13" && e.path === "/r/1")),
        hops,
        reqs,
        conns,
      ),
      reqs,
    );
    const text = formatCells(cells, reqs);
    expect(text).toContain("seq   2 non-cohort x-2  A egress (→B, header forwarded)    expected dye=0");
    expect(text).toContain("actual dye=42 src=inherit (by path)");
    expect(text).toContain(
      `B egress (→C, nothing forwarded)   expected ${"dye=42 src=inherit".padEnd(26)} actual dye=42 src=payload (by tid)`,
    );
    expect(text).toContain(
      `C ingress (B→)                     expected ${"dye=42 src=tcp_option".padEnd(26)} actual no event`,
    );
    const cov = coverage(cells, reqs);
    expect(cov.find((c) => c.label.startsWith("A egress"))?.precision).toBe(0.5);
  });

  test("enum spellings and v4-mapped addresses are normalised", () => {
    expect(normEnum("DYE_SOURCE_TCP_OPTION")).toBe("tcp_option");
    expect(normEnum("EGRESS")).toBe("egress");
    expect(normEnum("tcp-option")).toBe("tcp_option");
    expect(normAddr("::ffff:aac:202")).toBe("10.172.2.2");
    expect(normAddr("::ffff:10.1.2.3")).toBe("10.1.2.3");
    expect(normAddr("10.1.2.3")).toBe("10.1.2.3");
  });
});

// ------------------------------------------------------------------------------------------------ wire

let idx = 0;
const seg = (
  dir: "c2s" | "s2c",
  flags: { syn?: boolean; ack?: boolean; fin?: boolean },
  payload = "",
  dye?: number,
  port = 5000,
): TcpSegment => ({
  tsUs: ++idx,
  index: idx,
  saddr: dir === "c2s" ? "10.0.3.1" : "10.0.3.2",
  sport: dir === "c2s" ? port : 8083,
  daddr: dir === "c2s" ? "10.0.3.2" : "10.0.3.1",
  dport: dir === "c2s" ? 8083 : port,
  seq: 0,
  ack: 0,
  flags: {
    syn: !!flags.syn,
    ack: flags.ack ?? !flags.syn,
    fin: !!flags.fin,
    rst: false,
    psh: payload !== "",
  },
  options: [],
  payload: new TextEncoder().encode(payload),
  expOptions: dye === undefined ? [] : [{ exid: EXID, dye }],
});

describe("checkLink", () => {
  test("a dyed connection for a cohort request, then a non-cohort request announcing 0: clean", () => {
    const segs = [
      seg("c2s", { syn: true }, "", 42),
      seg("s2c", { syn: true, ack: true }, "", 42),
      seg("c2s", {}, "GET /r/1 HTTP/1.1\r\n\r\n", 42),
      seg("s2c", {}, "HTTP/1.1 200 OK\r\n\r\n", 42),
      seg("c2s", {}, "GET /r/2/fail HTTP/1.1\r\n\r\n", 0),
      seg("s2c", {}, "HTTP/1.1 503 X\r\n\r\n", 0),
      seg("c2s", {}),
    ];
    const r = checkLink("link3", segs, 8083, EXID, reqs, { synDyedForCohort: true });
    expect(r.violations).toEqual([]);
    expect(r.dyedSyns).toBe(1);
    expect(r.connections).toBe(1);
  });

  test("a stale dye on a non-cohort request, an undyed SYN for a cohort connection, a SYN-ACK without the dye", () => {
    const segs = [
      seg("c2s", { syn: true }, "", undefined),
      seg("s2c", { syn: true, ack: true }, "", undefined),
      seg("c2s", {}, "GET /r/1 HTTP/1.1\r\n\r\n", 42),
      seg("s2c", {}, "HTTP/1.1 200 OK\r\n\r\n"),
      seg("c2s", {}, "GET /r/2/fail HTTP/1.1\r\n\r\n"), // still announcing 42
      seg("s2c", {}, "HTTP/1.1 503 X\r\n\r\n", 42),
      seg("c2s", { syn: true }, "", 42, 5001),
      seg("s2c", { syn: true, ack: true }, "", undefined, 5001),
      seg("c2s", {}, "GET /r/2 HTTP/1.1\r\n\r\n", 0, 5001),
    ];
    const v = checkLink("link3", segs, 8083, EXID, reqs, { synDyedForCohort: true }).violations;
    expect(v).toContain("link3 10.0.3.1:5000: opened for cohort seq 1: SYN dye expected 42, got no option");
    expect(v).toContain(
      "link3 10.0.3.1:5000: opened for cohort seq 1: SYN-ACK dye expected 42, got no option",
    );
    expect(v.some((x) => x.includes("starts seq 2 (non-cohort): announced dye 42, expected 0"))).toBe(true);
    expect(v.some((x) => x.includes("data →client carries dye 42 during non-cohort seq 2"))).toBe(true);
    expect(v).toContain("link3 10.0.3.1:5001: SYN carries dye 42 but the SYN-ACK carries no option");
    expect(
      v.some(
        (x) =>
          x.includes("10.0.3.1:5001: pcap") &&
          x.includes("syn →server carries dye 42 during non-cohort seq 2"),
      ),
    ).toBe(true);
  });

  test("backgroundDial: a handshake dyed by the request that caused the dial, used first by a non-cohort request that announces 0", () => {
    const segs = [
      seg("c2s", { syn: true }, "", 42),
      seg("s2c", { syn: true, ack: true }, "", 42),
      seg("c2s", {}, "GET /r/2 HTTP/1.1\r\n\r\n", 0),
      seg("s2c", {}, "HTTP/1.1 503 X\r\n\r\n", 0),
      seg("c2s", {}, "GET /r/1 HTTP/1.1\r\n\r\n", 42),
    ];
    expect(
      checkLink("link2", segs, 8083, EXID, reqs, { synDyedForCohort: false, backgroundDial: true })
        .violations,
    ).toEqual([]);
    // Without the option the same capture is a violation: the handshake would belong to seq 2.
    const strict = checkLink("link2", segs, 8083, EXID, reqs, { synDyedForCohort: false }).violations;
    expect(strict.some((x) => x.includes("syn →server carries dye 42 during non-cohort seq 2"))).toBe(true);
    // Still refused with the option: a dye no cohort request has, and a first data segment that does not announce 0.
    const bad = [
      seg("c2s", { syn: true }, "", 77),
      seg("s2c", { syn: true, ack: true }, "", 77),
      seg("c2s", {}, "GET /r/2 HTTP/1.1\r\n\r\n"),
    ];
    const v = checkLink("link2", bad, 8083, EXID, reqs, {
      synDyedForCohort: false,
      backgroundDial: true,
    }).violations;
    expect(v.some((x) => x.includes("syn →server carries dye 77, which no cohort request has"))).toBe(true);
    expect(v.some((x) => x.includes("starts seq 2 (non-cohort): announced dye 77, expected 0"))).toBe(true);
  });
});
