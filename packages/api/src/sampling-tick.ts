// One control period of the sampling controller (sampling.ts) against the world: every agent's latest
// AgentStatus from the `agents` projection, turned into what the controller reads (per-class kernel counters,
// or totals from an older agent), and a publish of the control topic when any agent's rates changed.
import { type Database, schema } from "@indigo/db";
import { type AgentStatus, AgentStatusSchema, EventClass, fromJson, type JsonValue } from "@indigo/proto";
import {
  type AgentObservation,
  type ClassCounters,
  type PerClass,
  perClass,
  SAMPLING_CLASSES,
  type SamplingClass,
  type SamplingController,
} from "./sampling.ts";

/** class → the name it has in the kernel's counters (`class_<name>_wanted`, …; bpf/dye_counters.h). */
const COUNTER_NAME: PerClass<string> = {
  [EventClass.REQUEST]: "request",
  [EventClass.RESPONSE]: "response",
  [EventClass.CONNECTION]: "connection",
};

/** An AgentStatus → what the controller needs from it. */
export function observationOf(s: AgentStatus): AgentObservation {
  const counter = (name: string): bigint | undefined => s.counters[name];
  const complete = SAMPLING_CLASSES.every((c) => counter(`class_${COUNTER_NAME[c]}_wanted`) !== undefined);
  const classes = complete
    ? perClass(
        (c): ClassCounters => ({
          wanted: counter(`class_${COUNTER_NAME[c]}_wanted`) ?? 0n,
          sampledOut: counter(`class_${COUNTER_NAME[c]}_sampled_out`) ?? 0n,
          reserveFailed: counter(`class_${COUNTER_NAME[c]}_reserve_failed`) ?? 0n,
        }),
      )
    : undefined;
  const applied: Partial<PerClass<number>> = {};
  for (const r of s.sampling) {
    if ((SAMPLING_CLASSES as readonly EventClass[]).includes(r.class))
      applied[r.class as SamplingClass] = r.perMillion;
  }
  return {
    agentId: s.agentId,
    at: new Date(Number(s.timeUnixNano / 1_000_000n)),
    ...(classes ? { classes } : {}),
    eventRatePerS: s.eventRatePerS,
    ringbufReserveFailures: s.ringbufReserveFailures,
    applied,
  };
}

const samePerClass = (a: PerClass<number>, b: PerClass<number>): boolean =>
  SAMPLING_CLASSES.every((c) => a[c] === b[c]);

/**
 * One control period: feeds every agent's latest status (the `agents` projection, the AgentStatus as proto
 * JSON) to the controller and calls `publish` when any agent's rates changed. A row that does not parse is
 * skipped, so one bad agent does not stop the control of the others.
 */
export async function samplingTick(
  db: Database,
  controller: SamplingController,
  publish: () => Promise<void>,
): Promise<boolean> {
  const rows = await db.select().from(schema.agents);
  let changed = false;
  for (const row of rows) {
    let status: AgentStatus;
    try {
      status = fromJson(AgentStatusSchema, row.status as JsonValue, { ignoreUnknownFields: true });
    } catch {
      continue;
    }
    const before = controller.rate(row.agentId);
    const after = controller.observe({ ...observationOf(status), agentId: row.agentId });
    if (!samePerClass(before, after)) changed = true;
  }
  if (changed) await publish();
  return changed;
}
