// The per-event tables as binary COPY data, straight from the fold's rows; a batch has few buckets, so
// their timestamps are converted once.

import { encodedEvent } from "../decode/dye-batch.ts";
import type { EnteredTrace, PendingRow, TraceHopRow } from "../fold/dye-events.ts";
import { sliced } from "../turns.ts";
import { BinaryRows } from "./binary-rows.ts";
import { bucketOrder } from "./pg-hash.ts";

export const COHORT_COLUMNS = ["trace_id", "release_id", "dye", "entered_at"] as const;

export function cohortRows(entered: readonly EnteredTrace[]): Buffer {
  const out = new BinaryRows(entered.length * 64);
  for (const t of entered)
    out.row(4).text(t.traceId).text(t.releaseId).int4(t.dye).timestamptz(t.at.getTime());
  return out.end();
}

export const PENDING_COLUMNS = [
  "trace_id",
  "caller",
  "callee",
  "bucket_start",
  "agent_id",
  "boot_ns",
  "event",
] as const;

export async function pendingRows(rows: readonly PendingRow[]): Promise<Buffer> {
  const out = new BinaryRows(rows.length * 200);
  await sliced(
    rows,
    (p) => {
      const { batch } = p.from;
      out.row(7).text(p.traceId).text(p.caller).text(p.callee).timestamptz(p.bucketStart.getTime());
      out.text(batch.agentId).int8(batch.bootTimeUnixNano).bytea(encodedEvent(batch, p.index));
    },
    256,
  );
  // Sent in the order of the trace id's hash index buckets: half the server time of random order.
  return out.endInOrder(bucketOrder(rows, (r) => r.traceId));
}

export const TRACE_HOP_COLUMNS = [
  "trace_id",
  "agent_id",
  "seq",
  "at",
  "ts_ns",
  "service",
  "local",
  "peer",
  "cookie",
  "pid",
  "tid",
  "kind",
  "direction",
  "dye",
  "source",
  "method",
  "path",
  "status",
] as const;

export async function traceHopRows(rows: readonly TraceHopRow[]): Promise<Buffer> {
  const out = new BinaryRows(rows.length * 200);
  await sliced(
    rows,
    (h) => {
      out.row(18).text(h.traceId).text(h.agentId).int8(h.seq).timestamptz(h.at.getTime()).int8(h.tsNs);
      out.text(h.service).text(h.local).text(h.peer).int8(h.cookie).int4(h.pid).int4(h.tid).text(h.kind);
      out.text(h.direction).int4(h.dye).text(h.source).text(h.method).text(h.path).int4(h.status);
    },
    256,
  );
  return out.end();
}
