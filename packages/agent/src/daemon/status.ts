// DaemonSnapshot → AgentStatus (indigo.agent.v1): mode, kernel, programs, exact counters, losses, rates.
import { release } from "node:os";
import { AgentMode, type AgentStatus, AgentStatusSchema, create } from "@indigo/proto";
import pkg from "../../package.json" with { type: "json" };
import type { ProgramStats } from "./programs.ts";
import type { DaemonSnapshot } from "./snapshot.ts";

export const AGENT_VERSION: string = pkg.version;

export const buildStatus = (s: DaemonSnapshot, programs: readonly ProgramStats[]): AgentStatus =>
  create(AgentStatusSchema, {
    agentId: s.agentId,
    node: s.node,
    timeUnixNano: BigInt(Date.now()) * 1_000_000n,
    mode: s.mode === "degraded" ? AgentMode.DEGRADED : AgentMode.FULL,
    degradedReason: s.degraded?.reason ?? "",
    kernelVersion: release(),
    agentVersion: AGENT_VERSION,
    programs: programs.map((p) => ({
      name: p.name,
      tag: p.tag,
      id: p.id,
      runCount: p.runCount,
      runTimeNs: p.runTimeNs,
    })),
    counters: Object.fromEntries(Object.entries(s.counters)),
    ringbufReserveFailures: s.counters.ringbuf_reserve_failed ?? 0n,
    spoolDroppedEvents: BigInt(s.spoolDroppedEvents),
    spooledEvents: BigInt(s.spooledEvents),
    lastSeq: s.lastProducedSeq,
    eventRatePerS: s.eventRatePerS,
    sampling: [...s.sampling].map(([cls, perMillion]) => ({ class: cls, perMillion })),
    appliedControlGeneration: s.appliedGeneration,
    stopped: s.stopped,
  });
