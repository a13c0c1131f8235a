// DyeEvent (the decoder's JSON shape) → the indigo.v1.DyeEvent init object: enums mapped, addresses back to
// network-order bytes, 64-bit ids back to bigint.

import { DetectionSource, Direction, DyeEventKind, type DyeEvent as DyeEventMsg } from "@indigo/proto";
import type { DyeEvent, DyeSource, EventKind } from "../events/decode-dye-event.ts";

const SOURCE: Record<DyeSource, DetectionSource> = {
  none: DetectionSource.UNSPECIFIED,
  payload: DetectionSource.PAYLOAD,
  sni: DetectionSource.SNI,
  tcp_option: DetectionSource.TCP_OPTION,
  inherit: DetectionSource.INHERIT,
};

const KIND: Record<EventKind, DyeEventKind> = {
  request: DyeEventKind.REQUEST,
  response: DyeEventKind.RESPONSE,
  connect: DyeEventKind.CONNECT,
  accept: DyeEventKind.ACCEPT,
};

/** "a.b.c.d" → 4 bytes; an IPv6 text form (with ::) → 16 bytes. */
export const addressBytes = (text: string): Uint8Array => {
  if (!text.includes(":")) return new Uint8Array(text.split(".").map((p) => Number(p) & 0xff));
  // A dotted IPv4 tail (::ffff:10.0.2.2, as RFC 5952 writes a v4-mapped address) is its last two groups.
  const tail4 = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  const [a = 0, b = 0, c = 0, d = 0] = tail4 ? tail4[2]!.split(".").map(Number) : [];
  const groupsText = tail4
    ? `${tail4[1]}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`
    : text;
  const [head = "", tail] = groupsText.split("::");
  const parse = (s: string) => (s === "" ? [] : s.split(":").map((g) => Number.parseInt(g, 16)));
  const h = parse(head);
  const t = tail === undefined ? [] : parse(tail);
  const groups = [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
};

export type DyeEventInit = Omit<DyeEventMsg, "$typeName" | "$unknown">;

export const toProtoEvent = (e: DyeEvent, seq: bigint, releaseId: string): DyeEventInit => ({
  seq,
  tsNs: BigInt(e.ts_ns),
  kind: KIND[e.kind],
  dye: e.dye,
  source: SOURCE[e.source],
  direction: e.direction === "ingress" ? Direction.INGRESS : Direction.EGRESS,
  pid: e.pid,
  tid: e.tid,
  comm: e.comm,
  cgroupId: BigInt(e.cgroup_id),
  saddr: addressBytes(e.saddr),
  sport: e.sport,
  daddr: addressBytes(e.daddr),
  dport: e.dport,
  socketCookie: BigInt(e.socket_cookie),
  traceId: e.trace_id ?? "",
  method: e.method ?? "",
  path: e.path ?? "",
  status: e.status ?? 0,
  releaseId,
});
