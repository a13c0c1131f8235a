// Automatic analysis of running releases (the Argo Rollouts / Flagger habit, for a whole lane): every period,
// per running release with an analysis, over the last `windowSeconds` of coverage buckets,
//   - a hop (caller → callee) with at least `minRequests` expected requests fails when dyed/expected is
//     below `coverageFloor`;
//   - a gray callee with at least `minRequests` responses fails when its 5xx share is above
//     `errorRateCeiling`; the callee blamed is one that does not call another failing callee (errors
//     travel up a chain: every caller of a broken service answers 5xx too).
// Coverage is judged from no earlier than a grace after the release's last start, resume or ramp step
// (graceMs); gray error rates over the whole window.
// The first failure rolls the release back by itself (actor "analysis", automatic, the hop and figures in
// its history). A release with ramp steps that passes advances one step once it has spent its step's
// `pauseSeconds` in its current state — and, when it has an analysis, only once the window held enough to
// judge: a hop with `minRequests` expected requests. A step with no traffic proves nothing about the gray
// version; advancing on the clock alone took a release to its last step unseen. Nor does it advance while
// the window may lack events (evidence.ts): an agent holds some in its spool or went quiet, or the
// projector is behind.
import { type Database, schema } from "@indigo/db";
import type { CohortRule, ReleaseState } from "@indigo/release";
import { eq, notInArray, sql } from "drizzle-orm";
import { loadRelease, type ReleaseCommands } from "./commands.ts";
import { type AgentBacklog, agentGaps, loadAgentBacklogs, type ProjectorProgress } from "./evidence.ts";
import { ProblemError } from "./problem.ts";
import { type CoverageRow, coverageRows, summarizeCoverage } from "./routes/observe.ts";

export type Verdict =
  | {
      readonly ok: true;
      /** hops with at least minRequests expected requests in the window: 0 means nothing could be judged */
      readonly judgedHops: number;
    }
  | {
      readonly ok: false;
      readonly hop: string;
      readonly coverage: number;
      readonly errorRate: number;
      readonly reason: string;
    };

const pct = (x: number): string => `${(x * 100).toFixed(2)} %`;

/**
 * Callees the blamed one sent enough cohort requests to judge whose responses are not in the window: their
 * agent's events not projected yet (agents report seconds apart) or not reported at all. The errors may start
 * there; the blame is as good as the projection, and the reason says so.
 */
function unjudgedCallees(
  origin: string,
  hops: readonly { caller: string; callee: string; expected: number }[],
  responses: readonly CalleeErrors[],
  minRequests: number,
): string {
  const answered = new Map(responses.map((r) => [r.callee, r.responses]));
  const list = hops
    .filter((h) => h.caller === origin && h.expected >= minRequests)
    .map((h) => ({ callee: h.callee, expected: h.expected, responses: answered.get(h.callee) ?? 0 }))
    .filter((c) => c.responses < minRequests)
    .map((c) => `${c.callee} (${c.responses} of ${c.expected})`)
    .join(", ");
  if (list === "") return "";
  return `; ${origin} called ${list} too, whose responses are not in the window yet: the errors may start there`;
}

/**
 * A miss is counted only for a request that carried the id of a trace in the cohort. Under a header cohort
 * that means its caller forwarded the trace context but not the header, and the engine does not carry a
 * header cohort past such a service (bpf/README.md, "What a thread's dye can and cannot say"): the rollback
 * then says so, or the operator reads a healthy gray version as a broken dye.
 */
function coverageHint(cohort: CohortRule | undefined, caller: string): string {
  if (cohort?.header === undefined) return "";
  return `; this is a header cohort (${cohort.header.name}): ${caller} sent requests of cohort traces without the dye, which is what a service that forwards the trace context but not the ${cohort.header.name} header does — a header cohort reaches only as far as services forward the header or nothing at all; a trace-id or percent cohort reaches further`;
}

interface CalleeErrors {
  readonly callee: string;
  readonly responses: number;
  readonly errors: number;
}

/**
 * The failing callee to blame. A service that answers 5xx because the service it called did passes the
 * error up the chain: every caller above a broken hop fails too, and the first of them by name used to be
 * blamed (client → A → B → C with C broken named A). So: a failing callee that calls no failing callee (by
 * the hops in the window), the highest rate first; failing callees that all call one another (a cycle):
 * the highest rate.
 */
function errorOrigin(
  failing: readonly CalleeErrors[],
  hops: readonly { caller: string; callee: string }[],
): CalleeErrors | undefined {
  const names = new Set(failing.map((r) => r.callee));
  const passesOn = (r: CalleeErrors) => hops.some((h) => h.caller === r.callee && names.has(h.callee));
  const byRate = [...failing].sort((a, b) => b.errors / b.responses - a.errors / a.responses);
  return byRate.find((r) => !passesOn(r)) ?? byRate[0];
}

/**
 * Pure: the analysis verdict of one release: coverage over `rows`, gray error rates over `responseRows` (the
 * same rows unless the coverage window is shorter: see graceMs). `cohort`, when given, explains a coverage
 * failure its kind of rule makes likely.
 */
