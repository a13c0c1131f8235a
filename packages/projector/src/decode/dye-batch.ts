// DyeEventBatch decoding for the projector's hot path. The reference decoder (protobuf-es) builds a full
// message object per event, decodes every string through the generic reader and every uint64 through
// strings; this reads the wire format straight into plain objects of the same shape. It covers the encoding
// agents produce (every field with its declared wire type, unknown fields of wire types 0, 1, 2, 5) and
// hands anything else to the reference decoder, which then decides — so it never accepts what the reference
// would refuse: strings are UTF-8 validated the same way (strict), bounds and varints are checked.
import {
  create,
  type DyeEvent,
  type DyeEventBatch,
  DyeEventBatchSchema,
  DyeEventSchema,
  fromBinary,
  toBinary,
} from "@indigo/proto";

export type DyeEventView = Omit<DyeEvent, "$typeName" | "$unknown">;
export interface DyeBatchView {
  readonly agentId: string;
  readonly node: string;
  readonly bootTimeUnixNano: bigint;
  readonly producedUnixNano: bigint;
  readonly events: DyeEventView[];
  /** Where event i's encoding is in `bytes`: [2i, 2i + 1); absent when the reference decoder read it. */
  readonly spans?: readonly number[];
  readonly bytes?: Uint8Array;
}

/** The fast path does not handle this input; the reference decoder decides. */
class Unsupported extends Error {}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const TWO_32 = 4294967296;

class Reader {
  pos = 0;
  constructor(
    readonly buf: Uint8Array,
    public end: number,
  ) {}

  byte(): number {
    if (this.pos >= this.end) throw new Unsupported("premature end");
    return this.buf[this.pos++]!;
  }

  /** A varint's low 32 bits, unsigned; the rest is read and dropped (as uint32/int32 fields do). */
  varint32(): number {
    let value = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      const b = this.byte();
      if (shift < 28) value |= (b & 0x7f) << shift;
      else value |= (b & 0x0f) << 28;
      if (b < 0x80) return value >>> 0;
    }
    for (let i = 5; i < 10; i++) if (this.byte() < 0x80) return value >>> 0;
    throw new Unsupported("varint too long");
  }

  varint64(): bigint {
    let lo = 0;
    let hi = 0;
    let b = 0;
    for (let shift = 0; shift < 28; shift += 7) {
      b = this.byte();
      lo |= (b & 0x7f) << shift;
      if (b < 0x80) return BigInt(lo >>> 0);
    }
    b = this.byte();
    lo |= (b & 0x0f) << 28;
    hi = (b & 0x70) >> 4;
    if (b >= 0x80) {
      for (let shift = 3; ; shift += 7) {
        if (shift > 31) throw new Unsupported("varint too long");
        b = this.byte();
        hi |= (b & 0x7f) << shift;
        if (b < 0x80) break;
      }
    }
    const h = hi >>> 0;
    const l = lo >>> 0;
    return h < 0x200000 ? BigInt(h * TWO_32 + l) : (BigInt(h) << 32n) | BigInt(l);
  }

  delimited(): number {
    const len = this.varint32();
    const start = this.pos;
    if (len > this.end - start) throw new Unsupported("length beyond the message");
    this.pos = start + len;
    return start;
  }

  string(): string {
    const start = this.delimited();
    const end = this.pos;
    if (start === end) return "";
    // Flat strings only: one built by concatenation is a rope that every Map lookup of it (trace ids,
    // process names) would flatten again. ASCII out of a Buffer (what Kafka hands over) is sliced natively;
    // the rest goes through the strict UTF-8 decoder, as the reference decoder does.
    const buf = this.buf;
    if (buf instanceof Buffer) {
      let i = start;
      while (i < end && buf[i]! < 0x80) i++;
      if (i === end) return buf.toString("latin1", start, end);
    }
    return utf8.decode(buf.subarray(start, end));
  }

  bytes(): Uint8Array {
    const start = this.delimited();
    return this.buf.slice(start, this.pos);
  }

  skip(wireType: number): void {
    if (wireType === 0) this.varint32();
    else if (wireType === 1) this.advance(8);
    else if (wireType === 2) this.delimited();
    else if (wireType === 5) this.advance(4);
    else throw new Unsupported(`wire type ${wireType}`);
  }

  advance(n: number): void {
    if (n > this.end - this.pos) throw new Unsupported("premature end");
    this.pos += n;
  }
}

const VARINT = 0;
const LEN = 2;

function expect(wireType: number, want: number): void {
  if (wireType !== want) throw new Unsupported("unexpected wire type");
}

// Absent addresses: one shared empty view (it holds nothing to change), not two allocations per event.
const NO_ADDRESS = new Uint8Array(0);

