// The only decoder of struct dye_event (bpf/dye_event.h): ring-buffer bytes → the event object the
// standalone CLI prints and the Kafka encoder will read. 64-bit ids (ts_ns, cgroup_id, socket_cookie) are
// decimal strings in JSON: they do not fit a double.
import { dottedAt, ipv6Text } from "@indigo/bus/addresses";

export const DYE_EVENT_SIZE = 272; // sizeof(struct dye_event): 268 bytes of fields, 8-byte aligned

/** Byte offsets of struct dye_event, checked against the C compiler by decode-dye-event.int.test.ts. */
export const DYE_EVENT_OFFSETS = {
  ts_ns: 0,
  cgroup_id: 8,
  socket_cookie: 16,
  pid: 24,
  tid: 28,
  dye: 32,
  source: 36,
  direction: 37,
  kind: 38,
  family: 39,
  sport: 40,
  dport: 42,
  saddr: 44,
  daddr: 60,
  status: 76,
  trace_id_len: 78,
  path_len: 79,
  method_len: 80,
  comm: 84,
  method: 100,
  trace_id: 108,
  path: 172,
} as const;

export const TRACE_ID_MAX = 64;
export const PATH_MAX = 96;
export const METHOD_MAX = 8;

export type DyeSource = "none" | "payload" | "sni" | "tcp_option" | "inherit";
export type EventKind = "request" | "response" | "connect" | "accept";

export const SOURCES: readonly DyeSource[] = ["none", "payload", "sni", "tcp_option", "inherit"];
export const KINDS: Record<number, EventKind> = { 1: "request", 2: "response", 3: "connect", 4: "accept" };

export interface DyeEvent {
  ts_ns: string;
  kind: EventKind;
  dye: number;
  source: DyeSource;
  direction: "egress" | "ingress";
  pid: number;
  tid: number;
  comm: string;
  cgroup_id: string;
  saddr: string;
  sport: number;
  daddr: string;
  dport: number;
  socket_cookie: string;
  trace_id?: string;
  method?: string;
  path?: string;
  status?: number;
}

const latin1 = new TextDecoder("latin1");
const O = DYE_EVENT_OFFSETS;

const text = (b: Uint8Array, at: number, len: number): string => latin1.decode(b.subarray(at, at + len));

/** A NUL-padded field of at most `max` bytes. */
export const cString = (b: Uint8Array, at: number, max: number): string => {
  const field = b.subarray(at, at + max);
  const end = field.indexOf(0);
  return text(b, at, end < 0 ? field.length : end);
};

/** A field of `len` bytes, at most `max`. */
export const sized = (b: Uint8Array, at: number, len: number, max: number): string =>
  text(b, at, Math.min(len, max));

/** IPv4 dotted quad, or IPv6 in RFC 5952 short form (longest run of zero groups as ::), as the socket saw it
 * (a v4-mapped end stays ::ffff:a.b.c.d). */
export const formatAddress = (family: number, addr: Uint8Array): string =>
  family === 10 ? ipv6Text(addr) : dottedAt(addr, 0);

export const decodeDyeEvent = (b: Uint8Array): DyeEvent => {
  if (b.length < DYE_EVENT_SIZE - 4) {
    throw new Error(`dye_event is ${DYE_EVENT_SIZE} bytes, got ${b.length}`);
  }
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const family = v.getUint8(O.family);
  const kind = v.getUint8(O.kind);
  const source = v.getUint8(O.source);
  const e: DyeEvent = {
    ts_ns: v.getBigUint64(O.ts_ns, true).toString(),
    kind: KINDS[kind] ?? "request",
    dye: v.getUint32(O.dye, true),
    source: SOURCES[source] ?? "none",
    direction: v.getUint8(O.direction) === 2 ? "ingress" : "egress",
    pid: v.getUint32(O.pid, true),
    tid: v.getUint32(O.tid, true),
    comm: cString(b, O.comm, 16),
    cgroup_id: v.getBigUint64(O.cgroup_id, true).toString(),
    saddr: formatAddress(family, b.subarray(O.saddr, O.saddr + 16)),
    sport: v.getUint16(O.sport, true),
    daddr: formatAddress(family, b.subarray(O.daddr, O.daddr + 16)),
    dport: v.getUint16(O.dport, true),
    socket_cookie: v.getBigUint64(O.socket_cookie, true).toString(),
  };
  if (!KINDS[kind]) throw new Error(`dye_event has unknown kind ${kind}`);
  const traceLen = v.getUint8(O.trace_id_len);
  if (traceLen > 0) e.trace_id = sized(b, O.trace_id, traceLen, TRACE_ID_MAX);
  const methodLen = v.getUint8(O.method_len);
  if (methodLen > 0) e.method = sized(b, O.method, methodLen, METHOD_MAX);
  const pathLen = v.getUint8(O.path_len);
  if (pathLen > 0) e.path = sized(b, O.path, pathLen, PATH_MAX);
  const status = v.getUint16(O.status, true);
  if (status > 0) e.status = status;
  return e;
};