export function judge(
  analysis: NonNullable<ReleaseState["analysis"]>,
  rows: readonly CoverageRow[],
  responseRows: readonly CoverageRow[] = rows,
  cohort?: CohortRule,
): Verdict {
  const summary = summarizeCoverage(rows);
  let judgedHops = 0;
  for (const hop of summary.hops) {
    if (hop.expected < analysis.minRequests || hop.expected === 0) continue;
    judgedHops++;
    const ratio = hop.dyed / hop.expected;
    if (ratio < analysis.coverageFloor) {
      const name = `${hop.caller} → ${hop.callee}`;
      return {
        ok: false,
        hop: name,
        coverage: ratio,
        errorRate: 0,
        reason: `analysis: coverage ${pct(ratio)} (${hop.dyed}/${hop.expected}) on ${name} is below the floor ${pct(analysis.coverageFloor)} over ${analysis.windowSeconds} s${coverageHint(cohort, hop.caller)}`,
      };
    }
  }
  const answered = responseRows === rows ? summary : summarizeCoverage(responseRows);
  const failing = answered.responses.filter(
    (r) =>
      r.responses >= analysis.minRequests &&
      r.responses > 0 &&
      r.errors / r.responses > analysis.errorRateCeiling,
  );
  const origin = errorOrigin(failing, answered.hops);
  if (origin) {
    const rate = origin.errors / origin.responses;
    const others = failing.filter((r) => r !== origin);
    const also = others.length
      ? `; also above it: ${others.map((r) => `${r.callee} ${pct(r.errors / r.responses)} (${r.errors}/${r.responses})`).join(", ")}`
      : "";
    return {
      ok: false,
      hop: `* → ${origin.callee}`,
      coverage: 1,
      errorRate: rate,
      reason: `analysis: gray error rate ${pct(rate)} (${origin.errors}/${origin.responses}) at ${origin.callee} is above the ceiling ${pct(analysis.errorRateCeiling)} over ${analysis.windowSeconds} s${also}${unjudgedCallees(origin.callee, answered.hops, answered.responses, analysis.minRequests)}`,
    };
  }
  return { ok: true, judgedHops };
}

export interface AnalyzerOptions {
  readonly db: Database;
  readonly commands: ReleaseCommands;
  readonly now?: () => Date;
  readonly log?: (line: string) => void;
  /**
   * Coverage from the first `graceMs` after a release's start, resume or ramp step is not judged (default
   * 10 s, INDIGO_ANALYSIS_GRACE_MS; whole coverage buckets, so up to a bucket more): the agents apply new
   * rules seconds apart, and meanwhile a request through a hop whose agent has not is a miss — with a 99 %
   * floor, a second of skew at 1 000 cohort requests/s is enough to roll a healthy release back as it
   * starts. Gray error rates are judged over the whole window: a 5xx is the gray version's, whatever the
   * rules did.
   */
  readonly graceMs?: number;
  /** When an agent's last status is stale (default 30 s): its spool count no longer counts, and its silence
   * within the window does. */
  readonly agentStaleMs?: number;
  /** Whether the projector has applied what the log held a pass ago; absent: not checked. */
  readonly progress?: ProjectorProgress;
}

export const DEFAULT_ANALYSIS_GRACE_MS = 10_000;

export interface TickOutcome {
  readonly rolledBack: string[];
  readonly advanced: string[];
  /** due to advance, held: the analysis window had no hop with minRequests expected requests, or it may
   * lack events (an agent's spool or silence, the projector's lag) */
  readonly held: string[];
}

/** Why a ramp is held: logged once per release and kind, recorded in ramp_holds every pass. */
interface Hold {
  readonly kind: "traffic" | "evidence";
  readonly percent: number;
  readonly reason: string;
}

export class Analyzer {
  /** releases held at the last pass and why, so the log says so once per hold, not every period */
  private held = new Map<string, Hold["kind"]>();
  /** whether the last pass found a release's window to lack events */
  private incomplete = false;

  constructor(private readonly opts: AnalyzerOptions) {}

  /** Prometheus text: ramps held at the last pass (alert on one held for long: its cohort sees no traffic). */
  metrics(): string {
    return [
      "# HELP indigo_analysis_ramps_held Ramped releases due to advance but held at the last analysis pass: no hop had minRequests expected requests in the window, or the window may lack events (ramp_holds and each release's rampHold say which).",
      "# TYPE indigo_analysis_ramps_held gauge",
      `indigo_analysis_ramps_held ${this.held.size}`,
      "# HELP indigo_analysis_evidence_incomplete 1 when the last analysis pass found that a ramp's window may lack events: an agent reported events in its spool or went quiet within it, or the projector had not applied what the log held a pass before. Ramps do not advance meanwhile.",
      "# TYPE indigo_analysis_evidence_incomplete gauge",
      `indigo_analysis_evidence_incomplete ${this.incomplete ? 1 : 0}`,
      "",
    ].join("\n");
  }

