// The hand-written DyeEventBatch encoder against protobuf-es: same bytes as toBinary of the object path
// (decodeDyeEvent → toProtoEvent → create), and fromBinary reads back every field, over random records.
import { expect, test } from "bun:test";
import { create, DyeEventBatchSchema, fromBinary, toBinary } from "@indigo/proto";
import {
  DYE_EVENT_SIZE,
  type DyeEvent,
  DyeEventView,
  decodeDyeEvent,
  DYE_EVENT_OFFSETS as O,
} from "../events/decode-dye-event.ts";
import { BatchEncoder } from "./dye-event-wire.ts";
import { toProtoEvent } from "./to-proto.ts";

const T = 10_000;

let seed = 12345;
const rnd = (n: number): number => {
  seed = (seed * 1103515245 + 12345) >>> 0;
  return seed % n;
};
const pick = <V>(xs: readonly V[]): V => xs[rnd(xs.length)] as V;

const record = (): Uint8Array => {
  const b = new Uint8Array(DYE_EVENT_SIZE);
  const v = new DataView(b.buffer);
  const u64 = () => pick([0n, 1n, 127n, 128n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 63n + 5n, 2n ** 64n - 1n]);
  v.setBigUint64(O.ts_ns, u64(), true);
  v.setBigUint64(O.cgroup_id, u64(), true);
  v.setBigUint64(O.socket_cookie, u64(), true);
  v.setUint32(O.pid, pick([0, 1, 300, 2 ** 31, 2 ** 32 - 1]), true);
  v.setUint32(O.tid, pick([0, 5, 70000]), true);
  v.setUint32(O.dye, pick([0, 7, 0xdeadbeef]), true);
  b[O.source] = rnd(7);
  b[O.direction] = rnd(3);
  b[O.kind] = 1 + rnd(4);
  b[O.family] = pick([2, 10]);
  v.setUint16(O.sport, pick([0, 80, 65535]), true);
  v.setUint16(O.dport, pick([0, 8080]), true);
  for (let i = 0; i < 16; i++) {
    b[O.saddr + i] = rnd(3) === 0 ? 0 : rnd(256);
    b[O.daddr + i] = rnd(3) === 0 ? 0 : rnd(256);
  }
  const fill = (at: number, max: number, lenAt: number | undefined, high: boolean) => {
    const len = rnd(max + 1);
    for (let i = 0; i < len; i++) b[at + i] = high && rnd(5) === 0 ? 0x80 + rnd(128) : 0x20 + rnd(95);
    if (lenAt !== undefined) b[lenAt] = rnd(4) === 0 ? 255 : len; // a length past the field: clamped
  };
  fill(O.comm, 16, undefined, rnd(4) === 0);
  fill(O.method, 8, O.method_len, false);
  fill(O.trace_id, 64, O.trace_id_len, rnd(4) === 0);
  fill(O.path, 96, O.path_len, rnd(4) === 0);
  v.setUint16(O.status, pick([0, 200, 503]), true);
  return b;
};

const header = {
  agentId: "agent-ü-1",
  node: "node-a",
  bootTimeUnixNano: 1_700_000_000_000_000_000n,
  producedUnixNano: 1_700_000_001_000_000_000n,
};

const reference = (events: DyeEvent[], first: bigint, releases: string[]): Uint8Array =>
  toBinary(
    DyeEventBatchSchema,
    create(DyeEventBatchSchema, {
      ...header,
      events: events.map((e, i) => toProtoEvent(e, first + BigInt(i), releases[i] ?? "")),
    }),
  );

test(
  "views encode to the same bytes as protobuf-es, for random records, seqs across 2^32, release ids",
  () => {
    const enc = new BatchEncoder();
    for (const first of [1n, 2n ** 32n - 3n, 9_007_199_254_740_000n]) {
      const records = Array.from({ length: 400 }, record);
      const releases = records.map(() => pick(["", "rel-1", "réléase-2"]));
      const views = records.map((r) => new DyeEventView(r));
      const plain = records.map((r) => decodeDyeEvent(r));
      const want = reference(plain, first, releases);
      expect(enc.encode(header, views, first, releases)).toEqual(want);
      // the object path (plain DyeEvents) and a mix give the same bytes
      expect(enc.encode(header, plain, first, releases)).toEqual(want);
      const mixed = records.map((_r, i) => (i % 2 ? views[i] : plain[i]) as DyeEvent);
      expect(enc.encode(header, mixed, first, releases)).toEqual(want);
      const back = fromBinary(DyeEventBatchSchema, enc.encode(header, views, first, releases));
      expect(back.events.length).toBe(400);
      expect(back.events[399]?.seq).toBe(first + 399n);
    }
  },
  T,
);

test(
  "a view reads as decodeDyeEvent, serialises as it, and refuses what it refuses",
  () => {
    for (let i = 0; i < 200; i++) {
      const r = record();
      const v = new DyeEventView(r);
      const d = decodeDyeEvent(r);
      expect(JSON.parse(JSON.stringify(v))).toEqual(JSON.parse(JSON.stringify(d)));
      for (const k of Object.keys(d) as (keyof DyeEvent)[]) expect(v[k]).toEqual(d[k]);
      expect(v.trace_id).toEqual(d.trace_id);
      expect(v.status).toEqual(d.status);
    }
    const bad = record();
    bad[O.kind] = 9;
    expect(() => new DyeEventView(bad)).toThrow("unknown kind 9");
    expect(() => new DyeEventView(new Uint8Array(10))).toThrow("dye_event is 272 bytes, got 10");
  },
  T,
);
