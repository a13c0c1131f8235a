// Folds DyeEventBatches into coverage deltas. Pure: the caller loads the state it needs (applied seq ranges,
// releases by dye, traces already in a cohort), this decides, the store writes.
//
// Coverage counts egress requests, per release × hop (caller → callee) × bucket × source:
// - a dyed request counts as expected and dyed, under its detection source;
// - an undyed request whose trace id belongs to a release's cohort (some event of that trace was dyed with
//   the release's dye) is a miss: expected, not dyed, source "none";
// - an undyed request whose trace is not (yet) known to be in a cohort is kept as pending; when the trace
//   enters a cohort later in the log it becomes a miss, so the result does not depend on arrival order;
// - an undyed request without a trace id cannot be attributed to any trace and is not counted.
// Responses count per callee (caller "*"): responses and 5xx errors of requests carrying a release's dye.
import { endpointText } from "@indigo/bus/addresses";
import { DetectionSource, Direction, DyeEventKind } from "@indigo/proto";
import type { DyeBatchView, DyeEventView } from "../decode/dye-batch.ts";
import { addSeq, type SeqRange } from "../sequence.ts";
import type { ServiceIdentity } from "../service-identity.ts";
import { BatchClock } from "./clock.ts";
import { BatchNames } from "./names.ts";

export const SOURCE_NAMES: Record<DetectionSource, string> = {
  [DetectionSource.UNSPECIFIED]: "none",
  [DetectionSource.PAYLOAD]: "payload",
  [DetectionSource.SNI]: "sni",
  [DetectionSource.TCP_OPTION]: "tcp_option",
  [DetectionSource.INHERIT]: "inherit",
  [DetectionSource.FALLBACK]: "fallback",
};

export interface CoverageKey {
  readonly releaseId: string;
  readonly caller: string;
  readonly callee: string;
  readonly bucketStart: Date;
  readonly source: string;
}

export interface CoverageDelta extends CoverageKey {
  expected: number;
  dyed: number;
  responses: number;
  errors: number;
}

/**
 * An undyed hop request waiting for its trace to enter a cohort: what that attribution reads, and the event
 * itself (event `index` of its batch), which then joins the trace's timeline.
 */
export interface PendingRow {
  readonly traceId: string;
  readonly caller: string;
  readonly callee: string;
  readonly bucketStart: Date;
  readonly from: BatchSource;
  readonly index: number;
}

export interface TraceHopRow {
  readonly traceId: string;
  readonly agentId: string;
  readonly seq: bigint;
  readonly at: Date;
  readonly tsNs: bigint;
  readonly service: string;
  readonly local: string;
  readonly peer: string;
  readonly cookie: bigint;
  readonly pid: number;
  readonly tid: number;
  readonly kind: string;
  readonly direction: string;
  readonly dye: number;
  readonly source: string;
  readonly method: string;
  readonly path: string;
  readonly status: number;
}

export interface FoldState {
  /** releases by dye; a dye belongs to at most one live release. */
  readonly releaseByDye: ReadonlyMap<number, string>;
  /** trace id → release id, for traces already in a cohort; the fold adds the traces it sees enter. */
  readonly cohort: Map<string, string>;
  /** When the stored ones among them entered (ms): their earliest dyed event so far. */
  readonly enteredMs: Map<string, number>;
  /** applied seq ranges per agent; the fold adds what it applies. */
  readonly ranges: Map<string, SeqRange[]>;
}

/** A trace entering a cohort: at its earliest dyed event, whatever order they are folded in. */
export interface EnteredTrace {
  readonly traceId: string;
  readonly releaseId: string;
  readonly dye: number;
  at: Date;
}

export interface FoldResult {
  readonly coverage: Map<string, CoverageDelta>;
  readonly enteredTraces: EnteredTrace[];
  /** The same entries by trace id. */
  readonly entering: Map<string, EnteredTrace>;
  /** Stored entries this fold saw a dyed event of from before their entry time: trace id → that time (ms). */
  readonly earlier: Map<string, number>;
  readonly pending: PendingRow[];
  readonly traceHops: TraceHopRow[];
  readonly applied: Map<string, { events: number; duplicates: number }>;
  unknownDye: number;
  /** bucket start (ms) → its Date: one Date per bucket, not per event. */
  readonly buckets: Map<number, Date>;
}

