// Kernel-side shedding (bpf/lib/emit.bpf.h, sample_keep) against the real kernel: the engine is loaded in
// a fresh cgroup and nothing drains its ring while bench/kernel/rr.c (compiled here, as
// bench/kernel.bench.ts does) runs keep-alive HTTP/1.1 round trips between two network namespaces. Each
// round trip wants four events: the client's egress request and the server's ingress request (REQUEST),
// the server's status line and the client's read of it (RESPONSE). Unread bytes only grow, so the ring's
// records, in order, show where each class stopped; the counters must account for every event wanted.
// Root + BPF only: skips with a reason elsewhere, except under CI=true where it must run.
import { afterAll, expect } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureBpffs } from "../bpffs.ts";
import { ChildCgroup, findCgroup2Root } from "../cgroup.ts";
import { DYE_EVENT_SIZE, type EventKind } from "../events/decode-dye-event.ts";
import { cleanUp } from "../testing/cleanup.ts";
import { worldTeardown } from "../testing/engine-world.ts";
import { buildEngineBeforeAll, kernelGate } from "../testing/kernel-gate.ts";
import { createVethPair, inCgroupAndNetns, type VethPair } from "../testing/netns.ts";
import { runAsync } from "../testing/run.ts";
import { Engine } from "./engine.ts";

const T = 60_000;
const REPO = join(import.meta.dir, "../../../..");
const RR_SOURCE = join(REPO, "bench/kernel/rr.c");
const PORT = 18700;
/** A ring record: the event behind the ring's 8-byte header, 8-byte aligned (DYE_EVENT_SIZE is). */
const RECORD_BYTES = DYE_EVENT_SIZE + 8;
/** Round trips per client run: small steps, so the ring is seen between 3/4 and full before it is full. */
const BATCH = 2000;
/** More batches than filling the ring from empty takes (~11 of BATCH): a stuck ring fails, not hangs. */
const MAX_BATCHES = 40;
/**
 * Records a concurrent producer can slip in between another one's sample_keep() check and its reserve
 * (rr's client and server run at once, on different CPUs): how far the last response may sit from the
 * exact threshold.
 */
const RACE_RECORDS = 4;

const { it, skipReason } = kernelGate("kernel shedding integration test", ["make", "clang", "gcc", "ip"]);

const CLASSES = ["request", "response", "connection"] as const;
type ClassName = (typeof CLASSES)[number];
/** The class each event kind is emitted under (bpf/dye_send.bpf.c, dye_recv.bpf.c, dye_connect.bpf.c). */
const CLASS_OF: Partial<Record<EventKind, ClassName>> = {
  request: "request",
  response: "response",
  connect: "connection",
};

/** The counters this test reads (counter-names.ts); each one required, so a renamed slot fails loudly. */
const COUNTERS = [
  "events_emitted",
  "events_shed",
  "events_sampled_out",
  "ringbuf_reserve_failed",
  "class_request_wanted",
  "class_request_sampled_out",
  "class_request_reserve_failed",
  "class_response_wanted",
  "class_response_sampled_out",
  "class_response_reserve_failed",
  "class_connection_wanted",
  "class_connection_sampled_out",
  "class_connection_reserve_failed",
] as const;
type Counters = Record<(typeof COUNTERS)[number], bigint>;
const countersOf = (engine: Engine): Counters => {
  const all = engine.counters();
  return Object.fromEntries(
    COUNTERS.map((name) => {
      const v = all[name];
      if (v === undefined) throw new Error(`no counter ${name} in counter-names.ts`);
      return [name, v];
    }),
  ) as Counters;
};
const perClass = (c: Counters, what: "wanted" | "sampled_out" | "reserve_failed") =>
  Object.fromEntries(CLASSES.map((k) => [k, c[`class_${k}_${what}`]])) as Record<ClassName, bigint>;
/** Records drained, per class. */
const inRingOf = (kinds: readonly EventKind[]) =>
  Object.fromEntries(
    CLASSES.map((k) => [k, BigInt(kinds.filter((kind) => CLASS_OF[kind] === k).length)]),
  ) as Record<ClassName, bigint>;
