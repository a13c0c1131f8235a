// Pure pieces of the event path: DyeEvent JSON → proto (enums, addresses, 64-bit ids), batches with
// contiguous seqs persisted across a restart, control folding (own key wins), rules conversion, metrics text.
import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  AgentControlSchema,
  create,
  DetectionSource,
  Direction,
  DyeEventBatchSchema,
  DyeEventKind,
  EventClass,
  fromBinary,
} from "@indigo/proto";
import type { DyeEvent } from "../events/decode-dye-event.ts";
import { Batcher, type EncodedBatch } from "./batcher.ts";
import { bootTimeUnixNano, monotonicNs } from "./boot-time.ts";
import { ControlState, releaseByDye, samplingRates, toRuleInput } from "./control-state.ts";
import { health } from "./http.ts";
import { renderMetrics } from "./metrics.ts";
import { SeqStore } from "./seq-store.ts";
import type { DaemonSnapshot } from "./snapshot.ts";
import { addressBytes, toProtoEvent } from "./to-proto.ts";

const T = 10_000;
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const event = (over: Partial<DyeEvent> = {}): DyeEvent => ({
  ts_ns: "18446744073709551615",
  kind: "response",
  dye: 7,
  source: "tcp_option",
  direction: "ingress",
  pid: 10,
  tid: 11,
  comm: "python3",
  cgroup_id: "557",
  saddr: "10.200.70.2",
  sport: 8080,
  daddr: "fe80::1:2",
  dport: 39884,
  socket_cookie: "9007199254740993",
  trace_id: "t-0123abcd",
  status: 200,
  ...over,
});

test(
  "toProtoEvent maps enums, addresses and 64-bit ids exactly",
  () => {
    const p = toProtoEvent(event(), 5n, "rel-1");
    expect(p.kind).toBe(DyeEventKind.RESPONSE);
    expect(p.source).toBe(DetectionSource.TCP_OPTION);
    expect(p.direction).toBe(Direction.INGRESS);
    expect(p.tsNs).toBe(18446744073709551615n);
    expect(p.socketCookie).toBe(9007199254740993n);
    expect([...p.saddr]).toEqual([10, 200, 70, 2]);
    expect([...p.daddr]).toEqual([0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2]);
    expect(p.releaseId).toBe("rel-1");
    expect(toProtoEvent(event({ source: "none", kind: "connect", direction: "egress" }), 1n, "").source).toBe(
      DetectionSource.UNSPECIFIED,
    );
    expect([...addressBytes("::")]).toEqual(new Array(16).fill(0));
    expect([...addressBytes("2001:db8::")].slice(0, 4)).toEqual([0x20, 0x01, 0x0d, 0xb8]);
    expect([...addressBytes("::ffff:10.0.2.2")]).toEqual([
      0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 2, 2,
    ]);
  },
  T,
);

test(
  "batches are bounded by size, seqs are contiguous from 1 and never repeat after a restart",
  () => {
    const dir = mkdtempSync(join(tmpdir(), "indigo-seq-"));
    dirs.push(dir);
    const out: EncodedBatch[] = [];
    const mk = () =>
      new Batcher({
        agentId: "a1",
        node: "n1",
        bootTimeUnixNano: 1000n,
        seq: new SeqStore(join(dir, "next-seq")),
        maxEvents: 3,
        maxDelayMs: 10_000,
        onBatch: (b) => out.push(b),
      });
    const b1 = mk();
    for (let i = 0; i < 7; i++) b1.add(event(), i % 2 ? "" : "rel");
    b1.flush();
    const b2 = mk(); // a restart
    b2.add(event(), "");
    b2.flush();
    expect(out.map((b) => b.events)).toEqual([3, 3, 1, 1]);
    const seqs = out.flatMap((b) =>
      fromBinary(DyeEventBatchSchema, b.bytes).events.map((e) => Number(e.seq)),
    );
    expect(seqs).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    const first = fromBinary(DyeEventBatchSchema, out[0]!.bytes);
    expect(first.agentId).toBe("a1");
    expect(first.bootTimeUnixNano).toBe(1000n);
    expect(first.events[0]?.releaseId).toBe("rel");
  },
  T,
);

test(
  "the batcher closes a batch after maxDelayMs",
  async () => {
    const dir = mkdtempSync(join(tmpdir(), "indigo-seq-"));
    dirs.push(dir);
    const out: EncodedBatch[] = [];
    const b = new Batcher({
      agentId: "a",
      node: "n",
      bootTimeUnixNano: 0n,
      seq: new SeqStore(join(dir, "s")),
      maxDelayMs: 30,
      onBatch: (x) => out.push(x),
    });
    b.add(event(), "");
    expect(out.length).toBe(0);
    await Bun.sleep(80);
    expect(out.length).toBe(1);
  },
  T,
);

