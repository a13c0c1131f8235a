// The sampling controller: per agent and per event class (EventClass REQUEST, RESPONSE, CONNECTION), the share
// of ring-buffer events to keep, so that the ring never drops and the agent stays within an event budget.
// Counters (and so coverage) are exact whatever the rates; only events are sampled.
//
// Inputs, per agent, from two consecutive AgentStatus messages Δt apart (status time, not arrival time):
//   λ_c  = Δ class_<c>_wanted / Δt             offered rate of class c (before sampling; exact kernel counter)
//   K    = Σ_c Δ(class_<c>_wanted − class_<c>_sampled_out) / Δt   admitted: what the rates in force let in
//   d    = Σ_c Δ class_<c>_reserve_failed        ring-buffer drops (per class; the total when an agent is too
//                                               old to export per-class counters — see `observe`)
//   λ̂_c  = max(λ_c over the last H = 3 periods)   the demand the rates are set for (peak hold, see below)
// State: r_c (kept share per class, per million on the wire) and A, the agent's allowance (events/s, ≤ ρ·B with
// B the budget INDIGO_SAMPLING_BUDGET and ρ = 0.7 the setpoint).
//
// Control law, once per period:
//   1. allowance A (one ring buffer per agent, shared by every class, so drops are an agent-wide signal):
//        d > 0, K ≤ (1 + s)·A, no cut last period → A ← max(A_min, β·min(A, K − d/Δt))   the agent cannot
//                                                 drain A: multiplicative decrease from what it did drain
//        d > 0 otherwise          → A unchanged    the burst outran the rates in force (K > (1 + s)·A), or the
//                                                 period straddles the last cut; step 3 cuts (or has cut) it
//        d = 0                   → A ← min(ρ·B, α·A) multiplicative increase back to the setpoint
//   2. split A over classes by weighted max-min fairness (water-filling) on λ̂_c with weights w_c
//      (REQUEST 4, RESPONSE 2, CONNECTION 1): a class offering less than its weighted share keeps everything,
//      what it leaves is split again among the others; a_c is the class's allocation, t_c = min(1, a_c / λ̂_c).
//   3. per class: t_c < r_c → r_c ← t_c               down at once: cut in the first period that sees the burst
//                 t_c ≥ r_c → r_c ← min(t_c, α·r_c)   up multiplicatively, capped at the fair share
//      then r_c ← max(r_min, r_c)                      a floor: never blind on a class
//   (β = 1/2, α = 2, s = 0.1, H = 3, ρ = 0.7, r_min = 1 000 per million, A_min = r_min·ρ·B.)
//
// Why agent-wide decrease: every class reserves from the same ring, so a full ring fails whichever event comes
// next — per-class drops are proportional to each class's arrivals, not to who filled the ring. Cutting "the
// classes that dropped" would cut REQUEST for a CONNECTION burst. Instead the decrease lowers A and the
// water-filling takes the cut from the classes above their weighted share. Hence class isolation: a class whose
// λ_c is at most its weighted share of A keeps every event however hard another class bursts.
// Why two drop cases: drops in the period a burst starts are the burst itself (the old rates admitted far more
// than A), and so are drops in the period after a cut (the new rates reach the agent through Kafka some time
// into it, and the ring still holds the burst's backlog); cutting A then would halve the budget for nothing.
// Drops while admitting ≤ A under rates that held the whole period mean the agent (or its
// machine) cannot drain A events/s, and only a lower A helps; β = 1/2 below what was drained gives the ring
// room to empty. Increase by α = 2 bounds the climb to ⌈log2(1/r)⌉ periods (a 10× cut: 4) while any
// overshoot is at most twice the previous kept rate for one period.
// Why peak hold: rates set now apply to the next period, so they must fit the demand then, not the average of
// the last one. Real bursts (and the benchmark's) swing ±40 % from one period to the next; sizing for the last
// period alone let every upswing through above the budget. Following rises at once and falls only after H
// periods keeps a bursty class within its allocation, at the price of H − 1 periods of delay in the recovery:
// a 10× cut recovers in (H − 1) + 4 = 6 periods.
// Why a setpoint: the rates can only follow the demand a period late, and the peak hold covers swings seen
// before, not a new high. Steering to ρ·B = 0.7·B leaves room for the demand to grow by 1/ρ − 1 = 43 % past
// its recent peak before the kept rate exceeds B. A cut makes the demand grow: the agent's CPU falls with
// the events it keeps, and on a busy node the sampled traffic itself speeds up (the benchmark saw +20–30 %
// in the periods after the first cut, which took the kept rate past B with ρ = 0.8).
// Counter restarts (agent restarted, counters lower than before) count from zero: never a negative rate.
import { create, EventClass, type SamplingRate, SamplingRateSchema } from "@indigo/proto";

