// Wall-clock time of the kernel's monotonic zero (what bpf_ktime_get_ns counts from), so consumers can turn
// an event's ts_ns into wall time: CLOCK_REALTIME − CLOCK_MONOTONIC from libc's clock_gettime, read back to
// back (the closest of a few tries). Bun's process.hrtime counts from process start, not from boot, so it
// cannot be used. /proc/stat's btime (whole seconds; boot rather than monotonic zero, which differ by the
// time spent suspended) is the fallback.

import { dlopen, ptr } from "bun:ffi";
import { readFileSync } from "node:fs";

const CLOCK_REALTIME = 0;
const CLOCK_MONOTONIC = 1;

const clockNs = (() => {
  try {
    const libc = dlopen("libc.so.6", { clock_gettime: { args: ["i32", "ptr"], returns: "i32" } });
    const ts = new BigInt64Array(2);
    const p = ptr(ts);
    return (clock: number): bigint => {
      if (libc.symbols.clock_gettime(clock, p) !== 0) throw new Error(`clock_gettime(${clock}) failed`);
      return (ts[0] ?? 0n) * 1_000_000_000n + (ts[1] ?? 0n);
    };
  } catch {
    return undefined;
  }
})();

export const monotonicNs = (): bigint | undefined => clockNs?.(CLOCK_MONOTONIC);

export const bootTimeUnixNano = (): bigint => {
  if (clockNs) {
    let best = 0n;
    let bestGap = Number.POSITIVE_INFINITY;
    for (let i = 0; i < 5; i++) {
      const before = clockNs(CLOCK_MONOTONIC);
      const wall = clockNs(CLOCK_REALTIME);
      const after = clockNs(CLOCK_MONOTONIC);
      const gap = Number(after - before);
      if (gap < bestGap) [best, bestGap] = [wall - (before + after) / 2n, gap];
    }
    if (best > 0n) return best;
  }
  const btime = /^btime\s+(\d+)$/m.exec(readFileSync("/proc/stat", "utf8"))?.[1];
  return BigInt(btime ?? 0) * 1_000_000_000n;
};
