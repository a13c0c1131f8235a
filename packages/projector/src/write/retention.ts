// Retention of the tables that grow with the traffic: rows older than a window, in event time, are deleted in
// bounded chunks inside the dye transactions, under the dye lock (so a sweep is as atomic as the batch it
// rides with, and never races a cohort entry's move). The window is measured back from the newest bucket the
// batch applied, capped at the wall clock so an agent with a clock in the future cannot sweep everyone's
// rows. Event time, not wall time, so that a rebuild replaying an old log keeps what the live run kept (see
// README "Retention"). Each table has a BRIN index on its time column: rows arrive roughly in time order.
import type { TransactionSql } from "postgres";

// Timestamps travel as ISO text: the postgres.js client under drizzle leaves Date (de)serialisation to drizzle.

export const DEFAULT_UNDYED_RETENTION_MS = 60 * 60 * 1000;
export const DEFAULT_TRACE_RETENTION_MS = 7 * 24 * 60 * 60 * 1000;

/** The swept tables and the time each row is judged by. */
const TIME_COLUMN = {
  undyed_hop_requests: "bucket_start",
  trace_hops: "at",
  cohort_traces: "entered_at",
} as const;
export type RetainedTable = keyof typeof TIME_COLUMN;

/** Sweep again once the cut has moved this far (event time): a sweep per minute, not per batch. */
const SWEEP_STEP_MS = 60_000;

export class Retention {
  /** Everything below this (ms) was deleted by a completed sweep of this process. */
  #sweptBelow = Number.NEGATIVE_INFINITY;

  /** `windowMs` 0 keeps everything. */
  constructor(
    readonly table: RetainedTable,
    readonly windowMs: number,
    readonly maxRowsPerSweep = 50_000,
  ) {
    if (!Number.isSafeInteger(windowMs) || windowMs < 0)
      throw new Error(`retention of ${table}: window must be a whole number of ms ≥ 0, got ${windowMs}`);
  }

  /** Deletes up to `maxRowsPerSweep` expired rows when due; returns how many it deleted. */
  async sweep(tx: TransactionSql, newestBucketMs: number, nowMs = Date.now()): Promise<number> {
    if (this.windowMs === 0 || !Number.isFinite(newestBucketMs)) return 0;
    const cut = Math.min(newestBucketMs, nowMs) - this.windowMs;
    if (cut < this.#sweptBelow + SWEEP_STEP_MS) return 0;
    const table = tx(this.table);
    const time = tx(TIME_COLUMN[this.table]);
    const deleted = await tx`
      delete from ${table} where ctid = any(array(
        select ctid from ${table} where ${time} < ${new Date(cut).toISOString()}::timestamptz
        limit ${this.maxRowsPerSweep}))`;
    // A full chunk may have left more behind: the next batch sweeps again.
    if (deleted.count < this.maxRowsPerSweep) this.#sweptBelow = cut;
    return deleted.count;
  }
}

/** What the projector sweeps: undyed requests after `undyedMs`, timelines and cohort entries after `traceMs`. */
export function projectionRetention(undyedMs: number, traceMs: number): Retention[] {
  return [
    new Retention("undyed_hop_requests", undyedMs),
    new Retention("trace_hops", traceMs),
    new Retention("cohort_traces", traceMs),
  ];
}