test(
  "control: own key wins over *, a tombstone falls back, rules and sampling convert",
  () => {
    const s = new ControlState("a1");
    const all = create(AgentControlSchema, { target: "*", generation: 1n });
    const own = create(AgentControlSchema, {
      target: "a1",
      generation: 2n,
      rules: [
        { dye: 7, releaseId: "r7", cohort: { match: { case: "traceIdPattern", value: "^t-[0-9a-f]{8}" } } },
        { dye: 8, releaseId: "r8", cohort: { match: { case: "percentBasisPoints", value: 150 } } },
      ],
      sampling: [{ class: EventClass.RESPONSE, perMillion: 0 }],
    });
    expect(s.fold("other", own)).toBe(false);
    s.fold("*", all);
    expect(s.effective?.generation).toBe(1n);
    s.fold("a1", own);
    s.fold("*", create(AgentControlSchema, { generation: 3n }));
    expect(s.effective?.generation).toBe(2n);
    expect(own.rules.map(toRuleInput)).toEqual([
      { dye: 7, traceIdPattern: "^t-[0-9a-f]{8}" },
      { dye: 8, percent: 1.5 },
    ]);
    expect(samplingRates(own).get(EventClass.RESPONSE)).toBe(0);
    expect(samplingRates(own).get(EventClass.REQUEST)).toBe(1_000_000);
    expect(releaseByDye(own).get(8)).toBe("r8");
    s.fold("a1", null);
    expect(s.effective?.generation).toBe(3n);
  },
  T,
);

const snap = (over: Partial<DaemonSnapshot> = {}): DaemonSnapshot => ({
  agentId: "a1",
  node: "n1",
  mode: "full",
  engineAttached: true,
  kafkaConnected: true,
  kafkaError: "",
  spooling: false,
  counters: { events_emitted: 12n, ringbuf_reserve_failed: 0n },
  eventsReceived: 12,
  eventsUndecodable: 0,
  batchesClosed: 2,
  eventsProduced: 12,
  batchesProduced: 2,
  eventsReplayed: 0,
  spooledEvents: 0,
  spoolBytes: 0,
  spoolEventsTotal: 0,
  spoolDroppedEvents: 0,
  spoolCorruptRecords: 0,
  spoolWriteFailures: 0,
  lastSeq: 12n,
  lastProducedSeq: 12n,
  eventRatePerS: 1.5,
  appliedGeneration: 4n,
  controlErrors: 0,
  sampling: new Map([[EventClass.REQUEST, 1_000_000]]),
  stopped: false,
  ...over,
});

test(
  "metrics text and health",
  () => {
    const text = renderMetrics(snap());
    expect(text).toContain('indigo_agent_kernel_counter_total{name="events_emitted"} 12');
    expect(text).toContain('indigo_agent_sampling_per_million{class="request"} 1000000');
    expect(text).toContain("indigo_agent_control_generation 4");
    for (const l of text.trim().split("\n"))
      expect(l).toMatch(/^(# (HELP|TYPE) \w+ .+|\w+(\{.*\})? [-0-9.e+]+)$/);
    expect(health(snap()).status).toBe(200);
    const down = health(snap({ kafkaConnected: false, kafkaError: "ECONNREFUSED", spooling: true }));
    expect(down.status).toBe(503);
    expect(down.body.reasons[0]).toContain("spooling: ECONNREFUSED");
    expect(health(snap({ engineAttached: false })).body.reasons).toEqual(["the eBPF engine is not attached"]);
    const full = health(
      snap({ spooling: true, kafkaConnected: false, spoolWriteError: "ENOSPC: no space left on device" }),
    );
    expect(full.status).toBe(503);
    expect(full.body.reasons[1]).toBe(
      "the spool's disk refuses writes, events are dropped: ENOSPC: no space left on device",
    );
    expect(renderMetrics(snap({ spoolWriteFailures: 3 }))).toContain(
      "indigo_agent_spool_write_failures_total 3",
    );
  },
  T,
);

test(
  "boot time: wall time of monotonic zero, consistent with /proc/uptime within a second",
  () => {
    const boot = Number(bootTimeUnixNano() / 1_000_000n);
    const mono = Number((monotonicNs() ?? 0n) / 1_000_000n);
    expect(Math.abs(boot + mono - Date.now())).toBeLessThan(50);
    const uptimeS = Number(readFileSync("/proc/uptime", "utf8").split(" ")[0]);
    // boottime ≥ monotonic (suspend adds to boottime only)
    expect(uptimeS * 1000 + 1000).toBeGreaterThanOrEqual(mono);
  },
  T,
);