export const PER_MILLION = 1_000_000;

/** The kernel's sampling classes (the `sampling` map's keys), in the order rates are published. */
export const SAMPLING_CLASSES = [EventClass.REQUEST, EventClass.RESPONSE, EventClass.CONNECTION] as const;
export type SamplingClass = (typeof SAMPLING_CLASSES)[number];
export type PerClass<T> = Record<SamplingClass, T>;

/**
 * REQUEST events are the per-hop observations trace timelines and the audit view are built from; RESPONSE
 * events add the response leg and its status; CONNECTION events add handshake detail that the exact counters
 * already summarise. Under pressure the controller gives them up in the reverse order.
 */
export const DEFAULT_WEIGHTS: PerClass<number> = {
  [EventClass.REQUEST]: 4,
  [EventClass.RESPONSE]: 2,
  [EventClass.CONNECTION]: 1,
};

export interface SamplingOptions {
  /** B: events per second one agent may send, at most (INDIGO_SAMPLING_BUDGET, default 50 000). */
  readonly budgetPerS: number;
  /** r_min: the lowest rate the controller sets, per million (default 1 000 = 0.1 %). */
  readonly minPerMillion?: number;
  /** w_c: the water-filling weights (default DEFAULT_WEIGHTS). */
  readonly weights?: Partial<PerClass<number>>;
  /** β: the allowance's multiplicative decrease on drops within the allowance (default 0.5). */
  readonly decrease?: number;
  /** α: the multiplicative increase of the allowance and of each rate per clean period (default 2). */
  readonly increase?: number;
  /** s: admitted above (1 + s)·A when the ring dropped = the burst outran the rates in force (default 0.1). */
  readonly slack?: number;
  /** ρ: the share of the budget the controller steers to, the rest is headroom (default 0.7). */
  readonly setpoint?: number;
  /** H: the demand a class's rate is set for is its highest offered rate over the last H periods (default 3). */
  readonly hold?: number;
}

/** Cumulative kernel counters of one class (AgentStatus.counters `class_<c>_{wanted,sampled_out,reserve_failed}`). */
export interface ClassCounters {
  readonly wanted: bigint;
  readonly sampledOut: bigint;
  readonly reserveFailed: bigint;
}

export interface AgentObservation {
  readonly agentId: string;
  /** The status's own time (AgentStatus.time_unix_nano). */
  readonly at: Date;
  /** Per-class counters; undefined for an agent that does not export them (the totals below are used). */
  readonly classes?: PerClass<ClassCounters>;
  /** Events per second the agent received from the ring (after sampling and drops). Fallback only. */
  readonly eventRatePerS: number;
  /** Cumulative ring-buffer reserve failures, all classes. Fallback only. */
  readonly ringbufReserveFailures: bigint;
  /** The rates the agent says it applies, per million: the starting point when the controller is new. */
  readonly applied?: Partial<PerClass<number>>;
}

export type PeriodReason =
  /** first status of the agent: nothing to compare with, rates as the agent applies them */
  | "first"
  /** no drops, allowance at the budget */
  | "steady"
  /** no drops, allowance climbing back to the budget */
  | "recover"
  /** drops explained by a burst: the rates in force admitted more than the allowance, or were cut in the
   * previous period (the cut reached the agent during this one); the allocation cuts, A stays */
  | "burst"
  /** drops within the allowance: A decreased */
  | "drops";

/** What the controller saw and decided in one period (for the API's logs, tests and the benchmark). */
export interface SamplingPeriod {
  readonly at: Date;
  readonly reason: PeriodReason;
  readonly seconds: number;
  /** "class": from the per-class counters; "total": an older agent, one rate for all classes. */
  readonly source: "class" | "total";
  /** True when a counter went down (the agent restarted): deltas counted from zero. */
  readonly reset: boolean;
  readonly offeredPerS: PerClass<number>;
  /** λ̂_c: the demand the rates were set for (peak of the last H periods' offered rates). */
  readonly demandPerS: PerClass<number>;
  readonly dropped: PerClass<number>;
  readonly droppedTotal: number;
  readonly admittedPerS: number;
  /** A after this period (events/s). */
  readonly allowancePerS: number;
  /** a_c: the class's share of A (events/s). */
  readonly allocationPerS: PerClass<number>;
  readonly perMillion: PerClass<number>;
}

interface AgentState {
  atNs: bigint;
  classes: PerClass<ClassCounters> | undefined;
  failures: bigint;
  perMillion: PerClass<number>;
  allowance: number;
  /** the last step lowered some class's rate: the next period is a transition */
  cut: boolean;
  /** offered rates of the last H − 1 periods, newest last */
  history: PerClass<number>[];
  last: SamplingPeriod;
}

