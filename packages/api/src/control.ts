// The desired state of every agent (indigo.control.v1, key "*"): the cohort rules of all running releases
// and the sampling rates. Published after every command that changes which rules apply.
import { type Database, schema } from "@indigo/db";
import { type AgentControl, AgentControlSchema, create, type SamplingRate } from "@indigo/proto";
import { effectivePercent, type ReleaseState } from "@indigo/release";
import { eq } from "drizzle-orm";

export interface RuleSource {
  readonly id: string;
  /** For people (problems, logs); the rules do not carry it. */
  readonly name?: string;
  readonly dye: number;
  readonly cohort: ReleaseState["cohort"];
  readonly ramp: ReleaseState["ramp"];
  readonly rampStep: number;
}

const basisPoints = (percent: number): number => Math.round(percent * 100);

function cohortOf(r: RuleSource) {
  const c = r.cohort;
  if (c.traceIdPattern !== undefined) return { case: "traceIdPattern" as const, value: c.traceIdPattern };
  if (c.header !== undefined) return { case: "header" as const, value: { ...c.header } };
  if (c.sni !== undefined) return { case: "sniSuffix" as const, value: c.sni };
  const percent =
    effectivePercent({ cohort: c, ramp: r.ramp, rampStep: r.rampStep } as ReleaseState) ?? c.percent ?? 0;
  return { case: "percentBasisPoints" as const, value: basisPoints(percent) };
}

/** Pure: the AgentControl for running releases, ordered by dye (the agent's first match wins). */
export function buildControl(
  running: readonly RuleSource[],
  sampling: readonly SamplingRate[],
  generation: bigint,
  issuedAt: Date,
  target = "*",
): AgentControl {
  return create(AgentControlSchema, {
    target,
    generation,
    rules: [...running]
      .sort((a, b) => a.dye - b.dye)
      .map((r) => ({ dye: r.dye, releaseId: r.id, cohort: { match: cohortOf(r) } })),
    sampling: [...sampling],
    issuedUnixNano: BigInt(issuedAt.getTime()) * 1_000_000n,
  });
}

export async function runningReleases(
  db: Database | Parameters<Parameters<Database["transaction"]>[0]>[0],
): Promise<RuleSource[]> {
  const r = schema.releases;
  const rows = await db
    .select({ id: r.id, name: r.name, dye: r.dye, cohort: r.cohort, ramp: r.ramp, rampStep: r.rampStep })
    .from(r)
    .where(eq(r.state, "running"));
  return rows.map((row) => ({
    id: row.id,
    name: row.name,
    dye: row.dye,
    cohort: row.cohort as RuleSource["cohort"],
    ramp: row.ramp as RuleSource["ramp"],
    rampStep: row.rampStep,
  }));
}

let lastGeneration = 0n;
/**
 * Microseconds since the epoch, strictly increasing within the process, and later than `notBefore`: the
 * last rules change the publication carries. That change was stamped by whichever API instance took the
 * command; an instance whose clock runs behind it would otherwise stamp the publication earlier than the
 * change, and every agent that applied it would read as rules-behind (agent-condition.ts) for as long as
 * those rules stay in force.
 */
export function nextGeneration(now: Date = new Date(), notBefore: Date | null = null): bigint {
  const floor = notBefore ? BigInt(notBefore.getTime()) * 1000n + 1n : 0n;
  const clock = BigInt(now.getTime()) * 1000n;
  const micros = clock > floor ? clock : floor;
  lastGeneration = micros > lastGeneration ? micros : lastGeneration + 1n;
  return lastGeneration;
}
