// The agents and the releases seen from /metrics, for alerts that need the central view: an agent that went
// quiet (its own /metrics is gone with it), two agents under one id (only the projector sees both), releases
// by state, and the rollbacks the analysis made.
import { type Database, schema } from "@indigo/db";
import { and, count, eq, sql } from "drizzle-orm";
import { agentCondition } from "./agent-condition.ts";
import { rulesChangedAt } from "./rules-changed.ts";

const STATES = ["draft", "running", "paused", "promoted", "rolled_back"] as const;

/** Prometheus text; nothing when Postgres does not answer (/healthz says why). */
export async function renderFleetMetrics(db: Database, agentStaleMs: number): Promise<string> {
  try {
    const a = schema.agents;
    const r = schema.releases;
    const e = schema.releaseEvents;
    const [agents, releases, [automatic], changedAt] = await Promise.all([
      db
        .select({
          mode: a.mode,
          lastSeenAt: a.lastSeenAt,
          idConflict: a.idConflict,
          idConflictAt: a.idConflictAt,
          generation: sql<string | null>`${a.status} ->> 'appliedControlGeneration'`,
          stopped: sql<boolean>`coalesce((${a.status} ->> 'stopped')::boolean, false)`,
        })
        .from(a),
      db.select({ state: r.state, n: count() }).from(r).groupBy(r.state),
      db
        .select({ n: count() })
        .from(e)
        .where(
          and(
            eq(e.kind, "rolledBack"),
            sql`coalesce((${e.data} -> 'rolledBack' ->> 'automatic')::boolean, false)`,
          ),
        ),
      rulesChangedAt(db),
    ]);
    const now = Date.now();
    const by = { reporting: 0, stale: 0, stopped: 0, degraded: 0, id_conflict: 0, rules_behind: 0 };
    for (const row of agents) {
      const c = agentCondition(
        { ...row, appliedGeneration: BigInt(row.generation ?? 0) },
        now,
        agentStaleMs,
        changedAt,
      );
      if (c.stale) by.stale++;
      else if (c.stopped) by.stopped++;
      else by.reporting++;
      if (c.degraded) by.degraded++;
      if (c.idConflict) by.id_conflict++;
      if (c.rulesBehind) by.rules_behind++;
    }
    const states = new Map(releases.map((x) => [x.state, x.n]));
    return [
      "# HELP indigo_agents Agents the projector knows: reporting, stale (not heard from within INDIGO_AGENT_STALE_MS, without saying it stopped) or stopped (its last status said it stopped cleanly), and of them degraded, with an id conflict (two agents under one id, or a lost sequence), or with rules behind (a status sent more than 5 s after the rules last changed still showed older rules).",
      "# TYPE indigo_agents gauge",
      ...Object.entries(by).map(([k, v]) => `indigo_agents{condition="${k}"} ${v}`),
      "# HELP indigo_releases Releases by state.",
      "# TYPE indigo_releases gauge",
      ...STATES.map((s) => `indigo_releases{state="${s}"} ${states.get(s) ?? 0}`),
      "# HELP indigo_releases_rolled_back_automatically_total Releases the analysis rolled back.",
      "# TYPE indigo_releases_rolled_back_automatically_total counter",
      `indigo_releases_rolled_back_automatically_total ${automatic?.n ?? 0}`,
      "",
    ].join("\n");
  } catch {
    return "";
  }
}
