// API benchmarks (issue 6): coverage query latency at a constant 2 000 requests/s (open loop, bench/api-load.ts)
// against a projection holding a day of 10-second buckets for 50 services, and command latency (write → readable).
import { availableParallelism, loadavg } from "node:os";
import { join } from "node:path";
import { sql } from "drizzle-orm";
import { createWorld } from "../packages/api/src/testing/world.ts";
import type { Benchmark, BenchResult } from "./benchmark.ts";

const SERVICES = 50;
const DAY_BUCKETS = 8640; // 24 h of 10 s buckets
const TARGET_RPS = 2000;
const SECONDS = 15;
// Keep-alive connections the generator may use; requests beyond them wait (and that wait counts).
const CONNECTIONS = 32;

interface LoadResult {
  requests: number;
  duration_us: number;
  rate: number;
  errors: number;
  non2xx: number;
  p50_us: number;
  p99_us: number;
  max_us: number;
  service_p99_us: number;
  cpu_ms: number;
  wall_ms: number;
  load: number;
}

/** Constant-rate load from a process of its own (bench/api-load.ts): latency from each scheduled send. */
async function load(url: string, token: string): Promise<LoadResult> {
  const proc = Bun.spawn(
    [
      process.execPath,
      join(import.meta.dir, "api-load.ts"),
      url,
      String(TARGET_RPS),
      String(SECONDS),
      String(CONNECTIONS),
    ],
    { env: { ...process.env, INDIGO_BENCH_TOKEN: token }, stdout: "pipe", stderr: "pipe" },
  );
  const [out, err, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  if (code !== 0) throw new Error(`api-load exited ${code}: ${err}`);
  if (process.env.INDIGO_BENCH_TIMELINE) console.error(err); // the per-second figures
  const line = out.split("\n").find((l) => l.startsWith("{"));
  if (!line) throw new Error(`api-load printed no summary: ${out}`);
  // The machine is shared: its load average while this ran says how much of the tail may be other work's.
  return { ...(JSON.parse(line) as LoadResult), load: loadavg()[0] ?? 0 };
}

async function measure(): Promise<BenchResult[]> {
  const world = await createWorld("bench");
  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: (r) => world.app.fetch(r) });
  try {
    const created = await world.call("POST", "/v1/releases", {
      body: {
        name: "bench",
        cohort: { traceIdPattern: "^t-[a-f0-9]{8}$" },
        services: [{ name: "s0", baseline: "s0:80" }],
      },
    });
    const { id } = (await created.json()) as { id: string };
    // A day of coverage: 50 services, each calling the next two (100 hops), two sources, one row per bucket.
    const dayStart = new Date(Date.now() - DAY_BUCKETS * 10_000);
    const seeded = performance.now();
    await world.sb.database.db.execute(sql`
      insert into coverage (release_id, caller, callee, bucket_start, source, expected, dyed, responses, errors)
      select ${id}, 's' || s, 's' || ((s + h) % ${SERVICES}), ${dayStart.toISOString()}::timestamptz + (b * interval '10 seconds'),
             src, 100, case when src = 'none' then 0 else 100 end, 0, 0
      from generate_series(0, ${SERVICES - 1}) s, generate_series(1, 2) h, generate_series(0, ${DAY_BUCKETS - 1}) b,
           unnest(array['payload', 'none']) src`);
    // …and the all-time sums the projector keeps beside the buckets.
    await world.sb.database.db.execute(sql`
      insert into coverage_totals (release_id, caller, callee, source, expected, dyed, responses, errors)
      select release_id, caller, callee, source, sum(expected), sum(dyed), sum(responses), sum(errors)
      from coverage where release_id = ${id} group by release_id, caller, callee, source`);
    // A day's rows have been vacuumed in the course of the day. Without this, autovacuum's pass over the 1.7 M
    // just-inserted rows ran for ~3 s inside the first load (seen in pg_stat_activity) and took its p99 to
    // 7.1 ms; vacuumed first, four runs gave 4.0–4.9 ms.
    await world.sb.database.db.execute(sql`vacuum (analyze) coverage, coverage_totals`);
    const seedSeconds = (performance.now() - seeded) / 1000;
    const rows = SERVICES * 2 * DAY_BUCKETS * 2;
    const base = `http://127.0.0.1:${server.port}/v1/releases/${id}/coverage`;
    const from = new Date(Date.now() - 5 * 60_000).toISOString();
    const windowed = await load(`${base}?from=${encodeURIComponent(from)}`, world.tokens.viewer);
    const whole = await load(base, world.tokens.viewer);

    // Command latency: create then start, each answered only once the projection shows it (read-your-write).
    const latencies: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t0 = performance.now();
      const r = await world.call("POST", "/v1/releases", {
        body: {
          name: `cmd-${i}`,
          cohort: { header: { name: "x-lane", value: `l${i}` } },
          services: [{ name: "s0", baseline: "s0:80" }],
        },
      });
      const release = (await r.json()) as { id: string; version: number };
      latencies.push(performance.now() - t0);
      const t1 = performance.now();
      const started = await world.call("POST", `/v1/releases/${release.id}/start`, {
        ifMatch: release.version,
      });
      latencies.push(performance.now() - t1);
      if (started.status !== 200)
        throw new Error(`start answered ${started.status}: ${await started.text()}`);
      // Not timed: ends its run, since at most 16 releases run at once (the agents' rule table).
      await world.call("POST", `/v1/releases/${release.id}/rollback`, {
        ifMatch: release.version + 1,
        body: { reason: "bench" },
      });
    }
    latencies.sort((a, b) => a - b);
    const detail = (w: LoadResult, what: string) =>
      `${what}; ${w.rate} req/s achieved (target ${TARGET_RPS}, open loop, latency from the scheduled send, ${CONNECTIONS} connections), ${w.requests} requests, ${w.errors} errors, ${w.non2xx} non-2xx, p99 ${(w.p99_us / 1000).toFixed(2)} ms, max ${(w.max_us / 1000).toFixed(1)} ms, service-time p99 ${(w.service_p99_us / 1000).toFixed(2)} ms; generator CPU ${((w.cpu_ms / w.wall_ms) * 100).toFixed(0)} % of a core, load average ${w.load.toFixed(1)} on ${availableParallelism()} cores; ${rows} coverage rows seeded in ${seedSeconds.toFixed(1)} s`;
    return [
      {
        name: "api.coverage_p50_ms",
        value: windowed.p50_us / 1000,
        unit: "ms",
        target: null,
        better: "lower",
        detail: detail(windowed, "last 5 minutes of a day"),
      },
      {
        name: "api.coverage_p99_ms",
        value: windowed.p99_us / 1000,
        unit: "ms",
        target: 5,
        better: "lower",
        detail: detail(windowed, "last 5 minutes of a day"),
      },
      {
        name: "api.coverage_day_p99_ms",
        value: whole.p99_us / 1000,
        unit: "ms",
        target: 5,
        better: "lower",
        detail: detail(whole, "no window: the whole day summed"),
      },
      {
        name: "api.command_p50_ms",
        value: Math.round(latencies[Math.floor(latencies.length / 2)]!),
        unit: "ms",
        target: null,
        better: "lower",
        detail: `${latencies.length} commands (create, start), write → projected and readable`,
      },
      {
        name: "api.command_p99_ms",
        value: Math.round(latencies[Math.floor(latencies.length * 0.99)]!),
        unit: "ms",
        target: null,
        better: "lower",
        detail: `${latencies.length} commands (create, start), write → projected and readable`,
      },
    ];
  } finally {
    server.stop(true);
    await world.close();
  }
}

export const benchmarks: Benchmark[] = [{ name: "api.queries", run: measure }];
