// Retention of undyed_hop_requests: rows whose bucket is older than a window, in event time, are deleted in
// bounded chunks inside the dye transactions (so a sweep is as atomic as the batch it rides with). The
// window is measured back from the newest bucket the batch applied, capped at the wall clock so an agent
// with a clock in the future cannot sweep everyone's rows. Event time, not wall time, so that a rebuild
// replaying an old log keeps what the live run kept (see README "Retention").
import type { TransactionSql } from "postgres";

// Timestamps travel as ISO text: the postgres.js client under drizzle leaves Date (de)serialisation to drizzle.

export const DEFAULT_UNDYED_RETENTION_MS = 60 * 60 * 1000;

/** Sweep again once the cut has moved this far (event time): a sweep per minute, not per batch. */
const SWEEP_STEP_MS = 60_000;

export class UndyedRetention {
  /** Everything below this (ms) was deleted by a completed sweep of this process. */
  #sweptBelow = Number.NEGATIVE_INFINITY;

  constructor(
    readonly windowMs: number,
    readonly maxRowsPerSweep = 50_000,
  ) {}

  /** Deletes up to `maxRowsPerSweep` expired rows when due; returns how many it deleted. */
  async sweep(tx: TransactionSql, newestBucketMs: number, nowMs = Date.now()): Promise<number> {
    if (this.windowMs <= 0 || !Number.isFinite(newestBucketMs)) return 0;
    const cut = Math.min(newestBucketMs, nowMs) - this.windowMs;
    if (cut < this.#sweptBelow + SWEEP_STEP_MS) return 0;
    const deleted = await tx`
      delete from undyed_hop_requests where ctid = any(array(
        select ctid from undyed_hop_requests
        where bucket_start < ${new Date(cut).toISOString()}::timestamptz limit ${this.maxRowsPerSweep}))`;
    // A full chunk may have left more behind: the next batch sweeps again.
    if (deleted.count < this.maxRowsPerSweep) this.#sweptBelow = cut;
    return deleted.count;
  }
}