  /** One pass over the running releases. Races with operators are settled by If-Match: a 409 is ignored. */
  async tick(): Promise<TickOutcome> {
    const now = this.opts.now?.() ?? new Date();
    const out: TickOutcome = { rolledBack: [], advanced: [], held: [] };
    const r = schema.releases;
    const ids = await this.opts.db.select({ id: r.id }).from(r).where(eq(r.state, "running"));
    const held = new Map<string, Hold>();
    // The progress check runs every pass (it compares with the one before); the agents are read when a ramp
    // is due, once a pass.
    const projectorGaps = ids.length > 0 ? ((await this.opts.progress?.gaps()) ?? []) : [];
    let agents: Promise<AgentBacklog[]> | undefined;
    const evidence = () => {
      agents ??= loadAgentBacklogs(this.opts.db);
      return agents.then((list) => ({ agents: list, projector: projectorGaps }));
    };
    let incomplete = false;
    for (const { id } of ids) {
      const state = await loadRelease(this.opts.db, id);
      if (!state || state.status !== "running") continue;
      try {
        let judged = true;
        if (state.analysis) {
          // updatedAt of a running release: its last start, resume or ramp step
          const windowFrom = now.getTime() - state.analysis.windowSeconds * 1000;
          const settled = state.updatedAt.getTime() + (this.opts.graceMs ?? DEFAULT_ANALYSIS_GRACE_MS);
          const responseRows = await coverageRows(this.opts.db, id, new Date(windowFrom), undefined);
          const verdict = judge(
            state.analysis,
            settled > windowFrom
              ? await coverageRows(this.opts.db, id, new Date(settled), undefined)
              : responseRows,
            responseRows,
            state.cohort,
          );
          judged = !verdict.ok || verdict.judgedHops > 0;
          if (!verdict.ok) {
            await this.opts.commands.execute(
              id,
              {
                type: "RollbackRelease",
                data: {
                  reason: verdict.reason,
                  automatic: true,
                  hop: verdict.hop,
                  coverage: verdict.coverage,
                  errorRate: verdict.errorRate,
                },
              },
              "analysis",
              state.version,
            );
            out.rolledBack.push(id);
            continue;
          }
        }
        const step = state.ramp[state.rampStep];
        const hasNext = state.ramp[state.rampStep + 1] !== undefined;
        if (step && hasNext && now.getTime() - state.updatedAt.getTime() >= step.pauseSeconds * 1000) {
          const hold: Hold | undefined = !judged
            ? {
                kind: "traffic",
                percent: step.percent,
                reason: `no hop had ${state.analysis?.minRequests} expected requests in the last ${state.analysis?.windowSeconds} s, nothing to judge the gray version on`,
              }
            : state.analysis
              ? this.evidenceHold(await evidence(), state.analysis.windowSeconds * 1000, now, step.percent)
              : undefined;
          if (hold?.kind === "evidence") incomplete = true;
          if (hold) {
            out.held.push(id);
            held.set(id, hold);
            continue;
          }
          await this.opts.commands.execute(id, { type: "AdvanceRamp", data: {} }, "analysis", state.version);
          out.advanced.push(id);
        }
      } catch (error) {
        if (error instanceof ProblemError && error.problem.status === 409) continue;
        this.opts.log?.(
          `analysis of ${id} failed: ${error instanceof Error ? error.message : String(error)}`,
        );
      }
    }
    for (const [id, hold] of held)
      if (this.held.get(id) !== hold.kind)
        this.opts.log?.(`ramp of ${id} held at ${hold.percent} %: ${hold.reason}`);
    this.held = new Map([...held].map(([id, hold]) => [id, hold.kind]));
    this.incomplete = incomplete;
    await this.recordHolds(held, now);
    return out;
  }

  /** ramp_holds: this pass's holds, each since the first pass that found it of its kind; no others. */
  private async recordHolds(held: ReadonlyMap<string, Hold>, now: Date): Promise<void> {
    const h = schema.rampHolds;
    await this.opts.db.transaction(async (tx) => {
      await tx.delete(h).where(held.size > 0 ? notInArray(h.releaseId, [...held.keys()]) : undefined);
      if (held.size === 0) return;
      await tx
        .insert(h)
        .values(
          [...held].map(([releaseId, { kind, reason }]) => ({
            releaseId,
            kind,
            reason,
            since: now,
            checkedAt: now,
          })),
        )
        .onConflictDoUpdate({
          target: h.releaseId,
          set: {
            kind: sql`excluded.kind`,
            reason: sql`excluded.reason`,
            checkedAt: sql`excluded.checked_at`,
            since: sql`case when ${h.kind} = excluded.kind then ${h.since} else excluded.since end`,
          },
        });
    });
  }

  /** A hold when the window (the last `windowMs`) may lack events; undefined when nothing says so. */
  private evidenceHold(
    evidence: { readonly agents: readonly AgentBacklog[]; readonly projector: readonly string[] },
    windowMs: number,
    now: Date,
    percent: number,
  ): Hold | undefined {
    const gaps = [
      ...agentGaps(evidence.agents, now.getTime(), this.opts.agentStaleMs ?? 30_000, windowMs),
      ...evidence.projector,
    ];
    if (gaps.length === 0) return undefined;
    return { kind: "evidence", percent, reason: `the window may lack events: ${gaps.join("; ")}` };
  }
}
