// The release aggregate's `decide`: a command and the current state → the events to append, or a typed
// rejection saying why not (unknown release, version conflict, illegal transition, invalid definition).
// Pure: time and actor come with the command; the caller appends the events and folds them with `evolve`.
import { create, type ReleaseEvent, ReleaseEventSchema } from "@indigo/proto";
import type { CohortRule, LaneService, ReleaseState, ReleaseStatus } from "./state.ts";

// ── Commands ──────────────────────────────────────────────────────────────────────────────────────────

export interface CommandMeta {
  readonly releaseId: string;
  readonly actor: string;
  readonly at: Date;
  /** The version the caller saw (If-Match); required for every command but CreateRelease. */
  readonly expectedVersion?: number;
}

export interface ReleaseDefinition {
  readonly name: string;
  readonly dye: number;
  readonly cohort: CohortRule;
  readonly services: readonly LaneService[];
  readonly ramp: readonly { readonly percent: number; readonly pauseSeconds: number }[];
  readonly analysis: ReleaseState["analysis"];
}

export type ReleaseCommand =
  | { readonly type: "CreateRelease"; readonly data: ReleaseDefinition }
  | { readonly type: "StartRelease"; readonly data: Record<string, never> }
  | { readonly type: "PauseRelease"; readonly data: { readonly reason: string } }
  | { readonly type: "ResumeRelease"; readonly data: Record<string, never> }
  | { readonly type: "AdvanceRamp"; readonly data: Record<string, never> }
  | { readonly type: "PromoteRelease"; readonly data: Record<string, never> }
  | {
      readonly type: "RollbackRelease";
      readonly data: {
        readonly reason: string;
        readonly automatic?: boolean;
        readonly hop?: string;
        readonly coverage?: number;
        readonly errorRate?: number;
      };
    };

export type CommandType = ReleaseCommand["type"];

export const COMMAND_TYPES: readonly CommandType[] = [
  "CreateRelease",
  "StartRelease",
  "PauseRelease",
  "ResumeRelease",
  "AdvanceRamp",
  "PromoteRelease",
  "RollbackRelease",
];

// ── Rejections ────────────────────────────────────────────────────────────────────────────────────────

export type Rejection =
  | { readonly kind: "not_found"; readonly reason: string }
  | { readonly kind: "already_exists"; readonly reason: string }
  | {
      readonly kind: "version_conflict";
      readonly expected: number | undefined;
      readonly actual: number;
      readonly reason: string;
    }
  | {
      readonly kind: "illegal_transition";
      readonly from: ReleaseStatus;
      readonly command: CommandType;
      readonly reason: string;
    }
  | { readonly kind: "invalid"; readonly field: string; readonly reason: string };

export type Decision =
  | { readonly ok: true; readonly events: ReleaseEvent[] }
  | { readonly ok: false; readonly rejection: Rejection };

// ── decide ────────────────────────────────────────────────────────────────────────────────────────────

const BASIS_POINTS = 100;
const toBasisPoints = (percent: number): number => Math.round(percent * BASIS_POINTS);

type EventInit = NonNullable<Parameters<typeof create<typeof ReleaseEventSchema>>[1]>;
type Kind = EventInit["kind"];

const reject = (rejection: Rejection): Decision => ({ ok: false, rejection });

function eventOf(meta: CommandMeta, version: number, kind: Kind): ReleaseEvent {
  return create(ReleaseEventSchema, {
    releaseId: meta.releaseId,
    version: BigInt(version),
    timeUnixNano: BigInt(meta.at.getTime()) * 1_000_000n,
    actor: meta.actor,
    kind,
  });
}

function cohortMatch(cohort: CohortRule) {
  if (cohort.traceIdPattern !== undefined)
    return { case: "traceIdPattern" as const, value: cohort.traceIdPattern };
  if (cohort.header !== undefined) return { case: "header" as const, value: { ...cohort.header } };
  if (cohort.sni !== undefined) return { case: "sniSuffix" as const, value: cohort.sni };
  return { case: "percentBasisPoints" as const, value: toBasisPoints(cohort.percent ?? 0) };
}

/** Domain invariants of a definition the rule compiler does not know about (lane, ramp, analysis). */
export function checkDefinition(d: ReleaseDefinition): { field: string; reason: string } | null {
  if (d.name.trim() === "") return { field: "name", reason: "must not be blank" };
  if (!Number.isInteger(d.dye) || d.dye < 1 || d.dye > 0xffff_ffff)
    return { field: "dye", reason: "must be an integer from 1 to 4294967295" };
  const matchers = [d.cohort.traceIdPattern, d.cohort.header, d.cohort.sni, d.cohort.percent].filter(
    (m) => m !== undefined,
  );
  if (matchers.length !== 1)
    return { field: "cohort", reason: "needs exactly one of traceIdPattern, header, sni, percent" };
  if (d.services.length === 0) return { field: "services", reason: "a lane needs at least one service" };
  const names = new Set<string>();
  for (const [i, s] of d.services.entries()) {
    if (names.has(s.name)) return { field: `services.${i}.name`, reason: `"${s.name}" appears twice` };
    names.add(s.name);
  }
  if (d.ramp.length > 0) {
    if (d.cohort.percent === undefined)
      return { field: "ramp", reason: "ramp steps need a percent cohort (cohort.percent)" };
    let last = 0;
    for (const [i, step] of d.ramp.entries()) {
      if (!(step.percent > last && step.percent <= 100))
        return { field: `ramp.${i}.percent`, reason: "ramp percentages must increase, each at most 100" };
      last = step.percent;
    }
  }
  return null;
}

