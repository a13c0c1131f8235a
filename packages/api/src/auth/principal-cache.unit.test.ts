import { expect, test } from "bun:test";
import { PrincipalCache } from "./principal-cache.ts";
import type { Principal } from "./tokens.ts";

const vera: Principal = { name: "vera", role: "viewer" };

test("a valid token is looked up once per ttl, concurrent requests share the lookup", async () => {
  const cache = new PrincipalCache(40);
  let lookups = 0;
  const lookup = async () => {
    lookups++;
    return vera;
  };
  expect(await Promise.all([cache.get("h", lookup), cache.get("h", lookup)])).toEqual([vera, vera]);
  expect(await cache.get("h", lookup)).toEqual(vera);
  expect(lookups).toBe(1);
  await Bun.sleep(50); // revocation takes effect once the ttl has passed
  expect(await cache.get("h", async () => null)).toBeNull();
});

test("unknown tokens and failed lookups are not remembered; ttl 0 always asks", async () => {
  const cache = new PrincipalCache(10_000);
  expect(await cache.get("new", async () => null)).toBeNull();
  await Bun.sleep(0);
  expect(await cache.get("new", async () => vera)).toEqual(vera); // created a moment later: works at once
  await expect(cache.get("x", () => Promise.reject(new Error("db down")))).rejects.toThrow("db down");
  await Bun.sleep(0);
  expect(await cache.get("x", async () => vera)).toEqual(vera);
  const never = new PrincipalCache(0);
  let lookups = 0;
  for (let i = 0; i < 3; i++)
    await never.get("h", async () => {
      lookups++;
      return vera;
    });
  expect(lookups).toBe(3);
});