/** [class, drained + sampled out + refused by the ring] next to [class, wanted]: equal when none is lost. */
const accounting = (c: Counters, kinds: readonly EventKind[]) => {
  const inRing = inRingOf(kinds);
  const [wanted, sampledOut, failed] = [
    perClass(c, "wanted"),
    perClass(c, "sampled_out"),
    perClass(c, "reserve_failed"),
  ];
  return {
    accounted: CLASSES.map((k) => [k, inRing[k] + sampledOut[k] + failed[k]]),
    wanted: CLASSES.map((k) => [k, wanted[k]]),
  };
};

interface World {
  net: VethPair;
  cgroup: ChildCgroup;
  pinDir: string;
  work: string;
  rr: string;
  server?: ReturnType<typeof Bun.spawn>;
  engine?: Engine;
  drained?: Promise<void>;
}
let world: World | undefined;

buildEngineBeforeAll("kernel shedding integration test", skipReason, T);

afterAll(async () => {
  const w = world;
  world = undefined;
  if (!w) return;
  await cleanUp([
    async () => {
      w.server?.kill("SIGKILL");
      await w.server?.exited;
    },
    ...worldTeardown(w),
    () => rmSync(w.work, { recursive: true, force: true }),
  ]);
}, T);

/**
 * `n` round trips on one keep-alive connection from nsA. Async, so a running drain keeps draining; rr
 * prints its line only after its last round trip, i.e. after every event of the batch was wanted.
 */
const roundTrips = (w: World, n: number): Promise<string> =>
  runAsync(inCgroupAndNetns(w.cgroup.path, w.net.nsA, [w.rr, "client", w.net.ipB, String(PORT), String(n)]));

const startServer = async (w: World): Promise<void> => {
  const server = Bun.spawn(inCgroupAndNetns(w.cgroup.path, w.net.nsB, [w.rr, "server", String(PORT)]), {
    stdout: "pipe",
    stderr: "inherit",
  });
  w.server = server;
  const reader = server.stdout.getReader();
  const first = await Promise.race([reader.read(), Bun.sleep(10_000).then(() => undefined)]);
  reader.releaseLock();
  if (!first?.value) throw new Error("rr server did not report listening");
};

