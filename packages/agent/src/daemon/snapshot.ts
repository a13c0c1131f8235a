// What the daemon knows about itself at one instant: the one input of AgentStatus, /metrics and /healthz.
import type { EventClass } from "@indigo/proto";
import type { DegradedStatus } from "../degraded/degraded.ts";

export interface DaemonSnapshot {
  readonly agentId: string;
  readonly node: string;
  /** "full": the eBPF engine runs; "degraded": it could not start, netfilter marks L3/L4 rules only */
  readonly mode: "full" | "degraded";
  /** degraded mode's own status (reason, cause, backend, rule counters); absent in full mode */
  readonly degraded?: DegradedStatus;
  readonly engineAttached: boolean;
  readonly kafkaConnected: boolean;
  readonly kafkaError: string;
  /** batches are going to the spool (Kafka unreachable or the spool still replaying) */
  readonly spooling: boolean;
  readonly counters: Readonly<Record<string, bigint>>;
  /** events read from the ring buffer */
  readonly eventsReceived: number;
  readonly eventsUndecodable: number;
  readonly batchesClosed: number;
  /** events and batches Kafka acknowledged (direct and replayed) */
  readonly eventsProduced: number;
  readonly batchesProduced: number;
  readonly eventsReplayed: number;
  /** events waiting in the spool, and bytes */
  readonly spooledEvents: number;
  readonly spoolBytes: number;
  readonly spoolEventsTotal: number;
  readonly spoolDroppedEvents: number;
  readonly spoolCorruptRecords: number;
  /** writes the spool's disk refused (full, over quota, failing), and its error if one came in the last minute */
  readonly spoolWriteFailures: number;
  readonly spoolWriteError?: string;
  /** last seq handed out (batched) and last seq Kafka acknowledged */
  readonly lastSeq: bigint;
  readonly lastProducedSeq: bigint;
  readonly eventRatePerS: number;
  readonly appliedGeneration: bigint;
  readonly controlErrors: number;
  readonly sampling: ReadonlyMap<EventClass, number>;
  /** stop() has flushed the last batch (to Kafka or the spool): the status that says so is its last */
  readonly stopped: boolean;
}
