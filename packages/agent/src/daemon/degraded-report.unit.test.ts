// A degraded DaemonSnapshot as /healthz, /metrics and AgentStatus show it (degraded.int.test.ts runs it for real).
import { expect, test } from "bun:test";
import { AgentMode } from "@indigo/proto";
import type { DegradedStatus } from "../degraded/degraded.ts";
import { health } from "./http.ts";
import { renderMetrics } from "./metrics.ts";
import type { DaemonSnapshot } from "./snapshot.ts";
import { buildStatus } from "./status.ts";

const degraded: DegradedStatus = {
  mode: "degraded",
  reason: 'no kernel BTF ("/sys/kernel/btf/vmlinux" is missing)',
  cause: "no-btf",
  backend: "nftables",
  since: "2026-01-01T00:00:00.000Z",
  rules: [{ dye: 7, dport: 8080, mark: 0x01000007, packets: 5 }],
  packetsMarked: 9,
  packetsRestored: 4,
  coverage: null,
  unsupported: "…",
};

const snap = (over: Partial<DaemonSnapshot> = {}): DaemonSnapshot => ({
  agentId: "a1",
  node: "n1",
  mode: "degraded",
  degraded,
  engineAttached: false,
  kafkaConnected: true,
  kafkaError: "",
  spooling: false,
  counters: {},
  eventsReceived: 0,
  eventsUndecodable: 0,
  batchesClosed: 0,
  eventsProduced: 0,
  batchesProduced: 0,
  eventsReplayed: 0,
  spooledEvents: 0,
  spoolBytes: 0,
  spoolEventsTotal: 0,
  spoolDroppedEvents: 0,
  spoolCorruptRecords: 0,
  spoolWriteFailures: 0,
  lastSeq: 0n,
  lastProducedSeq: 0n,
  eventRatePerS: 0,
  appliedGeneration: 0n,
  controlErrors: 0,
  sampling: new Map(),
  stopped: false,
  ...over,
});

test("degraded: /healthz is 200 with the mode and reason; Kafka down still makes it 503", () => {
  const h = health(snap());
  expect(h.status).toBe(200);
  expect(h.body).toMatchObject({ ok: true, mode: "degraded", reason: degraded.reason, cause: "no-btf" });
  expect(h.body.reasons).toEqual([]);
  const down = health(snap({ kafkaConnected: false }));
  expect(down.status).toBe(503);
  expect(down.body.reason).toBe(degraded.reason);
});

test("degraded: /metrics has the mode, the reason (escaped) and the marked packets", () => {
  const text = renderMetrics(snap());
  expect(text).toContain('indigo_agent_mode{mode="degraded"} 1');
  expect(text).toContain('indigo_agent_mode{mode="full"} 0');
  expect(text).toContain(
    'indigo_agent_degraded_info{reason="no kernel BTF (\\"/sys/kernel/btf/vmlinux\\" is missing)",cause="no-btf",backend="nftables"} 1',
  );
  expect(text).toContain("indigo_agent_degraded_packets_marked_total 9");
  expect(text).toContain("indigo_agent_engine_attached 0");
  const full = renderMetrics(snap({ mode: "full", degraded: undefined, engineAttached: true }));
  expect(full).toContain('indigo_agent_mode{mode="full"} 1');
  expect(full).not.toContain("indigo_agent_degraded_info");
});

test("degraded: AgentStatus says AGENT_MODE_DEGRADED with the reason", () => {
  const s = buildStatus(snap(), []);
  expect(s.mode).toBe(AgentMode.DEGRADED);
  expect(s.degradedReason).toBe(degraded.reason);
  const full = buildStatus(snap({ mode: "full", degraded: undefined }), []);
  expect(full.mode).toBe(AgentMode.FULL);
  expect(full.degradedReason).toBe("");
});
