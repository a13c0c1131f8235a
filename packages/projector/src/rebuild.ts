// `projector rebuild`: drop every projection and the group's stored offsets, then replay the topics from the
// beginning. Refuses while another member of the group is consuming: it would keep writing meanwhile.
import type { Admin } from "@indigo/bus";
import { type Database, schema } from "@indigo/db";
import { eq, sql } from "drizzle-orm";

const PROJECTIONS = [
  schema.releases,
  schema.releaseEvents,
  schema.agents,
  schema.coverage,
  schema.coverageTotals,
  schema.cohortTraces,
  schema.undyedHopRequests,
  schema.traceHops,
  schema.agentSeqRanges,
  schema.agentDelivery,
];

export async function assertGroupIdle(admin: Admin, group: string): Promise<void> {
  const { groups } = await admin.describeGroups([group]);
  const members = groups[0]?.members.length ?? 0;
  if (members > 0)
    throw new Error(`consumer group ${group} has ${members} active member(s): stop the projector first`);
}

export async function dropProjections(db: Database, group: string): Promise<void> {
  await db.transaction(async (tx) => {
    for (const table of PROJECTIONS) await tx.execute(sql`truncate table ${table}`);
    await tx.delete(schema.consumerOffsets).where(eq(schema.consumerOffsets.consumerGroup, group));
    await tx.delete(schema.projectorCounters).where(eq(schema.projectorCounters.consumerGroup, group));
  });
}
