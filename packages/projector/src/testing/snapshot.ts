// Every projection table of a database, in a fixed order, for comparing two projections of the same log.
import { type Database, schema } from "@indigo/db";
import { asc } from "drizzle-orm";

export async function snapshot(db: Database) {
  const c = schema.coverage;
  const d = schema.agentDelivery;
  return {
    coverage: await db
      .select()
      .from(c)
      .orderBy(asc(c.releaseId), asc(c.caller), asc(c.callee), asc(c.bucketStart), asc(c.source)),
    totals: await db
      .select()
      .from(schema.coverageTotals)
      .orderBy(
        asc(schema.coverageTotals.releaseId),
        asc(schema.coverageTotals.caller),
        asc(schema.coverageTotals.callee),
        asc(schema.coverageTotals.source),
      ),
    // Not `position`: it records the order transactions committed in, which differs from run to run.
    cohortTraces: await db
      .select({
        traceId: schema.cohortTraces.traceId,
        releaseId: schema.cohortTraces.releaseId,
        dye: schema.cohortTraces.dye,
        enteredAt: schema.cohortTraces.enteredAt,
      })
      .from(schema.cohortTraces)
      .orderBy(asc(schema.cohortTraces.traceId)),
    pending: await db
      .select()
      .from(schema.undyedHopRequests)
      .orderBy(
        asc(schema.undyedHopRequests.traceId),
        asc(schema.undyedHopRequests.caller),
        asc(schema.undyedHopRequests.callee),
        asc(schema.undyedHopRequests.bucketStart),
        asc(schema.undyedHopRequests.agentId),
        asc(schema.undyedHopRequests.event),
      ),
    traceHops: await db
      .select()
      .from(schema.traceHops)
      .orderBy(asc(schema.traceHops.traceId), asc(schema.traceHops.agentId), asc(schema.traceHops.seq)),
    seqRanges: await db
      .select()
      .from(schema.agentSeqRanges)
      .orderBy(asc(schema.agentSeqRanges.agentId), asc(schema.agentSeqRanges.lo)),
    delivery: await db.select().from(d).orderBy(asc(d.agentId)),
    releases: await db.select().from(schema.releases).orderBy(asc(schema.releases.id)),
  };
}
