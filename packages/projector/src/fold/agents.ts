// The latest status of each agent. A status older than the stored one (redelivered or reordered) changes nothing.
// A newer one whose last_seq went back marks the agent id as shared or restarted (idConflict).
import { type Database, schema } from "@indigo/db";
import { AgentMode, type AgentStatus, AgentStatusSchema, toJson } from "@indigo/proto";
import { eq, sql } from "drizzle-orm";

type Tx = Parameters<Parameters<Database["transaction"]>[0]>[0];

const MODE_NAMES: Record<AgentMode, string> = {
  [AgentMode.UNSPECIFIED]: "unknown",
  [AgentMode.FULL]: "full",
  [AgentMode.DEGRADED]: "degraded",
};

interface Stored {
  readonly node: string;
  readonly lastSeq: bigint;
  readonly lastSeenAt: Date;
}

/**
 * Pure: why `status` cannot come from the agent that sent the stored one, or undefined. One agent's last_seq
 * never goes back, across restarts (its seq-store); it does when two agents report under one id (a cloned
 * hostname, a templated --agent-id), or when an agent's sequence restarted (its spool folder's next-seq was
 * lost). Either way the projector skips events whose (agent, seq) it applied before, as duplicates, so this
 * is data going missing. 0 is "nothing shipped" (degraded mode), not a position.
 */
export function idConflict(stored: Stored | undefined, status: AgentStatus): string | undefined {
  if (!stored || status.lastSeq === 0n || stored.lastSeq === 0n) return undefined;
  if (status.timeUnixNano / 1_000_000n <= BigInt(stored.lastSeenAt.getTime())) return undefined;
  if (status.lastSeq >= stored.lastSeq) return undefined;
  return (
    `last_seq went back from ${stored.lastSeq} (node ${stored.node}) to ${status.lastSeq} (node ${status.node}): ` +
    "two agents report under this id, or this agent's sequence restarted (the next-seq file in its spool " +
    "folder was lost); events whose (agent, seq) was applied before are skipped as duplicates"
  );
}

export async function applyAgentStatus(tx: Tx, status: AgentStatus): Promise<void> {
  const a = schema.agents;
  const [stored] = await tx
    .select({ node: a.node, lastSeq: a.lastSeq, lastSeenAt: a.lastSeenAt })
    .from(a)
    .where(eq(a.agentId, status.agentId));
  const conflict = idConflict(stored, status);
  const row = {
    agentId: status.agentId,
    node: status.node,
    mode: MODE_NAMES[status.mode] ?? "unknown",
    degradedReason: status.degradedReason,
    kernelVersion: status.kernelVersion,
    lastSeq: status.lastSeq,
    status: toJson(AgentStatusSchema, status),
    lastSeenAt: new Date(Number(status.timeUnixNano / 1_000_000n)),
    ...(conflict
      ? { idConflict: conflict, idConflictAt: new Date(Number(status.timeUnixNano / 1_000_000n)) }
      : {}),
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
