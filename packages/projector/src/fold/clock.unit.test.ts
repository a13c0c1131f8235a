import { expect, test } from "bun:test";
import { BatchClock } from "./clock.ts";

const exact = (boot: bigint, ts: bigint) => Number((boot + ts) / 1_000_000n);

test("event milliseconds equal the exact BigInt result, around multiples and past 2^53", () => {
  const boots = [0n, 1_767_225_600_000_000_000n, 1_767_225_600_999_999_999n, 123_456_789n, 2n ** 63n];
  const near = [
    0n,
    1n,
    999_999n,
    1_000_000n,
    1_000_001n,
    2n ** 53n - 1n,
    2n ** 53n,
    2n ** 53n + 1n,
    2n ** 64n - 1n,
  ];
  for (let k = 0n; k < 200n; k++)
    near.push(k * 7_777_777_777n + 999_999n, (k * 123_456_789_012_345n) % 2n ** 53n);
  for (const boot of boots) {
    const clock = new BatchClock(boot);
    for (const ts of near) expect(clock.ms(ts)).toBe(exact(boot, ts));
  }
});