export const perClass = <T>(f: (c: SamplingClass) => T): PerClass<T> => ({
  [EventClass.REQUEST]: f(EventClass.REQUEST),
  [EventClass.RESPONSE]: f(EventClass.RESPONSE),
  [EventClass.CONNECTION]: f(EventClass.CONNECTION),
});

const sum = (x: PerClass<number>): number => SAMPLING_CLASSES.reduce((s, c) => s + x[c], 0);

/**
 * Weighted max-min fair split of `total` over demands: a class demanding less than its weighted share of what
 * is left gets its demand, the rest is split again among the others, until every remaining class demands more
 * than its share (each then gets its share). Classes demanding nothing get nothing.
 */
export function waterFill(
  total: number,
  demand: PerClass<number>,
  weights: PerClass<number>,
): PerClass<number> {
  const out = perClass(() => 0);
  let left = Math.max(0, total);
  let active: SamplingClass[] = SAMPLING_CLASSES.filter((c) => demand[c] > 0);
  while (active.length > 0) {
    const w = active.reduce((s, c) => s + weights[c], 0);
    const satisfied = active.filter((c) => demand[c] <= (left * weights[c]) / w);
    if (satisfied.length === 0) {
      for (const c of active) out[c] = (left * weights[c]) / w;
      break;
    }
    for (const c of satisfied) {
      out[c] = demand[c];
      left -= demand[c];
    }
    active = active.filter((c) => !satisfied.includes(c));
  }
  return out;
}

/** cur − prev of a cumulative counter; a restart (cur < prev) counts from zero, so never negative. */
const delta = (cur: bigint, prev: bigint, reset: boolean): number => Number(reset ? cur : cur - prev);

export class SamplingController {
  private readonly agents = new Map<string, AgentState>();
  /** ρ·B, the allowance's ceiling */
  private readonly setpointPerS: number;
  private readonly min: number;
  private readonly weights: PerClass<number>;
  private readonly beta: number;
  private readonly alpha: number;
  private readonly slack: number;
  private readonly hold: number;

  constructor(options: SamplingOptions) {
    if (!(options.budgetPerS > 0))
      throw new Error(`sampling budget must be > 0 events/s, got ${options.budgetPerS}`);
    // The controller steers to the setpoint ρ·B, not to B: see "Why a setpoint" above.
    this.setpointPerS = options.budgetPerS * Math.min(1, Math.max(0.1, options.setpoint ?? 0.7));
    this.min = Math.min(PER_MILLION, Math.max(1, Math.floor(options.minPerMillion ?? 1_000)));
    this.weights = perClass((c) => Math.max(Number.EPSILON, options.weights?.[c] ?? DEFAULT_WEIGHTS[c]));
    this.beta = options.decrease ?? 0.5;
    this.alpha = options.increase ?? 2;
    this.slack = options.slack ?? 0.1;
    this.hold = Math.max(1, Math.floor(options.hold ?? 3));
  }

