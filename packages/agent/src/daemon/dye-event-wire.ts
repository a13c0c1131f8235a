// DyeEventBatch in the protobuf wire format, written by hand: events that are DyeEventViews go straight from
// their struct dye_event bytes into the message (no strings, bigints or protobuf-es objects per event); any
// other DyeEvent goes through toProtoEvent + protobuf-es. The output is byte for byte what protobuf-es's
// toBinary makes of the same message (fields in number order, proto3 defaults omitted) —
// dye-event-wire.unit.test.ts checks it.
import { create, DyeEventSchema, toBinary } from "@indigo/proto";
import { type DyeEvent, DyeEventView, DYE_EVENT_OFFSETS as O } from "../events/decode-dye-event.ts";
import { toProtoEvent } from "./to-proto.ts";

const utf8 = new TextEncoder();
// decodeDyeEvent's decoder: a string with a byte ≥ 0x80 is decoded by it, then UTF-8 encoded, exactly as
// the object path does.
const latin1 = new TextDecoder("latin1");

export interface BatchHeader {
  readonly agentId: string;
  readonly node: string;
  readonly bootTimeUnixNano: bigint;
  readonly producedUnixNano: bigint;
}

class Writer {
  buf: Uint8Array;
  pos = 0;
  constructor(size: number) {
    this.buf = new Uint8Array(size);
  }
  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.pos + n));
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }
  u32(v: number): void {
    const b = this.buf;
    let p = this.pos;
    v >>>= 0;
    while (v > 127) {
      b[p++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    b[p++] = v;
    this.pos = p;
  }
  u64(lo: number, hi: number): void {
    const b = this.buf;
    let p = this.pos;
    lo >>>= 0;
    hi >>>= 0;
    while (hi > 0 || lo > 127) {
      b[p++] = (lo & 0x7f) | 0x80;
      lo = ((lo >>> 7) | (hi << 25)) >>> 0;
      hi >>>= 7;
    }
    b[p++] = lo;
    this.pos = p;
  }
  big(v: bigint): void {
    const u = BigInt.asUintN(64, v);
    this.u64(Number(u & 0xffffffffn), Number(u >> 32n));
  }
  bytes(tag: number, data: Uint8Array): void {
    this.ensure(data.length + 8);
    this.buf[this.pos++] = tag;
    this.u32(data.length);
    this.buf.set(data, this.pos);
    this.pos += data.length;
  }
}

const le32 = (b: Uint8Array, at: number): number =>
  ((b[at] ?? 0) | ((b[at + 1] ?? 0) << 8) | ((b[at + 2] ?? 0) << 16) | ((b[at + 3] ?? 0) << 24)) >>> 0;
const le16 = (b: Uint8Array, at: number): number => (b[at] ?? 0) | ((b[at + 1] ?? 0) << 8);

/** A string field of `len` bytes at `at` (len > 0); bytes ≥ 0x80 take the decoder's way to UTF-8. */
const str = (w: Writer, t0: number, t1: number, b: Uint8Array, at: number, len: number): void => {
  let ascii = true;
  for (let i = at; i < at + len; i++) {
    if ((b[i] ?? 0) >= 0x80) {
      ascii = false;
      break;
    }
  }
  const buf = w.buf;
  buf[w.pos++] = t0;
  if (t1 >= 0) buf[w.pos++] = t1;
  if (ascii) {
    let p = w.pos;
    buf[p++] = len; // < 128
    for (let i = at; i < at + len; i++) buf[p++] = b[i] as number;
    w.pos = p;
    return;
  }
  const data = utf8.encode(latin1.decode(b.subarray(at, at + len)));
  w.u32(data.length);
  buf.set(data, w.pos);
  w.pos += data.length;
};

/** The body of one indigo.v1.DyeEvent from struct dye_event bytes (w has room for it). */
const writeEvent = (w: Writer, b: Uint8Array, seqLo: number, seqHi: number, release: Uint8Array): void => {
  const buf = w.buf;
  if (seqLo !== 0 || seqHi !== 0) {
    buf[w.pos++] = 0x08;
    w.u64(seqLo, seqHi);
  }
  const tsLo = le32(b, O.ts_ns);
  const tsHi = le32(b, O.ts_ns + 4);
  if (tsLo !== 0 || tsHi !== 0) {
    buf[w.pos++] = 0x10;
    w.u64(tsLo, tsHi);
  }
  buf[w.pos++] = 0x18; // kind: 1..4, checked by DyeEventView
  buf[w.pos++] = b[O.kind] ?? 0;
  const dye = le32(b, O.dye);
  if (dye !== 0) {
    buf[w.pos++] = 0x20;
    w.u32(dye);
  }
  const source = b[O.source] ?? 0;
  if (source >= 1 && source <= 4) {
    buf[w.pos++] = 0x28;
    buf[w.pos++] = source;
  }
  buf[w.pos++] = 0x30;
  buf[w.pos++] = b[O.direction] === 2 ? 2 : 1;
  const pid = le32(b, O.pid);
  if (pid !== 0) {
    buf[w.pos++] = 0x38;
    w.u32(pid);
  }
  const tid = le32(b, O.tid);
  if (tid !== 0) {
    buf[w.pos++] = 0x40;
    w.u32(tid);
  }
  let commLen = 0;
  while (commLen < 16 && b[O.comm + commLen] !== 0) commLen++;
  if (commLen > 0) str(w, 0x4a, -1, b, O.comm, commLen);
  const cgLo = le32(b, O.cgroup_id);
  const cgHi = le32(b, O.cgroup_id + 4);
  if (cgLo !== 0 || cgHi !== 0) {
    buf[w.pos++] = 0x50;
    w.u64(cgLo, cgHi);
  }
  const addrLen = b[O.family] === 10 ? 16 : 4;
  buf[w.pos++] = 0x5a;
  buf[w.pos++] = addrLen;
  for (let i = 0; i < addrLen; i++) buf[w.pos++] = b[O.saddr + i] as number;
  const sport = le16(b, O.sport);
  if (sport !== 0) {
    buf[w.pos++] = 0x60;
    w.u32(sport);
  }
  buf[w.pos++] = 0x6a;
  buf[w.pos++] = addrLen;
  for (let i = 0; i < addrLen; i++) buf[w.pos++] = b[O.daddr + i] as number;
  const dport = le16(b, O.dport);
  if (dport !== 0) {
    buf[w.pos++] = 0x70;
    w.u32(dport);
  }
  const ckLo = le32(b, O.socket_cookie);
  const ckHi = le32(b, O.socket_cookie + 4);
  if (ckLo !== 0 || ckHi !== 0) {
    buf[w.pos++] = 0x78;
    w.u64(ckLo, ckHi);
  }
  const traceLen = Math.min(b[O.trace_id_len] ?? 0, 64);
  if (traceLen > 0) str(w, 0x82, 0x01, b, O.trace_id, traceLen);
  const methodLen = Math.min(b[O.method_len] ?? 0, 8);
  if (methodLen > 0) str(w, 0x8a, 0x01, b, O.method, methodLen);
  const pathLen = Math.min(b[O.path_len] ?? 0, 96);
  if (pathLen > 0) str(w, 0x92, 0x01, b, O.path, pathLen);
  const status = le16(b, O.status);
  if (status !== 0) {
    buf[w.pos++] = 0x98;
    buf[w.pos++] = 0x01;
    w.u32(status);
  }
  if (release.length > 0) {
    buf[w.pos++] = 0xa2;
    buf[w.pos++] = 0x01;
    w.u32(release.length);
    buf.set(release, w.pos);
    w.pos += release.length;
  }
};

/** Room for one event body from bytes: fixed fields ≤ 150 bytes, strings ≤ 3 × (16 + 64 + 8 + 96) in UTF-8. */
const EVENT_MAX = 150 + 3 * (16 + 64 + 8 + 96);

/**
 * Encodes a DyeEventBatch: header fields, then events[i] with seq firstSeq + i and release id releases[i].
 */
export class BatchEncoder {
  readonly #w = new Writer(1 << 16);
  readonly #releases = new Map<string, Uint8Array>();

  #release(id: string): Uint8Array {
    let r = this.#releases.get(id);
    if (!r) {
      if (this.#releases.size > 1024) this.#releases.clear();
      r = utf8.encode(id);
      this.#releases.set(id, r);
    }
    return r;
  }

  encode(
    h: BatchHeader,
    events: readonly DyeEvent[],
    firstSeq: bigint,
    releases: readonly string[],
  ): Uint8Array {
    const w = this.#w;
    w.pos = 0;
    const agent = utf8.encode(h.agentId);
    if (agent.length > 0) w.bytes(0x0a, agent);
    const node = utf8.encode(h.node);
    if (node.length > 0) w.bytes(0x12, node);
    w.ensure(24);
    if (h.bootTimeUnixNano !== 0n) {
      w.buf[w.pos++] = 0x18;
      w.big(h.bootTimeUnixNano);
    }
    if (h.producedUnixNano !== 0n) {
      w.buf[w.pos++] = 0x20;
      w.big(h.producedUnixNano);
    }
    const first = BigInt.asUintN(64, firstSeq);
    let seqLo = Number(first & 0xffffffffn);
    let seqHi = Number(first >> 32n);
    for (let i = 0; i < events.length; i++) {
      const e = events[i] as DyeEvent;
      const release = this.#release(releases[i] ?? "");
      const raw = DyeEventView.bytesOf(e);
      if (raw) {
        // tag, a one-byte length, the body in place; moved one byte on when its length needs two
        w.ensure(EVENT_MAX + release.length + 8);
        w.buf[w.pos++] = 0x2a;
        const lenAt = w.pos++;
        writeEvent(w, raw, seqLo, seqHi, release);
        const len = w.pos - lenAt - 1;
        if (len < 128) w.buf[lenAt] = len;
        else {
          const n = len < 1 << 14 ? 2 : len < 1 << 21 ? 3 : 4;
          w.buf.copyWithin(lenAt + n, lenAt + 1, w.pos);
          w.pos = lenAt;
          w.u32(len);
          w.pos = lenAt + n + len;
        }
      } else {
        const seq = BigInt(seqHi) * 0x100000000n + BigInt(seqLo);
        w.bytes(
          0x2a,
          toBinary(DyeEventSchema, create(DyeEventSchema, toProtoEvent(e, seq, releases[i] ?? ""))),
        );
      }
      seqLo = (seqLo + 1) >>> 0;
      if (seqLo === 0) seqHi = (seqHi + 1) >>> 0;
    }
    return w.buf.slice(0, w.pos);
  }
}