/** The percentage a percent cohort applies at its current ramp step (the cohort's own without a ramp). */
export function effectivePercent(state: ReleaseState): number | undefined {
  if (state.cohort.percent === undefined) return undefined;
  return state.ramp[state.rampStep]?.percent ?? state.cohort.percent;
}

const ALLOWED: Record<Exclude<CommandType, "CreateRelease">, readonly ReleaseStatus[]> = {
  StartRelease: ["draft"],
  PauseRelease: ["running"],
  ResumeRelease: ["paused"],
  AdvanceRamp: ["running"],
  PromoteRelease: ["running", "paused"],
  RollbackRelease: ["draft", "running", "paused"],
};

const WHY: Record<ReleaseStatus, string> = {
  draft: "it has not been started",
  running: "it is running",
  paused: "it is paused",
  promoted: "it was promoted and is finished",
  rolled_back: "it was rolled back and is finished",
};

const VERB: Record<Exclude<CommandType, "CreateRelease">, string> = {
  StartRelease: "start",
  PauseRelease: "pause",
  ResumeRelease: "resume",
  AdvanceRamp: "advance the ramp of",
  PromoteRelease: "promote",
  RollbackRelease: "roll back",
};

export function decide(command: ReleaseCommand, state: ReleaseState | null, meta: CommandMeta): Decision {
  if (command.type === "CreateRelease") {
    if (state !== null)
      return reject({ kind: "already_exists", reason: `release ${meta.releaseId} already exists` });
    const problem = checkDefinition(command.data);
    if (problem) return reject({ kind: "invalid", ...problem });
    const d = command.data;
    return {
      ok: true,
      events: [
        eventOf(meta, 1, {
          case: "created",
          value: {
            name: d.name,
            dye: d.dye,
            cohort: { match: cohortMatch(d.cohort) },
            services: d.services.map((s) => ({ name: s.name, baseline: s.baseline, gray: s.gray ?? "" })),
            ramp: d.ramp.map((r) => ({
              percentBasisPoints: toBasisPoints(r.percent),
              pauseSeconds: r.pauseSeconds,
            })),
            ...(d.analysis ? { analysis: { ...d.analysis } } : {}),
          },
        }),
      ],
    };
  }
  if (state === null)
    return reject({ kind: "not_found", reason: `release ${meta.releaseId} does not exist` });
  if (meta.expectedVersion !== state.version) {
    return reject({
      kind: "version_conflict",
      expected: meta.expectedVersion,
      actual: state.version,
      reason: `release ${state.id} is at version ${state.version}, not ${meta.expectedVersion ?? "(none given)"}`,
    });
  }
  if (!ALLOWED[command.type].includes(state.status)) {
    return reject({
      kind: "illegal_transition",
      from: state.status,
      command: command.type,
      reason: `cannot ${VERB[command.type]} release ${state.id}: ${WHY[state.status]}`,
    });
  }
  const next = state.version + 1;
  const one = (kind: Kind): Decision => ({ ok: true, events: [eventOf(meta, next, kind)] });
  switch (command.type) {
    case "StartRelease":
      return one({ case: "started", value: {} });
    case "PauseRelease":
      return one({ case: "paused", value: { reason: command.data.reason } });
    case "ResumeRelease":
      return one({ case: "resumed", value: {} });
    case "AdvanceRamp": {
      const step = state.rampStep + 1;
      const target = state.ramp[step];
      if (target === undefined) {
        return reject({
          kind: "illegal_transition",
          from: state.status,
          command: command.type,
          reason:
            state.ramp.length === 0
              ? `release ${state.id} has no ramp`
              : `release ${state.id} is at its last ramp step (${state.ramp[state.rampStep]?.percent} %); promote it instead`,
        });
      }
      return one({
        case: "rampAdvanced",
        value: { step, percentBasisPoints: toBasisPoints(target.percent) },
      });
    }
    case "PromoteRelease":
      return one({ case: "promoted", value: {} });
    case "RollbackRelease": {
      const d = command.data;
      return one({
        case: "rolledBack",
        value: {
          reason: d.reason,
          automatic: d.automatic ?? false,
          hop: d.hop ?? "",
          coverage: d.coverage ?? 0,
          errorRate: d.errorRate ?? 0,
        },
      });
    }
    default: {
      const never: never = command;
      throw new Error(`unknown command ${JSON.stringify(never)}`);
    }
  }
}