const KIND_NAMES: Record<DyeEventKind, string> = {
  [DyeEventKind.UNSPECIFIED]: "unspecified",
  [DyeEventKind.REQUEST]: "request",
  [DyeEventKind.RESPONSE]: "response",
  [DyeEventKind.CONNECT]: "connect",
  [DyeEventKind.ACCEPT]: "accept",
};

export function coverageKeyString(k: CoverageKey): string {
  return `${k.releaseId}\u0000${k.caller}\u0000${k.callee}\u0000${k.bucketStart.getTime()}\u0000${k.source}`;
}

export function newFoldResult(): FoldResult {
  return {
    coverage: new Map(),
    enteredTraces: [],
    entering: new Map(),
    earlier: new Map(),
    pending: [],
    traceHops: [],
    applied: new Map(),
    unknownDye: 0,
    buckets: new Map(),
  };
}

export function bump(
  result: FoldResult,
  key: CoverageKey,
  by: Partial<Omit<CoverageDelta, keyof CoverageKey>>,
): void {
  const id = coverageKeyString(key);
  let row = result.coverage.get(id);
  if (!row) {
    row = { ...key, expected: 0, dyed: 0, responses: 0, errors: 0 };
    result.coverage.set(id, row);
  }
  row.expected += by.expected ?? 0;
  row.dyed += by.dyed ?? 0;
  row.responses += by.responses ?? 0;
  row.errors += by.errors ?? 0;
}

/** Where events come from: what a timeline row of one of them needs besides the event. */
export interface EventSource {
  readonly agentId: string;
  readonly clock: BatchClock;
  readonly names: BatchNames;
}

/** The events of a batch. */
export interface BatchSource extends EventSource {
  readonly batch: DyeBatchView;
}

/** Per batch: what every event of it shares. */
interface BatchContext extends BatchSource {
  readonly bucketMs: number;
  /** bucket start (ms) → its Date, shared by the rows of a batch set. */
  readonly buckets: Map<number, Date>;
}

/** The events of `agentId` since its boot at `bootNs`, outside any batch (a stored pending row's). */
export function eventSource(ids: ServiceIdentity, agentId: string, bootNs: bigint): EventSource {
  return { agentId, clock: new BatchClock(bootNs), names: new BatchNames(ids, agentId) };
}

/** The timeline row of an event. */
export function traceHopRow(from: EventSource, e: DyeEventView): TraceHopRow {
  const { names } = from;
  const atMs = from.clock.ms(e.tsNs);
  const isEgress = e.direction === Direction.EGRESS;
  const localAddress = names.address(e.saddr);
  return {
    traceId: e.traceId,
    agentId: from.agentId,
    seq: e.seq,
    at: new Date(atMs),
    tsNs: e.tsNs,
    service:
      isEgress && e.kind === DyeEventKind.RESPONSE
        ? names.callee(localAddress, e.sport)
        : names.caller(e.comm, e.cgroupId, e.sport, localAddress),
    local: endpointText(localAddress, e.sport),
    peer: endpointText(names.address(e.daddr), e.dport),
    cookie: e.socketCookie,
    pid: e.pid,
    tid: e.tid,
    kind: KIND_NAMES[e.kind] ?? "unspecified",
    direction: isEgress ? "egress" : "ingress",
    dye: e.dye,
    source: SOURCE_NAMES[e.source] ?? "none",
    method: e.method,
    path: e.path,
    status: e.status,
  };
}

/** The shared Date of a bucket start (ms). */
export function bucketDate(buckets: Map<number, Date>, startMs: number): Date {
  let date = buckets.get(startMs);
  if (date === undefined) {
    date = new Date(startMs);
    buckets.set(startMs, date);
  }
  return date;
}

/**
 * Another dyed event of a trace in a cohort: the entry time is its earliest dyed event's, so an entry folded
 * from a later event first (another partition's, or one further on in the log) moves back.
 */
function dyedAgain(traceId: string, atMs: number, state: FoldState, out: FoldResult): void {
  const entering = out.entering.get(traceId);
  if (entering !== undefined) {
    if (atMs < entering.at.getTime()) entering.at = new Date(atMs);
    return;
  }
  const stored = state.enteredMs.get(traceId);
  if (stored !== undefined && atMs < stored) {
    state.enteredMs.set(traceId, atMs);
    out.earlier.set(traceId, atMs);
  }
}

