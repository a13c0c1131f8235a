// Constant-rate (open-loop) HTTP/1.1 load for bench/api.bench.ts, run as its own process:
//   bun bench/api-load.ts URL RATE SECONDS [CONNECTIONS] [WARMUP_SECONDS]   (token in INDIGO_BENCH_TOKEN)
// Request i is *scheduled* at start + i / RATE whatever happened to earlier ones, and its latency is measured
// from that scheduled instant to the end of its response, so a stall of the server (or of this process) shows
// in the percentiles instead of silently lowering the rate (no coordinated omission, as in wrk2). Requests wait
// for a free keep-alive connection in schedule order. Raw sockets and one pre-encoded request keep this cheap
// (the API under test shares a 2-core machine); its own CPU time is printed so it can be checked.
// Prints one JSON line: {requests, duration_us, rate, errors, non2xx, p50_us, p99_us, max_us, …}.
import type { Socket } from "bun";

interface Conn {
  socket: Socket<Conn> | undefined;
  buf: Buffer;
  /** Scheduled and actual send instants of the request in flight (ms, performance.now()). */
  scheduled: number;
  sent: number;
  busy: boolean;
}

const [urlText, rateText, secondsText, connText = "32", warmupText = "2"] = process.argv.slice(2);
if (!urlText || !rateText || !secondsText) {
  console.error("usage: bun bench/api-load.ts URL RATE SECONDS [CONNECTIONS] [WARMUP_SECONDS]");
  process.exit(2);
}
const url = new URL(urlText);
const rate = Number(rateText);
const seconds = Number(secondsText);
const warmup = Number(warmupText);
const token = process.env.INDIGO_BENCH_TOKEN ?? "";
const request = Buffer.from(
  `GET ${url.pathname}${url.search} HTTP/1.1\r\nhost: ${url.host}\r\nauthorization: Bearer ${token}\r\n\r\n`,
);
const TIMEOUT_MS = 2000;
const HEADER_END = Buffer.from("\r\n\r\n");
const CHUNKED_END = Buffer.from("\r\n0\r\n\r\n");

const interval = 1000 / rate;
const total = Math.round(rate * (warmup + seconds));
const warmupCount = Math.round(rate * warmup);
const latencies: number[] = []; // ms, scheduled → response end, measured requests only
const service: number[] = []; // ms, actual send → response end (what a closed-loop tool would report)
let errors = 0;
let non2xx = 0;
let lastDone = 0;
let measureStart = 0;
let issued = 0;
let completed = 0;
let reconnects = 0;
let ending = false;
const pending: number[] = []; // scheduled instants waiting for a connection, oldest first
let pendingHead = 0;
const idle: Conn[] = [];
const all = new Set<Conn>();
// INDIGO_BENCH_TIMELINE=1: also print each second's p99 and max to stderr (where do the slow ones cluster?).
const timeline: [number, number][] | undefined = process.env.INDIGO_BENCH_TIMELINE ? [] : undefined;
const cpuStart = process.cpuUsage();

/** Length of one complete response at the start of `buf`, or 0 while it is incomplete. */
function responseLength(buf: Buffer): number {
  const head = buf.indexOf(HEADER_END);
  if (head < 0) return 0;
  const headers = buf.toString("latin1", 0, head).toLowerCase();
  const cl = /\r\ncontent-length:\s*(\d+)/.exec(headers);
  if (cl) {
    const end = head + 4 + Number(cl[1]);
    return buf.length >= end ? end : 0;
  }
  if (headers.includes("transfer-encoding: chunked")) {
    const end = buf.indexOf(CHUNKED_END, head);
    return end < 0 ? 0 : end + CHUNKED_END.length;
  }
  return head + 4; // no body (e.g. 304)
}

function finish(conn: Conn, status: number, at: number): void {
  completed++;
  if (conn.scheduled >= measureStart && measureStart > 0) {
    latencies.push(at - conn.scheduled);
    if (timeline) timeline.push([conn.scheduled - measureStart, at - conn.scheduled]);
    service.push(at - conn.sent);
    if (status < 200 || status > 299) non2xx++;
    lastDone = at;
  }
  conn.busy = false;
  idle.push(conn);
  dispatch();
}

