// What a release must not do when it starts or resumes, given the releases already running:
// - share requests with one of them: the agents dye each such request for the lower dye only, so the other
//   release silently loses them (all of them, when the cohorts are equal: its coverage stays "expected 0").
//   Refused with the release it would share with and a request both match (packages/agent/src/rules/
//   overlap.ts says which overlaps are certain);
// - be one more than the agents' rule table holds (tooManyRunning).
import { effectivePercent, type ReleaseState } from "@indigo/release";
import { type CohortMatcher, cohortOverlap } from "../../agent/src/rules/overlap.ts";
import { DYE_MAX_RULES } from "../../agent/src/rules/types.ts";
import type { RuleSource } from "./control.ts";
import { ProblemError } from "./problem.ts";

export interface Overlap {
  readonly id: string;
  readonly name: string;
  readonly dye: number;
  /** A request both cohorts match, e.g. "trace id t-00000000". */
  readonly example: string;
}

function matcherOf(r: Pick<RuleSource, "cohort" | "ramp" | "rampStep">): CohortMatcher | undefined {
  const c = r.cohort;
  if (c.traceIdPattern !== undefined) return { traceIdPattern: c.traceIdPattern };
  if (c.header !== undefined) return { header: c.header };
  if (c.sni !== undefined) return { sni: c.sni };
  const percent = effectivePercent({ cohort: c, ramp: r.ramp, rampStep: r.rampStep } as ReleaseState);
  return percent !== undefined && percent > 0 ? { percent } : undefined;
}

/** The running releases (other than `release`) whose cohorts share requests with its cohort. */
export function overlapsWith(release: RuleSource, running: readonly RuleSource[]): Overlap[] {
  const mine = matcherOf(release);
  if (!mine) return [];
  const found: Overlap[] = [];
  for (const other of running) {
    if (other.id === release.id) continue;
    const theirs = matcherOf(other);
    const example = theirs && cohortOverlap(mine, theirs);
    if (example) found.push({ id: other.id, name: other.name ?? other.id, dye: other.dye, example });
  }
  return found;
}

export function overlapProblem(release: RuleSource, overlaps: readonly Overlap[]): ProblemError {
  const first = overlaps[0];
  const with_ = overlaps.map((o) => `"${o.name}" (${o.id}, dye ${o.dye})`).join(", ");
  const loser =
    first && first.dye < release.dye
      ? `this release (dye ${release.dye}) would not see it`
      : `"${first?.name}" (dye ${first?.dye}) would lose it to this release (dye ${release.dye})`;
  const detail =
    `the cohort overlaps running release ${with_}: a request with ${first?.example ?? "…"} matches both, and ` +
    `the agents dye such a request for the lower dye only, so ${loser}; pause, promote or roll back the ` +
    "other release, or narrow this cohort";
  return new ProblemError("cohortOverlap", 409, detail, { overlaps });
}

/**
 * The agents hold at most DYE_MAX_RULES rules (the kernel's rule table); a control message with more is refused
 * by every agent as a whole, and the rules in force stay — so once one release too many ran, pausing or rolling
 * back any other no longer reached the kernel either. A release about to run when that many already do is
 * refused.
 */
export function tooManyRunning(
  release: RuleSource,
  running: readonly RuleSource[],
): ProblemError | undefined {
  const others = running.filter((r) => r.id !== release.id);
  if (others.length < DYE_MAX_RULES) return undefined;
  return new ProblemError(
    "tooManyRunning",
    409,
    `${others.length} releases are running, the most the agents' kernel rule table holds (${DYE_MAX_RULES}): promote, pause or roll back one of them first`,
    { running: others.length, limit: DYE_MAX_RULES },
  );
}
