import { expect, test } from "bun:test";
import { createApp } from "./app.ts";

test("healthz is 200 when every dependency answers and 503 naming the one that does not", async () => {
  const healthy = createApp({
    health: async () => ({ ok: true, checks: { postgres: { ok: true }, kafka: { ok: true } } }),
  });
  const ok = await healthy.request("/healthz");
  expect(ok.status).toBe(200);

  const sick = createApp({
    health: async () => ({
      ok: false,
      checks: { postgres: { ok: true }, kafka: { ok: false, error: "refused" } },
    }),
  });
  const down = await sick.request("/healthz");
  expect(down.status).toBe(503);
  expect(await down.json()).toEqual({
    ok: false,
    checks: { postgres: { ok: true }, kafka: { ok: false, error: "refused" } },
  });
});
