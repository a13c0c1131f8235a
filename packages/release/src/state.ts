// The release aggregate's state and how one event changes it (the decider's `evolve`). Pure: the projector
// folds the log with it, the API rebuilds an aggregate with it before deciding a command.
import type { ReleaseEvent } from "@indigo/proto";

export type ReleaseStatus = "draft" | "running" | "paused" | "promoted" | "rolled_back";

export interface CohortRule {
  readonly traceIdPattern?: string;
  readonly header?: { readonly name: string; readonly value: string };
  readonly sni?: string;
  readonly percent?: number;
}

export interface LaneService {
  readonly name: string;
  readonly baseline: string;
  readonly gray?: string;
}

export interface ReleaseState {
  readonly id: string;
  readonly name: string;
  readonly status: ReleaseStatus;
  readonly version: number;
  readonly dye: number;
  readonly cohort: CohortRule;
  readonly services: readonly LaneService[];
  readonly ramp: readonly { readonly percent: number; readonly pauseSeconds: number }[];
  readonly rampStep: number;
  readonly analysis: {
    readonly coverageFloor: number;
    readonly errorRateCeiling: number;
    readonly windowSeconds: number;
    readonly minRequests: number;
  } | null;
  readonly reason: string;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export class EvolveError extends Error {}

const BASIS_POINTS = 100;

function cohortOf(event: ReleaseEvent & { kind: { case: "created" } }): CohortRule {
  const match = event.kind.value.cohort?.match;
  switch (match?.case) {
    case "traceIdPattern":
      return { traceIdPattern: match.value };
    case "header":
      return { header: { name: match.value.name, value: match.value.value } };
    case "sniSuffix":
      return { sni: match.value };
    case "percentBasisPoints":
      return { percent: match.value / BASIS_POINTS };
    case undefined:
      throw new EvolveError("ReleaseCreated without a cohort rule");
    default: {
      const never: never = match;
      throw new EvolveError(`unknown cohort rule ${String(never)}`);
    }
  }
}

/** Applies one event; throws EvolveError when the event cannot follow `state` (wrong version or transition). */
export function evolve(state: ReleaseState | null, event: ReleaseEvent): ReleaseState {
  const at = new Date(Number(event.timeUnixNano / 1_000_000n));
  const version = Number(event.version);
  if (event.kind.case === "created") {
    if (state !== null) throw new EvolveError(`release ${event.releaseId} created twice`);
    if (version !== 1) throw new EvolveError(`ReleaseCreated must be version 1, got ${version}`);
    const created = event.kind.value;
    return {
      id: event.releaseId,
      name: created.name,
      status: "draft",
      version,
      dye: created.dye,
      cohort: cohortOf(event as ReleaseEvent & { kind: { case: "created" } }),
      services: created.services.map((s) =>
        s.gray
          ? { name: s.name, baseline: s.baseline, gray: s.gray }
          : { name: s.name, baseline: s.baseline },
      ),
      ramp: created.ramp.map((r) => ({
        percent: r.percentBasisPoints / BASIS_POINTS,
        pauseSeconds: r.pauseSeconds,
      })),
      rampStep: 0,
      analysis: created.analysis
        ? {
            coverageFloor: created.analysis.coverageFloor,
            errorRateCeiling: created.analysis.errorRateCeiling,
            windowSeconds: created.analysis.windowSeconds,
            minRequests: created.analysis.minRequests,
          }
        : null,
      reason: "",
      createdAt: at,
      updatedAt: at,
    };
  }
  if (state === null)
    throw new EvolveError(`release ${event.releaseId} has no ReleaseCreated before version ${version}`);
  if (version !== state.version + 1) {
    throw new EvolveError(
      `release ${state.id} is at version ${state.version}; event version ${version} does not follow`,
    );
  }
  const next = (
    status: ReleaseStatus,
    from: readonly ReleaseStatus[],
    extra: Partial<ReleaseState> = {},
  ): ReleaseState => {
    if (!from.includes(state.status)) {
      throw new EvolveError(`release ${state.id}: ${event.kind.case} cannot follow state ${state.status}`);
    }
    return { ...state, ...extra, status, version, updatedAt: at };
  };
  switch (event.kind.case) {
    case "started":
      return next("running", ["draft"]);
    case "paused":
      return next("paused", ["running"], { reason: event.kind.value.reason });
    case "resumed":
      return next("running", ["paused"], { reason: "" });
    case "rampAdvanced":
      return next(state.status, ["running", "paused"], { rampStep: event.kind.value.step });
    case "promoted":
      return next("promoted", ["running", "paused"]);
    case "rolledBack":
      return next("rolled_back", ["draft", "running", "paused"], { reason: event.kind.value.reason });
    case undefined:
      throw new EvolveError(`release ${state.id}: event version ${version} has no kind`);
    default: {
      const never: never = event.kind;
      throw new EvolveError(`unknown release event ${String(never)}`);
    }
  }
}
