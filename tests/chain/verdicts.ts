// Pure logic of the chain test: the agent's events and the captured segments, matched to the requests the
// client sent, and judged against what each hop should have done. No I/O here (unit-tested on its own).
//
// Correlation of an event to a request, first rule that applies:
//   1. path  — the request line's path is /r/<seq> at every hop (each hop forwards the path; no rule matches it);
//   2. trace_id — the event's trace id, where the hop saw one (client, A, B ingress);
//   3. tid   — for B's egress (applied after 4) (thread-per-request): the latest B ingress request event of the same thread;
//   4. tuple + order — the k-th request event on a connection (matched by its connecting endpoint, addr:port)
//      is the k-th request the servers logged on that connection.
// A response event belongs to the latest request event on the same socket cookie at the same hop.

import { indigoDye, segmentKind, type TcpSegment } from "../../packages/agent/src/testing/pcap.ts";
import type { Hop } from "./topology.ts";

export interface AgentEvent {
  ts_ns: number | string;
  dye: number;
  source?: string | null;
  direction?: string | null;
  kind?: string | null;
  pid?: number;
  tid?: number;
  comm?: string;
  cgroup_id?: number | string;
  saddr?: string;
  sport?: number;
  daddr?: string;
  dport?: number;
  socket_cookie?: number | string;
  trace_id?: string | null;
  method?: string | null;
  path?: string | null;
  status?: number | null;
}

/** Lower case, without an enum prefix: "DYE_SOURCE_TCP_OPTION" → "tcp_option", "EGRESS" → "egress". */
export const normEnum = (v: unknown): string =>
  String(v ?? "")
    .toLowerCase()
    .replace(/^(dye_)?(event_)?(source|kind|direction|dir|src)_/, "")
    .replace(/-/g, "_");

export interface Point {
  readonly hop: Hop;
  readonly direction: "egress" | "ingress";
  /** Source a cohort request must show here. */
  readonly source: "payload" | "tcp_option" | "inherit";
  readonly label: string;
}

export const POINTS: readonly Point[] = [
  { hop: "client", direction: "egress", source: "payload", label: "client egress (→A)" },
  { hop: "A", direction: "ingress", source: "tcp_option", label: "A ingress (client→)" },
  { hop: "A", direction: "egress", source: "payload", label: "A egress (→B, header forwarded)" },
  { hop: "B", direction: "ingress", source: "tcp_option", label: "B ingress (A→)" },
  { hop: "B", direction: "egress", source: "inherit", label: "B egress (→C, nothing forwarded)" },
  { hop: "C", direction: "ingress", source: "tcp_option", label: "C ingress (B→)" },
];

export interface Req {
  readonly seq: number;
  readonly traceId?: string;
  readonly cohort: boolean;
  /** Dye a cohort request must carry. */
  readonly dye: number;
  readonly status: number;
}

/** Which hop an event came from: by cgroup id, else by pid. */
export interface HopIndex {
  readonly byCgroup: ReadonlyMap<string, Hop>;
  readonly byPid: ReadonlyMap<number, Hop>;
}

/** Connecting endpoint "addr:port" → the seqs the servers logged on that connection, in order. */
export type ConnOrder = ReadonlyMap<string, readonly number[]>;

export type How = "path" | "trace_id" | "tid" | "tuple";

export interface Located {
  readonly ev: AgentEvent;
  readonly hop: Hop;
  readonly kind: string;
  readonly direction: string;
  seq?: number;
  how?: How;
}

const ts = (e: AgentEvent): bigint => BigInt(String(e.ts_ns).split(".")[0] ?? "0");
const cmpTs = (a: Located, b: Located): number => {
  const d = ts(a.ev) - ts(b.ev);
  return d < 0n ? -1 : d > 0n ? 1 : 0;
};