function foldEvent(
  ctx: BatchContext,
  e: DyeEventView,
  index: number,
  state: FoldState,
  out: FoldResult,
): void {
  const { names } = ctx;
  const atMs = ctx.clock.ms(e.tsNs);
  const bucketStart = bucketDate(ctx.buckets, Math.floor(atMs / ctx.bucketMs) * ctx.bucketMs);
  const source = SOURCE_NAMES[e.source] ?? "none";
  const releaseId =
    e.dye === 0 ? undefined : e.releaseId !== "" ? e.releaseId : state.releaseByDye.get(e.dye);
  if (e.dye !== 0 && releaseId === undefined) out.unknownDye += 1;

  if (e.traceId !== "" && releaseId !== undefined) {
    const current = state.cohort.get(e.traceId);
    if (current === undefined) {
      state.cohort.set(e.traceId, releaseId);
      const entry = { traceId: e.traceId, releaseId, dye: e.dye, at: new Date(atMs) };
      out.enteredTraces.push(entry);
      out.entering.set(e.traceId, entry);
    } else if (current === releaseId) dyedAgain(e.traceId, atMs, state, out);
  }
  const isEgress = e.direction === Direction.EGRESS;
  const localAddress = names.address(e.saddr);
  const traceRelease = e.traceId !== "" ? state.cohort.get(e.traceId) : undefined;
  // Every dyed event, and every event of a trace in a cohort: the trace timeline. A dyed event without a
  // trace id (an inherited hop) is stitched to its trace by connection and thread when the timeline is read.
  if (releaseId !== undefined || traceRelease !== undefined) out.traceHops.push(traceHopRow(ctx, e));

  if (!isEgress) return;
  if (e.kind === DyeEventKind.REQUEST) {
    if (releaseId === undefined && (e.dye !== 0 || e.traceId === "")) return;
    const caller = names.caller(e.comm, e.cgroupId, e.sport, localAddress);
    const callee = names.callee(names.address(e.daddr), e.dport);
    if (releaseId !== undefined) {
      bump(out, { releaseId, caller, callee, bucketStart, source }, { expected: 1, dyed: 1 });
    } else if (traceRelease !== undefined) {
      bump(out, { releaseId: traceRelease, caller, callee, bucketStart, source: "none" }, { expected: 1 });
    } else {
      out.pending.push({ traceId: e.traceId, caller, callee, bucketStart, from: ctx, index });
    }
  } else if (e.kind === DyeEventKind.RESPONSE && releaseId !== undefined) {
    bump(
      out,
      { releaseId, caller: "*", callee: names.callee(localAddress, e.sport), bucketStart, source },
      { responses: 1, errors: e.status >= 500 ? 1 : 0 },
    );
  }
}

/** Folds one batch into `out`, skipping events whose (agent, seq) was applied before. */
export function foldDyeBatch(
  batch: DyeBatchView,
  state: FoldState,
  ids: ServiceIdentity,
  bucketMs: number,
  out: FoldResult,
): void {
  let ranges = state.ranges.get(batch.agentId);
  if (!ranges) {
    ranges = [];
    state.ranges.set(batch.agentId, ranges);
  }
  let applied = out.applied.get(batch.agentId);
  if (!applied) {
    applied = { events: 0, duplicates: 0 };
    out.applied.set(batch.agentId, applied);
  }
  const ctx: BatchContext = {
    agentId: batch.agentId,
    batch,
    clock: new BatchClock(batch.bootTimeUnixNano),
    names: new BatchNames(ids, batch.agentId),
    bucketMs,
    buckets: out.buckets,
  };
  const { events } = batch;
  for (let i = 0; i < events.length; i++) {
    const e = events[i]!;
    if (!addSeq(ranges, e.seq)) {
      applied.duplicates += 1;
      continue;
    }
    applied.events += 1;
    foldEvent(ctx, e, i, state, out);
  }
}

/**
 * Pending rows of this batch whose trace entered a cohort later in the same batch become misses, and join
 * the trace's timeline.
 */
export function resolvePendingInBatch(out: FoldResult, state: FoldState): PendingRow[] {
  const still: PendingRow[] = [];
  for (const p of out.pending) {
    const releaseId = state.cohort.get(p.traceId);
    if (releaseId === undefined) {
      still.push(p);
      continue;
    }
    bump(
      out,
      { releaseId, caller: p.caller, callee: p.callee, bucketStart: p.bucketStart, source: "none" },
      { expected: 1 },
    );
    out.traceHops.push(traceHopRow(p.from, p.from.batch.events[p.index]!));
  }
  return still;
}
