// The spool on a real file system (a temporary folder): order, bound, drop-oldest accounting, prepend,
// reopen after a restart, and a damaged tail record found and cut.
import { afterEach, expect, test } from "bun:test";
import { appendFileSync, mkdtempSync, readdirSync, rmSync, statSync, truncateSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Spool } from "./spool.ts";
import { decodeRecords, encodeRecord, RECORD_HEADER, type SpoolRecord } from "./spool-record.ts";

const T = 10_000;
const dirs: string[] = [];
const fresh = (): string => {
  const d = mkdtempSync(join(tmpdir(), "indigo-spool-"));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** record n: 100 bytes of n, n events */
const rec = (n: number, size = 100): SpoolRecord => ({
  bytes: new Uint8Array(size).fill(n & 0xff),
  events: n,
});
const drain = (s: Spool): number[] => {
  const out: number[] = [];
  for (let seg = s.oldest(); seg; seg = s.oldest()) {
    out.push(...seg.records.map((r) => r.events));
    s.remove(seg.id);
  }
  return out;
};

test(
  "records come back in the order appended, across segments, and replayed segments are deleted",
  () => {
    const dir = fresh();
    const s = Spool.open(dir, { maxBytes: 1 << 20, segmentBytes: 4096 });
    for (let i = 1; i <= 100; i++) s.append([rec(i)]);
    expect(s.segmentCount).toBeGreaterThan(2);
    expect(s.events).toBe((100 * 101) / 2);
    expect(drain(s)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(s.empty).toBe(true);
    expect(readdirSync(dir)).toEqual([]);
  },
  T,
);

test(
  "past maxBytes the oldest segments are dropped and their events counted",
  () => {
    const s = Spool.open(fresh(), { maxBytes: 16384, segmentBytes: 4096 });
    const n = 400; // 400 × 112 bytes ≈ 44 KiB through a 16 KiB bound
    for (let i = 1; i <= n; i++) s.append([rec(i)]);
    expect(s.bytes).toBeLessThanOrEqual(16384);
    const kept = drain(s);
    // what is left is a contiguous tail, and kept + dropped accounts for every event
    expect(kept).toEqual(Array.from({ length: kept.length }, (_, i) => n - kept.length + 1 + i));
    const total = (n * (n + 1)) / 2;
    expect(kept.reduce((a, b) => a + b, 0) + s.droppedEvents).toBe(total);
    expect(s.droppedSegments).toBeGreaterThan(0);
  },
  T,
);

test(
  "prepend puts records before everything spooled",
  () => {
    const s = Spool.open(fresh(), { maxBytes: 1 << 20, segmentBytes: 4096 });
    s.append([rec(3), rec(4)]);
    s.prepend([rec(1), rec(2)]);
    s.append([rec(5)]);
    expect(drain(s)).toEqual([1, 2, 3, 4, 5]);
  },
  T,
);

test(
  "a reopened spool finds what was left, in order",
  () => {
    const dir = fresh();
    const a = Spool.open(dir, { maxBytes: 1 << 20, segmentBytes: 4096 });
    for (let i = 1; i <= 60; i++) a.append([rec(i)]);
    a.close();
    const b = Spool.open(dir, { maxBytes: 1 << 20, segmentBytes: 4096 });
    b.append([rec(61)]);
    expect(b.corruptRecords).toBe(0);
    expect(drain(b)).toEqual(Array.from({ length: 61 }, (_, i) => i + 1));
  },
  T,
);

test(
  "a torn or damaged tail record is detected, counted and cut; the records before it survive",
  () => {
    for (const damage of ["torn", "crc", "header"] as const) {
      const dir = fresh();
      const a = Spool.open(dir, { maxBytes: 1 << 20, segmentBytes: 1 << 16 });
      a.append([rec(1), rec(2), rec(3)]);
      a.close();
      const [file] = readdirSync(dir);
      const path = join(dir, file ?? "");
      const size = statSync(path).size;
      if (damage === "torn") truncateSync(path, size - 10);
      else if (damage === "header") appendFileSync(path, new Uint8Array(5));
      else {
        const bad = encodeRecord(rec(4));
        bad[RECORD_HEADER + 3] = (bad[RECORD_HEADER + 3] ?? 0) ^ 0xff;
        appendFileSync(path, bad);
      }
      const b = Spool.open(dir, { maxBytes: 1 << 20 });
      expect({ damage, corrupt: b.corruptRecords }).toEqual({ damage, corrupt: 1 });
      expect(drain(b)).toEqual(damage === "torn" ? [1, 2] : [1, 2, 3]);
    }
  },
  T,
);

test(
  "decodeRecords reports where good records end",
  () => {
    const good = [encodeRecord(rec(1, 10)), encodeRecord(rec(2, 20))];
    const all = new Uint8Array([...good[0]!, ...good[1]!, 1, 2, 3]);
    const r = decodeRecords(all);
    expect(r.records.map((x) => x.events)).toEqual([1, 2]);
    expect(r.goodBytes).toBe(all.length - 3);
    expect(r.bad).toBe(true);
  },
  T,
);
