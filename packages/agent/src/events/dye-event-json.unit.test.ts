import { expect, test } from "bun:test";
import { DYE_EVENT_SIZE, decodeDyeEvent, DYE_EVENT_OFFSETS as O } from "./decode-dye-event.ts";
import { dyeEventJsonLine } from "./dye-event-json.ts";

/** A deterministic pseudo-random source, so a failing record can be found again. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1_664_525 + 1_013_904_223) >>> 0;
    return s / 4_294_967_296;
  };
}

/** Text bytes with what JSON must escape or a decoder may map: quotes, backslashes, controls, NUL, ≥ 0x80. */
function nastyBytes(next: () => number, n: number): number[] {
  const pool = [0x22, 0x5c, 0x0a, 0x09, 0x01, 0x00, 0x7f, 0x80, 0x9f, 0xe9, 0xff];
  return Array.from({ length: n }, () =>
    next() < 0.3 ? pool[Math.floor(next() * pool.length)]! : 0x20 + Math.floor(next() * 95),
  );
}

function randomRecord(next: () => number): Uint8Array {
  const b = new Uint8Array(DYE_EVENT_SIZE);
  for (let i = 0; i < b.length; i++) b[i] = Math.floor(next() * 256);
  const v = new DataView(b.buffer);
  // 64-bit ids on both sides of 2^53, where a double stops being exact
  for (const at of [O.ts_ns, O.cgroup_id, O.socket_cookie]) {
    const small = next() < 0.5;
    v.setUint32(
      at + 4,
      small ? Math.floor(next() * 0x20_0000) : 0x20_0000 + Math.floor(next() * 0xffd0_0000),
      true,
    );
  }
  b[O.kind] = 1 + Math.floor(next() * 4);
  b[O.family] = next() < 0.5 ? 2 : 10;
  if (next() < 0.3) b.fill(0, O.saddr + 4, O.saddr + 12); // IPv6 with a run of zeros
  b[O.source] = Math.floor(next() * 7); // 5, 6: beyond the known sources
  b[O.direction] = Math.floor(next() * 3);
  b.set(nastyBytes(next, 16), O.comm);
  b.set(nastyBytes(next, 64), O.trace_id);
  b.set(nastyBytes(next, 8), O.method);
  b.set(nastyBytes(next, 96), O.path);
  // lengths: absent, in range, past the field
  b[O.trace_id_len] = [0, 1 + Math.floor(next() * 64), 200][Math.floor(next() * 3)]!;
  b[O.method_len] = [0, 1 + Math.floor(next() * 8), 9][Math.floor(next() * 3)]!;
  b[O.path_len] = [0, 1 + Math.floor(next() * 96), 255][Math.floor(next() * 3)]!;
  if (next() < 0.5) v.setUint16(O.status, 0, true);
  return b;
}

test("the JSON line written from the bytes is exactly JSON.stringify of the decoded event, for any record", () => {
  const next = rng(20_261_126);
  for (let i = 0; i < 5_000; i++) {
    const b = randomRecord(next);
    const want = `${JSON.stringify(decodeDyeEvent(b))}\n`;
    const got = dyeEventJsonLine(b);
    if (got !== want) throw new Error(`record ${i} differs:\n got  ${got}want ${want}`);
    expect(JSON.parse(got)).toEqual(decodeDyeEvent(b));
  }
});

test("refused as decodeDyeEvent refuses: a short record, an unknown kind", () => {
  expect(() => dyeEventJsonLine(new Uint8Array(10))).toThrow("dye_event is 272 bytes, got 10");
  const b = new Uint8Array(DYE_EVENT_SIZE);
  b[O.kind] = 9;
  expect(() => dyeEventJsonLine(b)).toThrow("unknown kind 9");
});
