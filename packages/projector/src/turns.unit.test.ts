import { expect, test } from "bun:test";
import { sliced } from "./turns.ts";

const busy = (ms: number) => {
  const until = performance.now() + ms;
  while (performance.now() < until) {}
};

test("each item in order, and another task runs between slices of a long loop", async () => {
  const seen: number[] = [];
  let otherRanAt = -1;
  setImmediate(() => {
    otherRanAt = seen.length;
  });
  await sliced(
    Array.from({ length: 20 }, (_, i) => i),
    (item, index) => {
      expect(index).toBe(item);
      seen.push(item);
      busy(1);
    },
  );
  expect(seen).toEqual(Array.from({ length: 20 }, (_, i) => i));
  // Without turns the other task would run only after the loop (at 20).
  expect(otherRanAt).toBeGreaterThan(0);
  expect(otherRanAt).toBeLessThan(20);
});

test("a short loop keeps the thread: nothing else runs in it", async () => {
  let otherRan = false;
  setImmediate(() => {
    otherRan = true;
  });
  let n = 0;
  await sliced([1, 2, 3], () => n++);
  expect(n).toBe(3);
  expect(otherRan).toBe(false);
});
