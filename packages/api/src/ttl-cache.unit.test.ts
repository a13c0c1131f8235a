import { expect, test } from "bun:test";
import { alignUp, TtlCache } from "./ttl-cache.ts";

test("reused within the ttl, computed once when asked concurrently; stale served once while refreshing; never older than 2 × ttl", async () => {
  const cache = new TtlCache<number>(50);
  let calls = 0;
  const compute = async () => ++calls;
  expect(await Promise.all([cache.get("k", compute), cache.get("k", compute)])).toEqual([1, 1]);
  expect(await cache.get("k", compute)).toBe(1);
  await Bun.sleep(60);
  expect(await cache.get("k", compute)).toBe(1); // stale, refresh started
  await Bun.sleep(5);
  expect(await cache.get("k", compute)).toBe(2); // refreshed
  await Bun.sleep(120);
  expect(await cache.get("k", compute)).toBe(3); // too old to serve: computed before answering
  expect(calls).toBe(3);
});

test("failures are not cached; the oldest entry goes first when full", async () => {
  const cache = new TtlCache<string>(10_000, 2);
  await expect(cache.get("x", () => Promise.reject(new Error("db down")))).rejects.toThrow("db down");
  expect(await cache.get("x", async () => "ok")).toBe("ok");
  await cache.get("y", async () => "y");
  await cache.get("z", async () => "z");
  expect(await cache.get("x", async () => "recomputed")).toBe("recomputed");
});

test("windows align up to bucket starts: the same buckets, one key per bucket", () => {
  expect(alignUp(new Date(10_001), 10_000)).toBe(20_000);
  expect(alignUp(new Date(20_000), 10_000)).toBe(20_000);
  expect(alignUp(undefined, 10_000)).toBeUndefined();
});
