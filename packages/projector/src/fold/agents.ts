// The latest status of each agent. A status older than the stored one (redelivered or reordered) changes nothing.
import { type Database, schema } from "@indigo/db";
import { AgentMode, type AgentStatus, AgentStatusSchema, toJson } from "@indigo/proto";
import { sql } from "drizzle-orm";

type Tx = Parameters<Parameters<Database["transaction"]>[0]>[0];

const MODE_NAMES: Record<AgentMode, string> = {
  [AgentMode.UNSPECIFIED]: "unknown",
  [AgentMode.FULL]: "full",
  [AgentMode.DEGRADED]: "degraded",
};

export async function applyAgentStatus(tx: Tx, status: AgentStatus): Promise<void> {
  const a = schema.agents;
  const row = {
    agentId: status.agentId,
    node: status.node,
    mode: MODE_NAMES[status.mode] ?? "unknown",
    degradedReason: status.degradedReason,
    kernelVersion: status.kernelVersion,
    lastSeq: status.lastSeq,
    status: toJson(AgentStatusSchema, status),
    lastSeenAt: new Date(Number(status.timeUnixNano / 1_000_000n)),
  };
  await tx
    .insert(a)
    .values(row)
    .onConflictDoUpdate({
      target: a.agentId,
      set: row,
      setWhere: sql`${a.lastSeenAt} <= excluded.last_seen_at`,
    });
}
