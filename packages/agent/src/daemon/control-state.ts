// The control topic folded into the state this agent applies: the latest AgentControl under its own key,
// else the latest under "*" (own key wins, whole state — DESIGN.md "Event log"). A tombstone (null value)
// clears its key. Pure; control.ts does the Kafka and map sides.
import type { AgentControl, DyeRule } from "@indigo/proto";
import { EventClass } from "@indigo/proto";
import type { CohortRuleInput } from "../rules/types.ts";

export const ALL_AGENTS = "*";

export class ControlState {
  readonly agentId: string;
  #own: AgentControl | undefined;
  #all: AgentControl | undefined;

  constructor(agentId: string) {
    this.agentId = agentId;
  }

  /** Folds one message; true when it concerns this agent. */
  /** Whether messages under `key` are this agent's business (its own key or "*"). */
  concerns(key: string): boolean {
    return key === this.agentId || key === ALL_AGENTS;
  }

  fold(key: string, value: AgentControl | null): boolean {
    if (key === this.agentId) this.#own = value ?? undefined;
    else if (key === ALL_AGENTS) this.#all = value ?? undefined;
    else return false;
    return true;
  }

  /** The control that applies now (undefined: none published, keep the defaults). */
  get effective(): AgentControl | undefined {
    return this.#own ?? this.#all;
  }
}

/** A proto DyeRule → the rules-file shape compileRules takes. */
export const toRuleInput = (r: DyeRule): CohortRuleInput => {
  const m = r.cohort?.match;
  switch (m?.case) {
    case "traceIdPattern":
      return { dye: r.dye, traceIdPattern: m.value };
    case "header":
      return { dye: r.dye, header: { name: m.value.name, value: m.value.value } };
    case "sniSuffix":
      return { dye: r.dye, sni: m.value };
    case "percentBasisPoints":
      return { dye: r.dye, percent: m.value / 100 };
    case undefined:
      throw new Error(`rule for dye ${r.dye} (release ${r.releaseId || "?"}) has no cohort matcher`);
    default: {
      const never: never = m;
      throw new Error(`unknown cohort matcher ${String(never)}`);
    }
  }
};

export const SAMPLING_FULL = 1_000_000;
/** The kernel's sampling classes (the `sampling` map's keys) = EventClass values. */
export const SAMPLING_CLASSES = [EventClass.REQUEST, EventClass.RESPONSE, EventClass.CONNECTION] as const;

/** Per class, the rate to write: the control's, or every event where it says nothing. */
export const samplingRates = (c: AgentControl | undefined): Map<EventClass, number> => {
  const out = new Map<EventClass, number>(SAMPLING_CLASSES.map((k) => [k, SAMPLING_FULL]));
  for (const s of c?.sampling ?? []) {
    if (out.has(s.class)) out.set(s.class, Math.min(s.perMillion, SAMPLING_FULL));
  }
  return out;
};

/** dye → release id of the rules in force. */
export const releaseByDye = (c: AgentControl | undefined): Map<number, string> =>
  new Map((c?.rules ?? []).map((r) => [r.dye, r.releaseId]));
