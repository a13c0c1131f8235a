// The spool on a disk that fills up: a real 64 KiB tmpfs, so the kernel's own ENOSPC. Before, the write threw
// (from the batcher's timer: the daemon ended) and left a partial record that cut every later record at the
// next open. Now nothing is thrown, every event is either in the spool or counted as dropped, the spool keeps
// the newest records in order, and the disk's error is reported while it lasts. Root only (mount): skips
// with a reason elsewhere, except under CI=true.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Spool } from "./spool.ts";

const CI = process.env.CI === "true";
const skipReason = process.getuid?.() !== 0 ? "needs root (mounts a tmpfs)" : undefined;
if (skipReason && !CI) console.warn(`skipping the full-disk spool test: ${skipReason}`);
const it = skipReason && !CI ? test.skip : test;

let mnt = "";
beforeAll(() => {
  if (skipReason && !CI) return;
  mnt = mkdtempSync(join(tmpdir(), "indigo-spool-full-"));
  const r = spawnSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", mnt]);
  if (r.status !== 0) throw new Error(`mount tmpfs: ${r.stderr}`);
});
afterAll(() => {
  if (!mnt) return;
  spawnSync("umount", ["-l", mnt]);
  rmSync(mnt, { recursive: true, force: true });
});

/** Record i: 3 000 bytes of i, 10 events. */
const rec = (i: number) => ({ bytes: new Uint8Array(3000).fill(i), events: 10 });

/** Every record in the spool, oldest first, by the index it was written with; replaying empties it. */
const drain = (s: Spool): number[] => {
  const out: number[] = [];
  for (let seg = s.oldest(); seg; seg = s.oldest()) {
    for (const r of seg.records) out.push(r.bytes[0] ?? -1);
    s.remove(seg.id);
  }
  return out;
};

it("a full disk: nothing thrown, every event kept or counted, the newest kept in order, no partial record", () => {
  const dir = join(mnt, "append");
  const spool = Spool.open(dir, { maxBytes: 1 << 20, segmentBytes: 16384 });
  for (let i = 0; i < 60; i++) spool.append([rec(i)]);
  expect(spool.writeFailures).toBeGreaterThan(0);
  expect(spool.writeError ?? "").toContain("ENOSPC");
  expect(Date.now() - spool.writeErrorAtMs).toBeLessThan(10_000);
  // room made at the old end: the oldest segments went, their events counted
  expect(spool.droppedSegments).toBeGreaterThan(0);
  expect(spool.events + spool.droppedEvents).toBe(600);
  expect(spool.events).toBeGreaterThan(0);

  // Opened again (a restart): no damaged record, the same events.
  spool.close();
  const again = Spool.open(dir, { maxBytes: 1 << 20, segmentBytes: 16384 });
  expect(again.corruptRecords).toBe(0);
  expect(again.events).toBe(spool.events);
  const kept = drain(again);
  expect(kept.length * 10).toBe(spool.events);
  expect(kept.at(-1)).toBe(59);
  for (let k = 1; k < kept.length; k++) expect(kept[k]).toBe((kept[k - 1] ?? 0) + 1);

  // Room again (replayed and removed): the next write is taken, with nothing refused.
  again.append([rec(60)]);
  expect(again.writeFailures).toBe(0);
  expect(again.events).toBe(10);
  again.close();
});

it("prepend on a full disk: nothing thrown, what did not fit is counted, no empty segment left", () => {
  const dir = join(mnt, "prepend");
  const spool = Spool.open(dir, { maxBytes: 1 << 20, segmentBytes: 16384 });
  spool.append([rec(1)]);
  // Someone else fills the disk.
  let filler = 0;
  for (;;) {
    try {
      writeFileSync(join(mnt, `filler-${filler++}`), new Uint8Array(4096));
    } catch {
      break;
    }
  }
  const before = readdirSync(dir).length;
  spool.prepend([rec(2), rec(3), rec(4)]);
  expect(spool.events + spool.droppedEvents).toBe(40);
  expect(spool.droppedEvents).toBeGreaterThan(0);
  expect(spool.writeFailures).toBeGreaterThan(0);
  // a prepended segment that took nothing is not left behind
  if (spool.events === 10) expect(readdirSync(dir).length).toBe(before);
  spool.close();
  for (let i = 0; i < filler; i++) rmSync(join(mnt, `filler-${i}`), { force: true });
});
