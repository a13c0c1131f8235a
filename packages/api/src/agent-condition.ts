// What the API says about an agent from its projected row, in one place for /v1/agents and /metrics.

/** An id conflict is shown this long after the projector last saw the agent's last_seq go back: two agents
 * under one id keep re-marking it; a mark older than this has stopped (the ids were fixed). */
export const ID_CONFLICT_SHOWN_MS = 10 * 60_000;

/** A status this long after the fleet's rules last changed must show them applied: an agent applies a
 * publication within about a second, and reports every 5 s. */
export const RULES_APPLY_GRACE_MS = 5_000;

export interface AgentRow {
  readonly mode: string;
  /** the time of its last status */
  readonly lastSeenAt: Date;
  readonly idConflict: string;
  readonly idConflictAt: Date | null;
  /** AgentStatus.applied_control_generation: the publication in force, µs since the epoch (0: none) */
  readonly appliedGeneration: bigint;
  /** AgentStatus.stopped of its last status: it stopped cleanly, its events handed over */
  readonly stopped: boolean;
}

export interface AgentCondition {
  /** not heard from for longer than the stale time, without saying it stopped: that node dyes and reports
   * nothing, and its events since may be missing */
  readonly stale: boolean;
  /** its last status said it stopped cleanly (SIGTERM: a node drained, scaled in, an upgrade), none since */
  readonly stopped: boolean;
  readonly degraded: boolean;
  /** the conflict, or "" */
  readonly idConflict: string;
  /** it reported, well after the rules last changed, rules published before that change: that node dyes by
   * rules no longer in force (a release stopped there still dyes, one started does not) */
  readonly rulesBehind: boolean;
}

/** A generation (publication time in µs, see control.ts) as a time; null for none. */
export const generationTime = (generation: bigint): Date | null =>
  generation > 0n ? new Date(Number(generation / 1000n)) : null;

/** `rulesChangedAt`: the last start, pause, resume, step or end of any release (null: none ever ran). */
export function agentCondition(
  r: AgentRow,
  now: number,
  staleMs: number,
  rulesChangedAt: Date | null,
): AgentCondition {
  const changed = rulesChangedAt?.getTime();
  return {
    stale: !r.stopped && now - r.lastSeenAt.getTime() > staleMs,
    stopped: r.stopped,
    degraded: r.mode === "degraded",
    idConflict: r.idConflictAt && now - r.idConflictAt.getTime() <= ID_CONFLICT_SHOWN_MS ? r.idConflict : "",
    rulesBehind:
      changed !== undefined &&
      // a degraded agent applies no control (its netfilter marks follow its own L3/L4 rules): it is degraded
      r.mode !== "degraded" &&
      // a stopped one dyes nothing
      !r.stopped &&
      r.lastSeenAt.getTime() > changed + RULES_APPLY_GRACE_MS &&
      (generationTime(r.appliedGeneration)?.getTime() ?? 0) < changed,
  };
}