it(
  "an undrained ring sheds responses above 3/4, refuses requests only when full, accounts for every event, and reports responses again once drained",
  async () => {
    const tag = `${process.pid}`;
    const work = mkdtempSync(join(tmpdir(), "indigo-shedding-"));
    const w: World = {
      net: createVethPair(),
      cgroup: ChildCgroup.create(findCgroup2Root() ?? "", `indigo-test-shedding-${tag}`),
      pinDir: join(ensureBpffs(), `indigo-test-shedding-${tag}`),
      work,
      rr: join(work, "rr"),
    };
    world = w;
    // A private binary: bench/kernel.bench.ts builds .run/bench/rr, which a running benchmark may be using.
    await runAsync(["gcc", "-O2", "-pthread", "-o", w.rr, RR_SOURCE]);
    // No interfaces: tc plays no part in events. A fresh pinDir: a fresh ring, sampling rates at 100 %,
    // so every event sampled out below is one the kernel shed.
    const engine = Engine.start({ pinDir: w.pinDir, cgroupPath: w.cgroup.path });
    w.engine = engine;
    // Ring size from the map itself, not a copy of EVENTS_RING_BYTES.
    const ringBytes = engine.map("events").maxEntries;
    const capacity = Math.floor(ringBytes / RECORD_BYTES);
    const responseLimit = Math.floor(((ringBytes / 4) * 3) / RECORD_BYTES); // last index kept: avail ≤ 3/4
    await startServer(w);

    // 1. No drain yet: batches until responses are shed, i.e. until the ring holds more than 3/4.
    let c = countersOf(engine);
    let batches = 0;
    while (c.class_response_sampled_out === 0n && batches++ < MAX_BATCHES) {
      await roundTrips(w, BATCH);
      c = countersOf(engine);
    }
    expect(c.class_response_sampled_out).toBeGreaterThan(0n);
    expect(c.events_shed).toBeGreaterThan(0n);
    expect(Number(c.events_emitted) * RECORD_BYTES).toBeGreaterThan((ringBytes / 4) * 3);
    // Past 3/4 but not full: requests still all go in; nothing refused by the ring yet.
    expect(Number(c.events_emitted)).toBeLessThan(capacity);
    expect([c.class_request_sampled_out, c.class_request_reserve_failed, c.ringbuf_reserve_failed]).toEqual([
      0n,
      0n,
      0n,
    ]);

    // 2. Still no drain: batches until the ring refuses requests. It must then really be full: no room
    //    left for one more record.
    while (c.class_request_reserve_failed === 0n && batches++ < MAX_BATCHES) {
      await roundTrips(w, BATCH);
      c = countersOf(engine);
    }
    expect(c.class_request_reserve_failed).toBeGreaterThan(0n);
    expect(Number(c.events_emitted)).toBe(capacity);
    // Requests are never shed; responses never reach the full ring (shed at 3/4 first); no connects here.
    expect(c.class_request_sampled_out).toBe(0n);
    expect(c.class_response_reserve_failed).toBe(0n);
    expect(c.ringbuf_reserve_failed).toBe(c.class_request_reserve_failed);
    // Sampling is at 100 %: whatever was sampled out was shed, and shed in one class counter.
    expect(c.events_sampled_out).toBe(c.events_shed);
    const sampledOut = perClass(c, "sampled_out");
    expect(sampledOut.request + sampledOut.response + sampledOut.connection).toBe(c.events_shed);

    // 3. Drain: the ring's records, in the order they were reserved.
    const kinds: EventKind[] = [];
    w.drained = engine.drain((e) => kinds.push(e.kind));
    const settle = async (emitted: bigint) => {
      for (let i = 0; i < 500 && kinds.length < Number(emitted); i++) await Bun.sleep(10);
      expect(kinds.length).toBe(Number(emitted));
    };
    await settle(c.events_emitted);
    const inRing = inRingOf(kinds);
    expect(inRing.request + inRing.response + inRing.connection).toBe(c.events_emitted);
    // Every event wanted, per class: in the ring, shed, or refused by the full ring — exactly.
    const full = accounting(c, kinds);
    expect(full.accounted).toEqual(full.wanted);
    // Where each class stopped: responses up to 3/4 of the ring (within a producer race), none after;
    // before that point nothing was shed (requests and responses in step, four events per round trip);
    // after it only requests, up to the full ring.
    const lastResponse = kinds.lastIndexOf("response");
    expect(lastResponse).toBeGreaterThanOrEqual(responseLimit - RACE_RECORDS);
    expect(lastResponse).toBeLessThanOrEqual(responseLimit + RACE_RECORDS);
    const head = kinds.slice(0, lastResponse + 1);
    const headResponses = head.filter((k) => k === "response").length;
    expect(Math.abs(head.length - 2 * headResponses)).toBeLessThanOrEqual(RACE_RECORDS);
    expect(kinds.slice(lastResponse + 1).every((k) => k === "request")).toBe(true);
    expect(kinds.length - lastResponse - 1).toBeGreaterThan(capacity - responseLimit - 2 * RACE_RECORDS);

    // 4. Drained, the ring sheds nothing: every response of a new batch is reported again.
    const before = countersOf(engine);
    const from = kinds.length;
    await roundTrips(w, BATCH / 4);
    const after = countersOf(engine);
    await settle(after.events_emitted);
    const fresh = kinds.slice(from);
    expect(fresh.filter((k) => k === "response").length).toBe(BATCH / 2);
    expect(fresh.filter((k) => k === "request").length).toBe(BATCH / 2);
    expect(after.class_response_wanted - before.class_response_wanted).toBe(BigInt(BATCH / 2));
    expect([after.events_shed, after.class_response_sampled_out, after.ringbuf_reserve_failed]).toEqual([
      before.events_shed,
      before.class_response_sampled_out,
      before.ringbuf_reserve_failed,
    ]);
    // And the whole run still balances, the drained batch included.
    const end = accounting(after, kinds);
    expect(end.accounted).toEqual(end.wanted);
  },
  T,
);