function readEvent(r: Reader): DyeEventView {
  const e: DyeEventView = {
    seq: 0n,
    tsNs: 0n,
    kind: 0,
    dye: 0,
    source: 0,
    direction: 0,
    pid: 0,
    tid: 0,
    comm: "",
    cgroupId: 0n,
    saddr: NO_ADDRESS,
    sport: 0,
    daddr: NO_ADDRESS,
    dport: 0,
    socketCookie: 0n,
    traceId: "",
    method: "",
    path: "",
    status: 0,
    releaseId: "",
  };
  while (r.pos < r.end) {
    const tag = r.varint32();
    const field = tag >>> 3;
    const wire = tag & 7;
    // biome-ignore format: a table reads best one field a line
    switch (field) {
      case 1: expect(wire, VARINT); e.seq = r.varint64(); break;
      case 2: expect(wire, VARINT); e.tsNs = r.varint64(); break;
      case 3: expect(wire, VARINT); e.kind = r.varint32() | 0; break;
      case 4: expect(wire, VARINT); e.dye = r.varint32(); break;
      case 5: expect(wire, VARINT); e.source = r.varint32() | 0; break;
      case 6: expect(wire, VARINT); e.direction = r.varint32() | 0; break;
      case 7: expect(wire, VARINT); e.pid = r.varint32(); break;
      case 8: expect(wire, VARINT); e.tid = r.varint32(); break;
      case 9: expect(wire, LEN); e.comm = r.string(); break;
      case 10: expect(wire, VARINT); e.cgroupId = r.varint64(); break;
      case 11: expect(wire, LEN); e.saddr = r.bytes(); break;
      case 12: expect(wire, VARINT); e.sport = r.varint32(); break;
      case 13: expect(wire, LEN); e.daddr = r.bytes(); break;
      case 14: expect(wire, VARINT); e.dport = r.varint32(); break;
      case 15: expect(wire, VARINT); e.socketCookie = r.varint64(); break;
      case 16: expect(wire, LEN); e.traceId = r.string(); break;
      case 17: expect(wire, LEN); e.method = r.string(); break;
      case 18: expect(wire, LEN); e.path = r.string(); break;
      case 19: expect(wire, VARINT); e.status = r.varint32(); break;
      case 20: expect(wire, LEN); e.releaseId = r.string(); break;
      default:
        if (field === 0) throw new Unsupported("field number 0");
        r.skip(wire);
    }
  }
  return e;
}

function readBatch(bytes: Uint8Array): DyeBatchView {
  const r = new Reader(bytes, bytes.length);
  let agentId = "";
  let node = "";
  let bootTimeUnixNano = 0n;
  let producedUnixNano = 0n;
  const events: DyeEventView[] = [];
  const spans: number[] = [];
  while (r.pos < r.end) {
    const tag = r.varint32();
    const field = tag >>> 3;
    const wire = tag & 7;
    // biome-ignore format: a table reads best one field a line
    switch (field) {
      case 1: expect(wire, LEN); agentId = r.string(); break;
      case 2: expect(wire, LEN); node = r.string(); break;
      case 3: expect(wire, VARINT); bootTimeUnixNano = r.varint64(); break;
      case 4: expect(wire, VARINT); producedUnixNano = r.varint64(); break;
      case 5: {
        expect(wire, LEN);
        const start = r.delimited();
        const end = r.pos;
        const sub = new Reader(bytes, end);
        sub.pos = start;
        events.push(readEvent(sub));
        spans.push(start, end);
        break;
      }
      default:
        if (field === 0) throw new Unsupported("field number 0");
        r.skip(wire);
    }
  }
  return { agentId, node, bootTimeUnixNano, producedUnixNano, events, spans, bytes };
}

/** Decodes a DyeEventBatch; throws what the reference decoder throws for input it refuses. */
export function decodeDyeBatch(bytes: Uint8Array): DyeBatchView {
  try {
    return readBatch(bytes);
  } catch (error) {
    if (!(error instanceof Unsupported) && !(error instanceof TypeError)) throw error;
    const reference: DyeEventBatch = fromBinary(DyeEventBatchSchema, bytes);
    return reference;
  }
}

/** Event `index` of a batch as its agent encoded it (re-encoded when the reference decoder read the batch). */
export function encodedEvent(batch: DyeBatchView, index: number): Uint8Array {
  const { spans, bytes } = batch;
  if (spans && bytes) return bytes.subarray(spans[2 * index]!, spans[2 * index + 1]!);
  return toBinary(DyeEventSchema, create(DyeEventSchema, batch.events[index]));
}

/** One DyeEvent, as `encodedEvent` gives it; throws what the reference decoder throws. */
export function decodeDyeEvent(bytes: Uint8Array): DyeEventView {
  try {
    return readEvent(new Reader(bytes, bytes.length));
  } catch (error) {
    if (!(error instanceof Unsupported) && !(error instanceof TypeError)) throw error;
    return fromBinary(DyeEventSchema, bytes);
  }
}