/** IPv4-mapped IPv6 ("::ffff:10.1.2.3" or "::ffff:a01:203", as dual-stack Java sockets report) → IPv4. */
export const normAddr = (a: string | undefined): string => {
  const s = (a ?? "").toLowerCase();
  const dotted = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (dotted?.[1]) return dotted[1];
  const hex = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(s);
  if (hex?.[1] && hex[2]) {
    const hi = Number.parseInt(hex[1], 16);
    const lo = Number.parseInt(hex[2], 16);
    return `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
  }
  return s;
};

export const seqOfPath = (path: string | undefined | null): number | undefined => {
  const m = /^\/r\/(\d+)(?:\/|$|\?)/.exec(path ?? "");
  return m ? Number(m[1]) : undefined;
};

export const locate = (events: AgentEvent[], hops: HopIndex, reqs: Req[], conns: ConnOrder): Located[] => {
  const byTrace = new Map(reqs.filter((r) => r.traceId).map((r) => [r.traceId as string, r.seq]));
  const located: Located[] = [];
  for (const ev of events) {
    const hop =
      hops.byCgroup.get(String(ev.cgroup_id)) ?? (ev.pid === undefined ? undefined : hops.byPid.get(ev.pid));
    if (!hop) continue; // another process on this node: not ours
    located.push({ ev, hop, kind: normEnum(ev.kind), direction: normEnum(ev.direction) });
  }
  located.sort(cmpTs);
  const requests = located.filter((l) => l.kind === "request");
  // 1 and 2
  for (const l of requests) {
    const bySeq = seqOfPath(l.ev.path);
    if (bySeq !== undefined) {
      l.seq = bySeq;
      l.how = "path";
    } else if (l.ev.trace_id && byTrace.has(l.ev.trace_id)) {
      l.seq = byTrace.get(l.ev.trace_id);
      l.how = "trace_id";
    }
  }
  // 4: tuple + order, per hop/direction/connection
  const groups = new Map<string, Located[]>();
  for (const l of requests) {
    const ends = [`${normAddr(l.ev.saddr)}:${l.ev.sport}`, `${normAddr(l.ev.daddr)}:${l.ev.dport}`];
    const end = ends.find((e) => conns.has(e));
    if (!end) continue;
    const key = `${l.hop}|${l.direction}|${end}`;
    groups.set(key, [...(groups.get(key) ?? []), l]);
  }
  for (const [key, list] of groups) {
    const order = conns.get(key.split("|")[2] ?? "") ?? [];
    list.forEach((l, k) => {
      if (l.seq === undefined && order[k] !== undefined) {
        l.seq = order[k];
        l.how = "tuple";
      }
    });
  }
  // 3: B's egress by thread (after 4, which resolves B's ingress)
  for (const l of requests) {
    if (l.seq !== undefined || l.hop !== "B" || l.direction !== "egress") continue;
    const before = requests.filter(
      (x) =>
        x.hop === "B" &&
        x.direction === "ingress" &&
        x.ev.tid === l.ev.tid &&
        x.seq !== undefined &&
        cmpTs(x, l) <= 0,
    );
    const last = before[before.length - 1];
    if (last) {
      l.seq = last.seq;
      l.how = "tid";
    }
  }
  // responses: latest request on the same socket at the same hop
  for (const l of located) {
    if (l.kind !== "response") continue;
    const req = requests.filter(
      (x) => x.hop === l.hop && String(x.ev.socket_cookie) === String(l.ev.socket_cookie) && cmpTs(x, l) <= 0,
    );
    const last = req[req.length - 1];
    if (last?.seq !== undefined) {
      l.seq = last.seq;
      l.how = last.how;
    }
  }
  return located;
};

export interface Cell {
  readonly seq: number;
  readonly point: Point;
  readonly ok: boolean;
  readonly expected: string;
  readonly actual: string;
  readonly dyed: boolean;
}

const describeEvents = (evs: Located[]): string =>
  evs.length === 0
    ? "no event"
    : evs.map((l) => `dye=${l.ev.dye} src=${normEnum(l.ev.source) || "-"} (by ${l.how})`).join(" + ");

/** One cell per request and point: was it dyed, with the right dye and source. */
export const judgeRequests = (located: Located[], reqs: Req[], points = POINTS): Cell[] =>
  reqs.flatMap((r) =>
    points.map((point): Cell => {
      const evs = located.filter(
        (l) =>
          l.kind === "request" && l.seq === r.seq && l.hop === point.hop && l.direction === point.direction,
      );
      const dyed = evs.some((l) => l.ev.dye !== 0);
      const expected = r.cohort ? `dye=${r.dye} src=${point.source}` : "dye=0";
      const ok =
        evs.length > 0 &&
        (r.cohort
          ? evs.every((l) => l.ev.dye === r.dye && normEnum(l.ev.source) === point.source)
          : evs.every((l) => l.ev.dye === 0));
      return { seq: r.seq, point, ok, expected, actual: describeEvents(evs), dyed };
    }),
  );

/** Non-cohort responses must not be dyed; a response's status, when reported, must be the request's. */
export const judgeResponses = (located: Located[], reqs: Req[]): string[] => {
  const bySeq = new Map(reqs.map((r) => [r.seq, r]));
  const out: string[] = [];
  for (const l of located) {
    if (l.kind !== "response" || l.seq === undefined) continue;
    const r = bySeq.get(l.seq);
    if (!r) continue;
    if (!r.cohort && l.ev.dye !== 0)
      out.push(`seq ${r.seq} (non-cohort): response at ${l.hop} ${l.direction} dyed ${l.ev.dye}`);
    if (r.cohort && l.ev.dye !== 0 && l.ev.dye !== r.dye)
      out.push(`seq ${r.seq}: response at ${l.hop} ${l.direction} dyed ${l.ev.dye}, expected ${r.dye}`);
    if (l.ev.status && l.ev.status !== r.status)
      out.push(
        `seq ${r.seq}: response at ${l.hop} ${l.direction} status ${l.ev.status}, expected ${r.status}`,
      );
  }
  return out;
};

export interface Coverage {
  readonly label: string;
  readonly tp: number;
  readonly fn: number;
  readonly fp: number;
  readonly tn: number;
  readonly recall: number;
  readonly precision: number;
}

export const coverage = (cells: Cell[], reqs: Req[], points = POINTS): Coverage[] => {
  const cohort = new Map(reqs.map((r) => [r.seq, r.cohort]));
  return points.map((p) => {
    const mine = cells.filter((c) => c.point === p);
    const tp = mine.filter((c) => cohort.get(c.seq) && c.ok).length;
    const fn = mine.filter((c) => cohort.get(c.seq) && !c.ok).length;
    const fp = mine.filter((c) => !cohort.get(c.seq) && c.dyed).length;
    const tn = mine.filter((c) => !cohort.get(c.seq) && !c.dyed).length;
    return {
      label: p.label,
      tp,
      fn,
      fp,
      tn,
      recall: tp + fn === 0 ? 1 : tp / (tp + fn),
      precision: tp + fp === 0 ? 1 : tp / (tp + fp),
    };
  });
};

/** Failure text: one line per wrong cell, expected vs actual, grouped by request. */
export const formatCells = (cells: Cell[], reqs: Req[], max = 60): string => {
  const bySeq = new Map(reqs.map((r) => [r.seq, r]));
  const bad = cells.filter((c) => !c.ok);
  const lines = bad.slice(0, max).map((c) => {
    const r = bySeq.get(c.seq);
    return `seq ${String(c.seq).padStart(3)} ${r?.cohort ? "cohort    " : "non-cohort"} ${r?.traceId ?? ""}  ${c.point.label.padEnd(34)} expected ${c.expected.padEnd(26)} actual ${c.actual}`;
  });
  if (bad.length > max) lines.push(`... and ${bad.length - max} more`);
  return lines.join("\n");
};

// ---------------------------------------------------------------------------------------------- the wire

export interface LinkCheck {
  readonly violations: string[];
  readonly connections: number;
  readonly dyedSyns: number;
  readonly exids: number[];
}

/** Kind-253 ExIDs seen in a capture (to learn the agent's ExID when it is not configured). */
export const exidsSeen = (segments: TcpSegment[]): number[] => [
  ...new Set(segments.flatMap((s) => s.expOptions.map((o) => o.exid))),
];

/**
 * Checks one link's capture. Segments belong to the request in progress on their connection (from the first
 * byte of its request to the first byte of the next); the handshake belongs to the connection's first request.
 *  - no segment carries a non-zero dye during a non-cohort request, and none a dye other than the cohort's;
 *  - a SYN with a dye is answered by a SYN-ACK with the same dye;
 *  - the dye the client side announced (latest option it sent) is the request's dye at its first segment;
 *  - when synDyedForCohort: a connection opened for a cohort request has the dye on its SYN and SYN-ACK;
 *  - when backgroundDial: the client's pool dials in the background and hands a new connection to whichever
 *    request waits first (Go's http.Transport does), so the handshake belongs to no request in particular: it
 *    may carry a cohort dye (that of the request that caused the dial) or none, never another; the first data
 *    segment of each request must still announce that request's own dye.
 */
export const checkLink = (
  name: string,
  segments: TcpSegment[],
  serverPort: number,
  exid: number,
  reqs: Req[],
  opts: { synDyedForCohort: boolean; backgroundDial?: boolean },
): LinkCheck => {
  const cohortDyes = new Set(reqs.filter((r) => r.cohort).map((r) => r.dye));
  const bySeq = new Map(reqs.map((r) => [r.seq, r]));
  const conns = new Map<string, TcpSegment[]>();
  for (const s of segments) {
    const end =
      s.dport === serverPort
        ? `${s.saddr}:${s.sport}`
        : s.sport === serverPort
          ? `${s.daddr}:${s.dport}`
          : undefined;
    if (!end) continue;
    conns.set(end, [...(conns.get(end) ?? []), s]);
  }
  const v: string[] = [];
  let dyedSyns = 0;
  for (const [end, segs] of conns) {
    const toServer = (s: TcpSegment) => s.dport === serverPort;
    const reqStarts = segs.map((s) => {
      if (!toServer(s) || s.payload.length === 0) return undefined;
      const head = new TextDecoder().decode(s.payload.subarray(0, 64));
      const m = /^[A-Z]+ (\S+) HTTP\/1/.exec(head);
      return m ? seqOfPath(m[1]) : undefined;
    });
    const firstSeq = reqStarts.find((x) => x !== undefined);
    let current = firstSeq;
    let announced = 0;
    const syn = segs.find((s) => segmentKind(s) === "syn");
    const synAck = segs.find((s) => segmentKind(s) === "syn-ack");
    const synDye = syn ? indigoDye(syn, exid) : undefined;
    if (synDye) dyedSyns++;
    if (synDye && synAck && indigoDye(synAck, exid) !== synDye)
      v.push(
        `${name} ${end}: SYN carries dye ${synDye} but the SYN-ACK carries ${indigoDye(synAck, exid) ?? "no option"}`,
      );
    if (opts.synDyedForCohort && syn && firstSeq !== undefined) {
      const first = bySeq.get(firstSeq);
      if (first?.cohort) {
        if (synDye !== first.dye)
          v.push(
            `${name} ${end}: opened for cohort seq ${firstSeq}: SYN dye expected ${first.dye}, got ${synDye ?? "no option"}`,
          );
        const ackDye = synAck ? indigoDye(synAck, exid) : undefined;
        if (ackDye !== first.dye)
          v.push(
            `${name} ${end}: opened for cohort seq ${firstSeq}: SYN-ACK dye expected ${first.dye}, got ${ackDye ?? "no option"}`,
          );
      }
    }
    segs.forEach((s, i) => {
      const started = reqStarts[i];
      if (started !== undefined) current = started;
      const r = current === undefined ? undefined : bySeq.get(current);
      const dye = indigoDye(s, exid);
      if (toServer(s) && dye !== undefined) announced = dye;
      const what = `${name} ${end}: pcap #${s.index} ${segmentKind(s)} ${toServer(s) ? "→server" : "→client"}`;
      const handshake = segmentKind(s) === "syn" || segmentKind(s) === "syn-ack";
      if (handshake && opts.backgroundDial) {
        if (dye && !cohortDyes.has(dye)) v.push(`${what} carries dye ${dye}, which no cohort request has`);
        return;
      }
      if (dye && r && !r.cohort)
        v.push(`${what} carries dye ${dye} during non-cohort seq ${r.seq} (${r.traceId ?? ""})`);
      if (dye && r?.cohort && dye !== r.dye)
        v.push(`${what} carries dye ${dye} during cohort seq ${r.seq}, expected ${r.dye}`);
      if (started !== undefined && r) {
        const want = r.cohort ? r.dye : 0;
        if (announced !== want)
          v.push(
            `${what} starts seq ${r.seq} (${r.cohort ? "cohort" : "non-cohort"}): announced dye ${announced}, expected ${want}`,
          );
      }
    });
  }
  return { violations: v, connections: conns.size, dyedSyns, exids: exidsSeen(segments) };
};
