// Degraded mode: the agent without eBPF. It stays up, marks what L3/L4 rules can express through netfilter
// (conntrack + packet mark under the engine's mark base/mask), and says so: its status is always
// `mode: "degraded"` with the reason, per-rule packet counts from netfilter's own counters, and no coverage
// figure at all — a netfilter mark knows nothing of requests, cohorts or hops.
//
// For the daemon: `startOrDegrade(engineOptions, l4Rules)` gives either the running Engine or a degraded
// handle; `degradedStatus()` is the status of the running degraded handle (undefined when there is none),
// shaped for /healthz, /metrics and AgentStatus.

import { bpfObjectPath } from "../bpf-objects.ts";
import { defaultDyeConfig } from "../engine/dye-config.ts";
import { Engine, type EngineOptions } from "../engine/engine.ts";
import { type Cause, classifyEngineError } from "./classify.ts";
import type { L4Rule } from "./l4-rules.ts";
import { type Backend, type MarkSpec, markOf, type NetfilterBackend, pickBackend } from "./netfilter.ts";

export interface DegradedRuleStatus extends L4Rule {
  mark: number;
  /** packets this rule marked, as netfilter counted them (every hook it ran in) */
  packets: number;
}

export interface DegradedStatus {
  mode: "degraded";
  reason: string;
  cause: Cause;
  backend: Backend;
  since: string;
  rules: DegradedRuleStatus[];
  /** sum of every rule's packets and of the packets whose mark was restored from conntrack */
  packetsMarked: number;
  packetsRestored: number;
  /** never a number: degraded mode cannot observe requests, so it claims no coverage */
  coverage: null;
  /** cohort rules (trace id, header, SNI, percent) have no netfilter form and are not applied */
  unsupported: string;
}

export interface DegradedOptions extends Partial<MarkSpec> {
  backend?: Backend;
  cause?: Cause;
  /** a netfilter backend of your own (tests) */
  netfilter?: NetfilterBackend;
}

export interface DegradedHandle {
  status(): DegradedStatus;
  stop(): void;
}

let active: DegradedHandle | undefined;

/** The running degraded handle's status, or undefined when the agent is not degraded. */
export const degradedStatus = (): DegradedStatus | undefined => active?.status();

export const startDegraded = (
  reason: string,
  rules: readonly L4Rule[],
  opts: DegradedOptions = {},
): DegradedHandle => {
  const defaults = defaultDyeConfig();
  const mark: MarkSpec = {
    markBase: opts.markBase ?? defaults.markBase,
    markMask: opts.markMask ?? defaults.markMask,
  };
  for (const [i, r] of rules.entries()) {
    if ((r.dye & mark.markMask) === 0) {
      throw new Error(
        `L4 rule ${i}: dye ${r.dye} has no bits under the mark mask 0x${mark.markMask.toString(16)}`,
      );
    }
  }
  const nf = opts.netfilter ?? pickBackend(opts.backend);
  nf.apply(rules, mark);
  const since = new Date().toISOString();
  let stopped = false;
  const handle: DegradedHandle = {
    status: () => {
      const counts = stopped ? { perRule: [], restored: 0 } : nf.counts();
      const per = new Map(counts.perRule.map((c) => [c.rule, c.packets]));
      const ruleStatus = rules.map((r, i) => ({ ...r, mark: markOf(mark, r.dye), packets: per.get(i) ?? 0 }));
      return {
        mode: "degraded",
        reason,
        cause: opts.cause ?? "other",
        backend: nf.backend,
        since,
        rules: ruleStatus,
        packetsMarked: ruleStatus.reduce((n, r) => n + r.packets, 0) + counts.restored,
        packetsRestored: counts.restored,
        coverage: null,
        unsupported: "payload, SNI, TCP-option and inherited dyes need eBPF; only L3/L4 rules are marked",
      };
    },
    stop: () => {
      if (stopped) return;
      stopped = true;
      nf.remove();
      if (active === handle) active = undefined;
    },
  };
  active = handle;
  return handle;
};

export type Started = { mode: "ebpf"; engine: Engine } | { mode: "degraded"; handle: DegradedHandle };

/**
 * Starts the engine; when it cannot start, classifies why and starts degraded mode with `l4Rules` instead.
 * Never throws for an engine failure (only when degraded mode itself cannot start).
 */
export const startOrDegrade = (
  engineOptions: EngineOptions,
  l4Rules: readonly L4Rule[],
  opts: DegradedOptions = {},
): Started => {
  try {
    return { mode: "ebpf", engine: Engine.start(engineOptions) };
  } catch (e) {
    const { cause, reason } = classifyEngineError(e, {
      objectPath: engineOptions.objectPath ?? bpfObjectPath("indigo"),
    });
    const config = { ...defaultDyeConfig(), ...engineOptions.config };
    return {
      mode: "degraded",
      handle: startDegraded(reason, l4Rules, {
        markBase: config.markBase,
        markMask: config.markMask,
        cause,
        ...opts,
      }),
    };
  }
};
