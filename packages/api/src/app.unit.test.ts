import { expect, test } from "bun:test";
import { createApp } from "./app.ts";

const loopback = { requestIP: () => ({ address: "127.0.0.1", family: "IPv4", port: 40000 }) };
const remote = { requestIP: () => ({ address: "10.1.2.3", family: "IPv4", port: 40000 }) };

test("healthz is 200 when every dependency answers and 503 naming the one that does not", async () => {
  const healthy = createApp({
    health: async () => ({ ok: true, checks: { postgres: { ok: true }, kafka: { ok: true } } }),
  });
  const ok = await healthy.request("/healthz", {}, { server: loopback });
  expect(ok.status).toBe(200);

  const sick = createApp({
    health: async () => ({
      ok: false,
      checks: { postgres: { ok: true }, kafka: { ok: false, error: "refused" } },
    }),
  });
  const down = await sick.request("/healthz", {}, { server: loopback });
  expect(down.status).toBe(503);
  expect(await down.json()).toEqual({
    ok: false,
    checks: { postgres: { ok: true }, kafka: { ok: false, error: "refused" } },
  });
});

test("healthz and metrics answer loopback clients only; others get a 404 problem", async () => {
  const app = createApp({ health: async () => ({ ok: true, checks: {} }) });
  for (const path of ["/healthz", "/metrics"]) {
    const far = await app.request(path, {}, { server: remote });
    expect(far.status).toBe(404);
    expect(far.headers.get("content-type")).toBe("application/problem+json");
    const unknown = await app.request(path);
    expect(unknown.status).toBe(404);
    expect((await app.request(path, {}, { server: loopback })).status).toBe(200);
  }
  const metrics = await (await app.request("/metrics", {}, { server: loopback })).text();
  expect(metrics).toContain('indigo_api_requests_total{method="GET",route="/healthz",status="200"} 1');
});

test("unknown routes are 404 problems; the OpenAPI 3.1 document and its reference page are served", async () => {
  const app = createApp({ health: async () => ({ ok: true, checks: {} }) });
  const missing = await app.request("/nope");
  expect(missing.status).toBe(404);
  expect(await missing.json()).toMatchObject({
    status: 404,
    type: "/problems/not-found",
    title: "Not found",
  });
  const doc = (await (await app.request("/openapi.json")).json()) as { openapi: string };
  expect(doc.openapi).toBe("3.1.0");
  expect(await (await app.request("/docs")).text()).toContain("/openapi.json");
});

test("the dashboard is one static page at / with releases, coverage, trace and agents", async () => {
  const app = createApp({ health: async () => ({ ok: true, checks: {} }) });
  const res = await app.request("/");
  expect(res.status).toBe(200);
  const html = await res.text();
  for (const part of ['id="releases"', 'id="coverage"', 'id="trace"', 'id="agents"', "/v1/releases"]) {
    expect(html).toContain(part);
  }
});
