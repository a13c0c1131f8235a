import { expect, test } from "bun:test";
import { addSeq, gaps, type SeqRange } from "./sequence.ts";

test("in-order seqs stay one range; repeats are duplicates", () => {
  const r: SeqRange[] = [];
  for (let s = 1n; s <= 5n; s++) expect(addSeq(r, s)).toBe(true);
  expect(addSeq(r, 3n)).toBe(false);
  expect(r).toEqual([{ lo: 1n, hi: 5n }]);
  expect(gaps(r)).toBe(0n);
});

test("out-of-order arrival ends in the same ranges as in-order; holes count as gaps until filled", () => {
  const r: SeqRange[] = [];
  for (const s of [5n, 1n, 3n, 9n, 2n]) addSeq(r, s);
  expect(r).toEqual([
    { lo: 1n, hi: 3n },
    { lo: 5n, hi: 5n },
    { lo: 9n, hi: 9n },
  ]);
  expect(gaps(r)).toBe(4n); // 4, 6, 7, 8
  for (const s of [8n, 4n, 6n, 7n]) addSeq(r, s);
  expect(r).toEqual([{ lo: 1n, hi: 9n }]);
  expect(gaps(r)).toBe(0n);
});

test("a leading hole is a gap too: seqs start at 1", () => {
  const r: SeqRange[] = [];
  addSeq(r, 10n);
  expect(gaps(r)).toBe(9n);
});
