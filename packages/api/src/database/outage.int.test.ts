// The API when Postgres does not answer (real server, reached through a relay the test can freeze): a frozen
// database, one that refuses connections, and a statement held behind a lock. Each answers a 503 problem in
// bounded time, /healthz says which dependency failed, and the API serves again once the database does.
import { afterAll, beforeAll, expect, test } from "bun:test";
import type { Producer } from "@indigo/bus";
import { type DatabaseHandle, openDatabase } from "@indigo/db";
import { sql } from "drizzle-orm";
import { healthProbe } from "../health.ts";
import { serveApi } from "../serve.ts";
import { type ApiWith, apiWith } from "../testing/api-with.ts";
import { type FreezableProxy, freezableProxy } from "../testing/freezable-proxy.ts";
import { createWorld, sampleRelease, type World } from "../testing/world.ts";
import { API_APPLICATION } from "./config.ts";

const REQUEST_TIMEOUT_MS = 1500;
const HEALTH_TIMEOUT_MS = 500;
const STATEMENT_TIMEOUT_MS = 400;

let world: World;
let proxy: FreezableProxy;
const pools: DatabaseHandle[] = [];
const producer = () => {
  const p = world.sb.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  producers.push(p);
  return p;
};
const producers: Producer[] = [];

beforeAll(async () => {
  world = await createWorld("outage");
  const target = new URL(world.sb.databaseUrl);
  proxy = await freezableProxy(target.hostname, Number(target.port));
}, 120_000);
afterAll(async () => {
  for (const pool of pools) await pool.close().catch(() => {});
  for (const p of producers) await p.disconnect().catch(() => {});
  await proxy.close();
  await world.close();
}, 60_000);

function urlWithPort(port: number): string {
  const u = new URL(world.sb.databaseUrl);
  u.port = String(port);
  return u.toString();
}

/** An API whose every database call goes to `url`, with the bounds main.ts gives it (shortened). */
async function apiOver(url: string, requestTimeoutMs = REQUEST_TIMEOUT_MS): Promise<ApiWith> {
  const connected = producer();
  await connected.connect();
  const database = openDatabase(
    url,
    4,
    {
      application_name: API_APPLICATION,
      statement_timeout: STATEMENT_TIMEOUT_MS,
      idle_in_transaction_session_timeout: 5000,
    },
    { connectTimeoutS: 1 },
  );
  pools.push(database);
  return apiWith(world, {
    db: database.db,
    admin: world.sb.admin,
    producer: connected,
    health: healthProbe(database.db, world.sb.admin, HEALTH_TIMEOUT_MS),
    requestTimeoutMs,
  });
}

async function expectUnavailable(res: Response, detail: RegExp): Promise<void> {
  expect(res.status).toBe(503);
  expect(res.headers.get("content-type")).toBe("application/problem+json");
  expect(res.headers.get("retry-after")).toBe("2");
  const body = (await res.json()) as { type: string; detail: string };
  expect(body.type).toBe("/problems/unavailable");
  expect(body.detail).toMatch(detail);
}

async function timed<T>(run: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await run();
  return { value, ms: performance.now() - started };
}

test("a frozen database: reads and commands are 503s within the deadline, /healthz names postgres; thawed, all answer again", async () => {
  const created = await world.call("POST", "/v1/releases", { body: sampleRelease({ name: "frozen-db" }) });
  const { id } = (await created.json()) as { id: string };
  const api = await apiOver(urlWithPort(proxy.port));
  expect((await api.call("GET", `/v1/releases/${id}`)).status).toBe(200);

  proxy.freeze();
  try {
    const read = await timed(() => api.call("GET", `/v1/releases/${id}`));
    await expectUnavailable(read.value, /no answer within 1500 ms/);
    expect(read.ms).toBeLessThan(REQUEST_TIMEOUT_MS + 1000);

    const command = await timed(() => api.call("POST", `/v1/releases/${id}/start`));
    // A deadline or a connection that could not be made (the pool opens another): either way, a 503 that
    // says the command may have landed.
    await expectUnavailable(command.value, /read the release/);
    expect(command.ms).toBeLessThan(REQUEST_TIMEOUT_MS + 1000);

    const health = await timed(() => Promise.resolve(api.app.request("/healthz")));
    expect(health.value.status).toBe(503);
    const report = (await health.value.json()) as { checks: Record<string, { ok: boolean; error?: string }> };
    expect(report.checks.postgres).toEqual({ ok: false, error: `no answer within ${HEALTH_TIMEOUT_MS} ms` });
    expect(report.checks.kafka?.ok).toBe(true);
    expect(health.ms).toBeLessThan(HEALTH_TIMEOUT_MS + 1000);
  } finally {
    proxy.thaw();
  }

  // The connections held while frozen carry on; a read gets its answer again.
  const deadline = Date.now() + 10_000;
  let status = 0;
  while (Date.now() < deadline) {
    status = (await api.call("GET", `/v1/releases/${id}`)).status;
    if (status === 200) break;
    await Bun.sleep(100);
  }
  expect(status).toBe(200);
  expect((await api.app.request("/healthz")).status).toBe(200);
}, 60_000);

test("nothing listening where the database should be: a 503 naming the refusal, the token lookup included (not a 401 or a 500)", async () => {
  const closed = await new Promise<number>((resolve) => {
    const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const port = s.port;
    s.stop(true);
    resolve(port);
  });
  const api = await apiOver(urlWithPort(closed));
  const res = await api.call("GET", "/v1/releases");
  await expectUnavailable(res, /ECONNREFUSED/);
}, 30_000);

test("a read held behind a lock ends at the statement timeout as a 503, and the next read answers", async () => {
  const api = await apiOver(world.sb.databaseUrl);
  expect((await api.call("GET", "/v1/releases")).status).toBe(200); // the token is cached from here on
  const holder = openDatabase(world.sb.databaseUrl, 1);
  let release: () => void = () => {};
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  const locked = new Promise<void>((resolve, reject) => {
    holder.db
      .transaction(async (tx) => {
        await tx.execute(sql`lock table releases in access exclusive mode`);
        resolve();
        await released;
      })
      .catch(reject);
  });
  try {
    await locked;
    const read = await timed(() => api.call("GET", "/v1/releases"));
    await expectUnavailable(read.value, /statement timeout \(57014/);
    expect(read.ms).toBeLessThan(REQUEST_TIMEOUT_MS);
  } finally {
    release();
    await holder.close();
  }
  expect((await api.call("GET", "/v1/releases")).status).toBe(200);
}, 30_000);

test("served on a port as main.ts serves it: a deadline past Bun's own 10 s idle timeout still answers its 503", async () => {
  // Bun.serve closed a request unanswered after 10 s with no response at all (seen on the dev stack with
  // Postgres stopped: curl got an empty reply at 10 s, before the 20 s deadline's 503).
  const deadline = 11_000;
  const api = await apiOver(urlWithPort(proxy.port), deadline);
  const server = serveApi(api.app, { hostname: "127.0.0.1", port: 0, requestTimeoutMs: deadline });
  const get = () =>
    fetch(`http://127.0.0.1:${server.port}/v1/releases`, {
      headers: { authorization: `Bearer ${world.tokens.viewer}` },
    });
  try {
    expect((await get()).status).toBe(200); // a pooled connection and a cached token from here on
    proxy.freeze();
    const read = await timed(get);
    await expectUnavailable(read.value, new RegExp(`no answer within ${deadline} ms`));
    expect(read.ms).toBeGreaterThan(deadline - 100);
  } finally {
    proxy.thaw();
    await server.stop(true);
  }
}, 60_000);
