import { expect, test } from "bun:test";
import { median, medianConfidenceInterval } from "./stats.ts";

test("median of odd and even counts", () => {
  expect(median([5, 1, 3])).toBe(3);
  expect(median([4, 1, 3, 2])).toBe(2.5);
  expect(() => median([])).toThrow("median of no values");
});

test("the 95 % interval of the median of 30 values spans ranks 10..21 (published tables)", () => {
  const values = Array.from({ length: 30 }, (_, i) => i + 1);
  expect(medianConfidenceInterval(values, 0.95)).toEqual([10, 21]);
});

test("the interval is the same whatever the input order, and widens with confidence", () => {
  const values = [9, 2, 7, 4, 10, 1, 8, 3, 6, 5, 12, 11];
  const [lo95, hi95] = medianConfidenceInterval(values, 0.95);
  const [lo80, hi80] = medianConfidenceInterval([...values].reverse(), 0.8);
  expect(lo95).toBeLessThanOrEqual(lo80);
  expect(hi95).toBeGreaterThanOrEqual(hi80);
  expect(() => medianConfidenceInterval([1, 2, 3])).toThrow("needs at least 6 values");
});
