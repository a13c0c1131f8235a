import { expect, test } from "bun:test";
import { PER_MILLION, SamplingController } from "./sampling.ts";

const t0 = Date.parse("2026-01-01T00:00:00Z");
const status = (i: number, rate: number, failures: number) => ({
  agentId: "a1",
  eventRatePerS: rate,
  ringbufReserveFailures: BigInt(failures),
  at: new Date(t0 + i * 5000),
});

test("a burst with drops lowers the rate below the budget; recovery raises it back to every event", () => {
  const c = new SamplingController({ budgetPerS: 50_000 });
  expect(c.observe(status(0, 20_000, 0))).toBe(PER_MILLION);
  // 10× burst: 200k events/s, and the ring buffer drops.
  const first = c.observe(status(1, 200_000, 500));
  expect(first).toBeLessThanOrEqual(250_000); // at most the budget share (50k / 200k)
  const second = c.observe(status(2, 200_000, 900)); // still dropping: halve again
  expect(second).toBeLessThan(first);
  const settled = c.observe(status(3, 200_000, 900)); // no drops: climb back to the budget share
  expect(settled).toBeLessThanOrEqual(250_000);
  expect(settled).toBeGreaterThan(second);
  // The burst ends: rates climb back, doubling per period, to keep every event.
  const rates = [4, 5, 6, 7, 8].map((i) => c.observe(status(i, 20_000, 900)));
  expect(rates.at(-1)).toBe(PER_MILLION);
  for (let i = 1; i < rates.length; i++) expect(rates[i]!).toBeGreaterThanOrEqual(rates[i - 1]!);
});

test("an older status changes nothing; a counter reset counts as new drops; the floor holds", () => {
  const c = new SamplingController({ budgetPerS: 1000, minPerMillion: 5000 });
  c.observe(status(1, 1000, 10));
  expect(c.observe(status(0, 1_000_000, 99))).toBe(PER_MILLION);
  for (let i = 2; i < 20; i++) c.observe(status(i, 10_000_000, i * 100));
  expect(c.rate("a1")).toBe(5000);
  const rates = c.rates().get("a1");
  expect(rates?.map((r) => r.perMillion)).toEqual([5000, 5000, 5000]);
});