function dispatch(): void {
  // Oldest idle connection first, so none sits idle long enough for the server's idle timeout to close it.
  while (pendingHead < pending.length && idle.length > 0) {
    const conn = idle.shift() as Conn;
    const scheduled = pending[pendingHead++] as number;
    conn.scheduled = scheduled;
    conn.sent = performance.now();
    conn.busy = true;
    conn.socket?.write(request);
  }
  if (pendingHead > 4096 && pendingHead * 2 > pending.length) {
    pending.splice(0, pendingHead);
    pendingHead = 0;
  }
}

/** A connection the server closed is replaced; the request it carried is sent again, still timed from its schedule. */
function lost(conn: Conn): void {
  reconnects++;
  const at = idle.indexOf(conn);
  if (at >= 0) idle.splice(at, 1);
  if (conn.busy) {
    if (pendingHead > 0) pending[--pendingHead] = conn.scheduled;
    else pending.unshift(conn.scheduled);
  }
  conn.busy = false;
  conn.socket = undefined;
  open().then(
    (c) => {
      idle.push(c);
      dispatch();
    },
    () => errors++,
  );
}

async function open(): Promise<Conn> {
  const conn: Conn = { socket: undefined, buf: Buffer.alloc(0), scheduled: 0, sent: 0, busy: false };
  all.add(conn);
  conn.socket = await Bun.connect<Conn>({
    hostname: url.hostname,
    port: Number(url.port),
    data: conn,
    socket: {
      data(s, chunk) {
        const c = s.data;
        c.buf = c.buf.length === 0 ? chunk : Buffer.concat([c.buf, chunk]);
        const len = responseLength(c.buf);
        if (len === 0) return;
        const status = Number(c.buf.toString("latin1", 9, 12));
        c.buf = c.buf.subarray(len);
        finish(c, status, performance.now());
      },
      close(s) {
        if (!ending) lost(s.data);
      },
      error() {
        errors++;
      },
    },
  });
  return conn;
}

idle.push(...(await Promise.all(Array.from({ length: Number(connText) }, open))));

const start = performance.now() + 5;
measureStart = start + warmupCount * interval;
await new Promise<void>((resolve) => {
  const tick = () => {
    const now = performance.now();
    while (issued < total && start + issued * interval <= now) pending.push(start + issued++ * interval);
    dispatch();
    if (issued < total) setTimeout(tick, Math.max(0, Math.min(1, start + issued * interval - now)));
    else resolve();
  };
  setTimeout(tick, Math.max(0, start - performance.now()));
});
// Let the last requests finish; whatever is still unanswered (or unsent) after the timeout is an error.
const deadline = performance.now() + TIMEOUT_MS;
while (completed < total && performance.now() < deadline) await Bun.sleep(5);
errors += total - completed;
ending = true;
for (const c of all) c.socket?.end();

const cpu = process.cpuUsage(cpuStart);
if (timeline) {
  const perSecond = new Map<number, number[]>();
  for (const [t, ms] of timeline)
    perSecond.set(Math.floor(t / 1000), [...(perSecond.get(Math.floor(t / 1000)) ?? []), ms]);
  for (const [second, ms] of perSecond) {
    ms.sort((a, b) => a - b);
    const p99 = ms[Math.ceil(ms.length * 0.99) - 1] ?? 0;
    console.error(
      `second ${second}: ${ms.length} requests, p99 ${p99.toFixed(2)} ms, max ${(ms.at(-1) ?? 0).toFixed(1)} ms`,
    );
  }
}
const measured = latencies.length;
const sorted = Float64Array.from(latencies).sort();
const sortedService = Float64Array.from(service).sort();
const pct = (a: Float64Array, p: number) =>
  a.length === 0 ? 0 : (a[Math.min(a.length - 1, Math.ceil((p / 100) * a.length) - 1)] as number);
const wall = lastDone - measureStart;
const us = (ms: number) => Math.round(ms * 1000);
console.log(
  JSON.stringify({
    requests: measured,
    duration_us: us(wall),
    rate: wall > 0 ? Math.round((measured / wall) * 1000) : 0,
    target_rate: rate,
    errors,
    non2xx,
    reconnects,
    p50_us: us(pct(sorted, 50)),
    p99_us: us(pct(sorted, 99)),
    p999_us: us(pct(sorted, 99.9)),
    max_us: us(pct(sorted, 100)),
    service_p50_us: us(pct(sortedService, 50)),
    service_p99_us: us(pct(sortedService, 99)),
    cpu_ms: Math.round((cpu.user + cpu.system) / 1000),
    wall_ms: Math.round(performance.now() - start),
  }),
);
process.exit(0);
