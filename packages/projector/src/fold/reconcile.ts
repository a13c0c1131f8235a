// A dye fold runs on a snapshot of the cohort, outside the dye lock; under the lock it learns which traces
// entered a cohort since (committed by other transactions meanwhile) and is brought to what folding after
// them would have given. Pure: the caller loads the entries since and applies the plan.
//
// Per trace T that entered since, with release R:
// - an undyed request of T this fold kept pending (T was not in its snapshot) is a miss of R: the pending row
//   is taken back like the stored ones of an entering trace, and counted then;
// - this fold also saw T enter, with the same release: the other transaction's entry stands, this one is
//   dropped (its undyed requests of T are misses of R either way);
// - this fold saw T enter with another release: its misses of T went to the wrong release, which only a
//   fold under the lock can get right — `refold`.
import type { FoldResult, PendingRow } from "./dye-events.ts";

export interface TraceRelease {
  readonly traceId: string;
  readonly releaseId: string;
}

export interface SharedWrites {
  readonly refold: false;
  /** The cohort entries this fold still writes. */
  readonly entered: FoldResult["enteredTraces"];
  /** Traces whose stored pending rows become misses of the release (this fold's own rows included). */
  readonly take: TraceRelease[];
}

export type ReconcilePlan = { readonly refold: true } | SharedWrites;

export function reconcile(
  entered: FoldResult["enteredTraces"],
  pending: readonly Pick<PendingRow, "traceId">[],
  enteredSince: ReadonlyMap<string, string>,
): ReconcilePlan {
  const kept: FoldResult["enteredTraces"] = [];
  for (const e of entered) {
    const other = enteredSince.get(e.traceId);
    if (other === undefined) kept.push(e);
    else if (other !== e.releaseId) return { refold: true };
  }
  const take: TraceRelease[] = kept.map((e) => ({ traceId: e.traceId, releaseId: e.releaseId }));
  const taken = new Set<string>();
  for (const p of pending) {
    const releaseId = enteredSince.get(p.traceId);
    if (releaseId === undefined || taken.has(p.traceId)) continue;
    taken.add(p.traceId);
    take.push({ traceId: p.traceId, releaseId });
  }
  return { refold: false, entered: kept, take };
}

/** Under the lock, with nothing entered since: every entered trace is written and takes its stored rows. */
export function allEntered(entered: FoldResult["enteredTraces"]): SharedWrites {
  return {
    refold: false,
    entered,
    take: entered.map((e) => ({ traceId: e.traceId, releaseId: e.releaseId })),
  };
}