/**
 * A DyeEvent read lazily from its record's bytes (which it keeps): the drain hands these on, so a consumer
 * that encodes the bytes itself (daemon/batcher.ts → dye-event-wire.ts) never builds strings or bigints.
 * Each field reads as decodeDyeEvent's does; JSON.stringify gives decodeDyeEvent's object.
 */
export class DyeEventView implements DyeEvent {
  readonly #b: Uint8Array;
  #full: DyeEvent | undefined;

  /** Throws as decodeDyeEvent does on a short record or an unknown kind. */
  constructor(bytes: Uint8Array) {
    if (bytes.length < DYE_EVENT_SIZE - 4) {
      throw new Error(`dye_event is ${DYE_EVENT_SIZE} bytes, got ${bytes.length}`);
    }
    const kind = bytes[O.kind] ?? 0;
    if (!KINDS[kind]) throw new Error(`dye_event has unknown kind ${kind}`);
    this.#b = bytes;
  }

  /** The struct dye_event bytes of a view, else undefined. */
  static bytesOf(e: DyeEvent): Uint8Array | undefined {
    return e instanceof DyeEventView ? e.#b : undefined;
  }

  #decoded(): DyeEvent {
    this.#full ??= decodeDyeEvent(this.#b);
    return this.#full;
  }

  #u32(at: number): number {
    const b = this.#b;
    return (
      ((b[at] ?? 0) | ((b[at + 1] ?? 0) << 8) | ((b[at + 2] ?? 0) << 16) | ((b[at + 3] ?? 0) << 24)) >>> 0
    );
  }

  #u16(at: number): number {
    return (this.#b[at] ?? 0) | ((this.#b[at + 1] ?? 0) << 8);
  }

  get dye(): number {
    return this.#u32(O.dye);
  }
  get pid(): number {
    return this.#u32(O.pid);
  }
  get tid(): number {
    return this.#u32(O.tid);
  }
  get sport(): number {
    return this.#u16(O.sport);
  }
  get dport(): number {
    return this.#u16(O.dport);
  }
  get kind(): EventKind {
    return KINDS[this.#b[O.kind] ?? 0] ?? "request";
  }
  get source(): DyeSource {
    return SOURCES[this.#b[O.source] ?? 0] ?? "none";
  }
  get direction(): "egress" | "ingress" {
    return this.#b[O.direction] === 2 ? "ingress" : "egress";
  }
  get ts_ns(): string {
    return this.#decoded().ts_ns;
  }
  get comm(): string {
    return this.#decoded().comm;
  }
  get cgroup_id(): string {
    return this.#decoded().cgroup_id;
  }
  get saddr(): string {
    return this.#decoded().saddr;
  }
  get daddr(): string {
    return this.#decoded().daddr;
  }
  get socket_cookie(): string {
    return this.#decoded().socket_cookie;
  }
  get trace_id(): string | undefined {
    return this.#decoded().trace_id;
  }
  get method(): string | undefined {
    return this.#decoded().method;
  }
  get path(): string | undefined {
    return this.#decoded().path;
  }
  get status(): number | undefined {
    return this.#decoded().status;
  }

  toJSON(): DyeEvent {
    return this.#decoded();
  }
}
