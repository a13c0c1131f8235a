// What the API says about an agent from its projected row, in one place for /v1/agents and /metrics.

/** An id conflict is shown this long after the projector last saw the agent's last_seq go back: two agents
 * under one id keep re-marking it; a mark older than this has stopped (the ids were fixed). */
export const ID_CONFLICT_SHOWN_MS = 10 * 60_000;

export interface AgentRow {
  readonly mode: string;
  readonly lastSeenAt: Date;
  readonly idConflict: string;
  readonly idConflictAt: Date | null;
}

export interface AgentCondition {
  /** not heard from for longer than the stale time: that node dyes and reports nothing */
  readonly stale: boolean;
  readonly degraded: boolean;
  /** the conflict, or "" */
  readonly idConflict: string;
}

export function agentCondition(r: AgentRow, now: number, staleMs: number): AgentCondition {
  return {
    stale: now - r.lastSeenAt.getTime() > staleMs,
    degraded: r.mode === "degraded",
    idConflict: r.idConflictAt && now - r.idConflictAt.getTime() <= ID_CONFLICT_SHOWN_MS ? r.idConflict : "",
  };
}
