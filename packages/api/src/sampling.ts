// The sampling controller: per agent, the share of ring-buffer events to keep, so that drops stay at zero
// within an event budget. Counters (and so coverage) are exact whatever the rate; only events are sampled.
//
// Control law, once per AgentStatus (every few seconds), with r the kept share (1 = every event),
// λ the agent's observed event rate (events/s before sampling), B the budget (events/s per agent) and
// d the ring-buffer reserve failures since the previous status:
//   target = min(1, B / λ)                         what fits the budget
//   d > 0        → r ← max(r_min, min(r / 2, target))   multiplicative decrease, at once below the budget
//   d = 0, r < target → r ← min(target, 2 r)         multiplicative increase: recovery within log2 periods
//   d = 0, r ≥ target → r ← target                   follow the budget down without waiting for drops
// A 10× burst is cut to the budget in the first period (target), and halved again while drops persist.
// The rate applies to every event class alike (EventClass REQUEST, RESPONSE, CONNECTION).
import { type Database, schema } from "@indigo/db";
import { create, EventClass, type SamplingRate, SamplingRateSchema } from "@indigo/proto";

export const PER_MILLION = 1_000_000;

export interface SamplingOptions {
  /** Events per second one agent may send (INDIGO_SAMPLING_BUDGET, default 50 000). */
  readonly budgetPerS: number;
  /** The lowest rate the controller sets, per million (default 1 000 = 0.1 %). */
  readonly minPerMillion?: number;
}

export interface AgentObservation {
  readonly agentId: string;
  readonly eventRatePerS: number;
  /** Cumulative ring-buffer reserve failures reported by the agent. */
  readonly ringbufReserveFailures: bigint;
  readonly at: Date;
}

interface AgentState {
  perMillion: number;
  failures: bigint;
  at: number;
}

export class SamplingController {
  private readonly agents = new Map<string, AgentState>();
  private readonly min: number;

  constructor(private readonly options: SamplingOptions) {
    this.min = options.minPerMillion ?? 1_000;
  }

  /** Applies one status; returns the agent's new rate (per million). Older statuses change nothing. */
  observe(o: AgentObservation): number {
    const prev = this.agents.get(o.agentId);
    if (prev && o.at.getTime() <= prev.at) return prev.perMillion;
    const rate = prev?.perMillion ?? PER_MILLION;
    const drops =
      prev === undefined
        ? 0n
        : o.ringbufReserveFailures >= prev.failures
          ? o.ringbufReserveFailures - prev.failures
          : o.ringbufReserveFailures;
    const target =
      o.eventRatePerS > 0
        ? Math.min(PER_MILLION, Math.floor((this.options.budgetPerS / o.eventRatePerS) * PER_MILLION))
        : PER_MILLION;
    let next: number;
    if (drops > 0n) next = Math.min(Math.floor(rate / 2), target);
    else if (rate < target) next = Math.min(target, rate * 2);
    else next = target;
    next = Math.max(this.min, Math.min(PER_MILLION, next));
    this.agents.set(o.agentId, { perMillion: next, failures: o.ringbufReserveFailures, at: o.at.getTime() });
    return next;
  }

  rate(agentId: string): number {
    return this.agents.get(agentId)?.perMillion ?? PER_MILLION;
  }

  /** The SamplingRate list of every agent the controller knows. */
  rates(): Map<string, SamplingRate[]> {
    const out = new Map<string, SamplingRate[]>();
    for (const [agentId, s] of this.agents) out.set(agentId, samplingRates(s.perMillion));
    return out;
  }
}

export function samplingRates(perMillion: number): SamplingRate[] {
  return [EventClass.REQUEST, EventClass.RESPONSE, EventClass.CONNECTION].map((cls) =>
    create(SamplingRateSchema, { class: cls, perMillion }),
  );
}

interface StatusJson {
  eventRatePerS?: number;
  ringbufReserveFailures?: string | number;
}

/**
 * One control period: feeds every agent's latest status (the `agents` projection) to the controller and
 * calls `publish` when any agent's rate changed.
 */
export async function samplingTick(
  db: Database,
  controller: SamplingController,
  publish: () => Promise<void>,
): Promise<boolean> {
  const rows = await db.select().from(schema.agents);
  let changed = false;
  for (const row of rows) {
    const s = row.status as StatusJson;
    const before = controller.rate(row.agentId);
    const after = controller.observe({
      agentId: row.agentId,
      eventRatePerS: Number(s.eventRatePerS ?? 0),
      ringbufReserveFailures: BigInt(s.ringbufReserveFailures ?? 0),
      at: row.lastSeenAt,
    });
    if (after !== before) changed = true;
  }
  if (changed) await publish();
  return changed;
}
