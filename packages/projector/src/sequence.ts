// Which per-agent sequence numbers have been applied, as sorted disjoint closed ranges. A seq inside a range
// is a duplicate; holes between 1 and the highest seq are gaps. Order of arrival does not matter.

export interface SeqRange {
  lo: bigint;
  hi: bigint;
}

/** Adds `seq` to `ranges` (sorted, disjoint, merged); false when it was already there. */
export function addSeq(ranges: SeqRange[], seq: bigint): boolean {
  let i = 0;
  while (i < ranges.length && ranges[i]!.hi < seq - 1n) i++;
  const at = ranges[i];
  if (at && at.lo <= seq && seq <= at.hi) return false;
  if (at && at.lo === seq + 1n) {
    at.lo = seq;
  } else if (at && at.hi === seq - 1n) {
    at.hi = seq;
    const next = ranges[i + 1];
    if (next && next.lo === seq + 1n) {
      at.hi = next.hi;
      ranges.splice(i + 1, 1);
    }
  } else {
    ranges.splice(i, 0, { lo: seq, hi: seq });
  }
  return true;
}

/** Sequence numbers missing between 1 and the highest applied one. */
export function gaps(ranges: readonly SeqRange[]): bigint {
  if (ranges.length === 0) return 0n;
  const applied = ranges.reduce((n, r) => n + (r.hi - r.lo + 1n), 0n);
  return ranges[ranges.length - 1]!.hi - applied;
}