  /** Applies one status; returns the agent's new per-class rates (per million). Older statuses change nothing. */
  observe(o: AgentObservation): PerClass<number> {
    const atNs = BigInt(o.at.getTime()) * 1_000_000n;
    const prev = this.agents.get(o.agentId);
    if (!prev) {
      const perMillion = perClass((c) => this.clamp(o.applied?.[c] ?? PER_MILLION));
      const zero = perClass(() => 0);
      this.agents.set(o.agentId, {
        atNs,
        classes: o.classes,
        failures: o.ringbufReserveFailures,
        perMillion,
        allowance: this.setpointPerS,
        cut: false,
        history: [],
        last: {
          at: o.at,
          reason: "first",
          seconds: 0,
          source: o.classes ? "class" : "total",
          reset: false,
          offeredPerS: zero,
          demandPerS: zero,
          dropped: zero,
          droppedTotal: 0,
          admittedPerS: o.eventRatePerS,
          allowancePerS: this.setpointPerS,
          allocationPerS: zero,
          perMillion,
        },
      });
      return perMillion;
    }
    // Not newer than the last one (redelivered, reordered, or the same row read again): nothing changes.
    if (atNs <= prev.atNs) return prev.perMillion;
    const dt = Number(atNs - prev.atNs) / 1e9;

    // Offered rates, admitted rate and drops: from the per-class counters when both statuses have them.
    let offered: PerClass<number>;
    let dropped: PerClass<number>;
    let droppedTotal: number;
    let admitted: number;
    let reset: boolean;
    const source = o.classes && prev.classes ? "class" : "total";
    if (o.classes && prev.classes) {
      const cur = o.classes;
      const old = prev.classes;
      // All counters restart together (one map), so one decreasing counter means all count from zero.
      reset = SAMPLING_CLASSES.some(
        (c) =>
          cur[c].wanted < old[c].wanted ||
          cur[c].sampledOut < old[c].sampledOut ||
          cur[c].reserveFailed < old[c].reserveFailed,
      );
      offered = perClass((c) => delta(cur[c].wanted, old[c].wanted, reset) / dt);
      dropped = perClass((c) => delta(cur[c].reserveFailed, old[c].reserveFailed, reset));
      droppedTotal = sum(dropped);
      admitted =
        SAMPLING_CLASSES.reduce(
          (s, c) =>
            s +
            Math.max(
              0,
              delta(cur[c].wanted, old[c].wanted, reset) - delta(cur[c].sampledOut, old[c].sampledOut, reset),
            ),
          0,
        ) / dt;
    } else {
      // An agent without per-class counters: only totals. Received ≈ what entered the ring; the offered rate
      // is that plus the drops, scaled back by the rate in force (one rate for all classes in this mode).
      reset = o.ringbufReserveFailures < prev.failures;
      droppedTotal = delta(o.ringbufReserveFailures, prev.failures, reset);
      admitted = Math.max(0, o.eventRatePerS) + droppedTotal / dt;
      const kept = Math.max(...SAMPLING_CLASSES.map((c) => prev.perMillion[c])) / PER_MILLION;
      const total = admitted / kept;
      // Spread over the classes only for the report; the allocation below treats them as one.
      offered = perClass((c) => (c === EventClass.REQUEST ? total : 0));
      dropped = perClass((c) => (c === EventClass.REQUEST ? droppedTotal : 0));
    }

    // 1. The allowance.
    let allowance = prev.allowance;
    let reason: PeriodReason;
    if (droppedTotal > 0 && !prev.cut && admitted <= (1 + this.slack) * allowance) {
      const drained = Math.max(0, admitted - droppedTotal / dt);
      allowance = Math.max(
        (this.setpointPerS * this.min) / PER_MILLION,
        this.beta * Math.min(allowance, drained),
      );
      reason = "drops";
    } else if (droppedTotal > 0) {
      reason = "burst";
    } else {
      allowance = Math.min(this.setpointPerS, this.alpha * allowance);
      reason = allowance < this.setpointPerS ? "recover" : "steady";
    }

    // 2. The split (on the held peak demand). 3. The per-class step.
    // A history from the other source (an agent upgraded to per-class counters) holds totals: not comparable.
    const history = prev.last.source === source ? prev.history : [];
    const held = perClass((c) => Math.max(offered[c], ...history.map((h) => h[c])));
    const allocation =
      source === "class"
        ? waterFill(allowance, held, this.weights)
        : perClass(() => Math.min(allowance, held[EventClass.REQUEST]));
    const demand = source === "class" ? held : perClass(() => held[EventClass.REQUEST]);
    const perMillion = perClass((c) => {
      const target =
        demand[c] > 0 ? Math.min(PER_MILLION, (allocation[c] / demand[c]) * PER_MILLION) : PER_MILLION;
      const r = prev.perMillion[c];
      return this.clamp(target < r ? target : Math.min(target, this.alpha * r));
    });
    const period: SamplingPeriod = {
      at: o.at,
      reason,
      seconds: dt,
      source,
      reset,
      offeredPerS: offered,
      demandPerS: demand,
      dropped,
      droppedTotal,
      admittedPerS: admitted,
      allowancePerS: allowance,
      allocationPerS: allocation,
      perMillion,
    };
    this.agents.set(o.agentId, {
      atNs,
      classes: o.classes,
      failures: o.ringbufReserveFailures,
      perMillion,
      allowance,
      cut: SAMPLING_CLASSES.some((c) => perMillion[c] < prev.perMillion[c]),
      history: this.hold > 1 ? [...history, offered].slice(-(this.hold - 1)) : [],
      last: period,
    });
    return perMillion;
  }

  private clamp(perMillion: number): number {
    return Math.max(this.min, Math.min(PER_MILLION, Math.floor(perMillion)));
  }

  /** The agent's current per-class rates (every event for an agent the controller does not know). */
  rate(agentId: string): PerClass<number> {
    return this.agents.get(agentId)?.perMillion ?? perClass(() => PER_MILLION);
  }

  /** What the controller saw and decided for the agent's last status. */
  lastPeriod(agentId: string): SamplingPeriod | undefined {
    return this.agents.get(agentId)?.last;
  }

  /** The SamplingRate list (one per class) of every agent the controller knows. */
  rates(): Map<string, SamplingRate[]> {
    const out = new Map<string, SamplingRate[]>();
    for (const [agentId, s] of this.agents) out.set(agentId, samplingRates(s.perMillion));
    return out;
  }
}

export function samplingRates(perMillion: PerClass<number>): SamplingRate[] {
  return SAMPLING_CLASSES.map((cls) =>
    create(SamplingRateSchema, { class: cls, perMillion: perMillion[cls] }),
  );
}
