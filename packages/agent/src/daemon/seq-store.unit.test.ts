// SeqStore: contiguous numbers across restarts in one boot and after a clean stop, the synced reservation
// after an unclean reboot (never a repeat), the old one-number format, a bad file refused.
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SeqStore } from "./seq-store.ts";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const file = (): string => {
  const d = mkdtempSync(join(tmpdir(), "indigo-seqstore-"));
  dirs.push(d);
  return join(d, "next-seq");
};

test("numbers continue exactly after a crash in the same boot and after a clean stop and reboot", () => {
  const f = file();
  const a = new SeqStore(f, { reserveBlock: 100n, bootId: "boot-1" });
  expect(a.resumed.from).toBe("new");
  expect(a.take(10)).toBe(1n);
  expect(a.take(150)).toBe(11n); // crosses the reservation: a new block is synced before it is handed out
  // killed: no close(); the same boot
  const b = new SeqStore(f, { reserveBlock: 100n, bootId: "boot-1" });
  expect(b.resumed).toEqual({ from: "exact", skipped: 0n });
  expect(b.take(1)).toBe(161n);
  b.close();
  // a clean stop, then a reboot
  const c = new SeqStore(f, { reserveBlock: 100n, bootId: "boot-2" });
  expect(c.resumed).toEqual({ from: "exact", skipped: 0n });
  expect(c.next).toBe(162n);
});

test("after an unclean reboot the numbering continues at the synced reservation: gaps, never repeats", () => {
  const f = file();
  const a = new SeqStore(f, { reserveBlock: 100n, bootId: "boot-1" });
  a.take(30); // 1..30 handed out; reserved up to 101
  const line = readFileSync(f, "utf8");
  expect(line).toMatch(/^v2 0+31 0+101 boot-1 d\n$/);
  const b = new SeqStore(f, { reserveBlock: 100n, bootId: "boot-2" }); // power loss: next not trusted
  expect(b.resumed).toEqual({ from: "reserved", skipped: 70n });
  expect(b.take(1)).toBe(101n);
  // the stale exact next of an older write (it was never synced) cannot pull the numbering back
  writeFileSync(f, "v2 00000000000000000005 00000000000000000201 boot-2 d\n");
  const c = new SeqStore(f, { reserveBlock: 100n, bootId: "boot-3" });
  expect(c.next).toBe(201n);
});

test("the one-number file of earlier versions is read as the exact next; anything else is refused", () => {
  const f = file();
  writeFileSync(f, "42\n");
  const a = new SeqStore(f, { bootId: "b" });
  expect(a.resumed.from).toBe("exact");
  expect(a.take(2)).toBe(42n);
  expect(readFileSync(f, "utf8").startsWith("v2 00000000000000000044 ")).toBe(true);
  const g = file();
  writeFileSync(g, "garbage");
  expect(() => new SeqStore(g)).toThrow("failed to read the next sequence number from");
});
