// Engine events → DyeEventBatch messages, bounded in size (maxEvents) and time (maxDelayMs after the
// first event of a batch). Sequence numbers are taken when a batch closes (SeqStore), so they are
// contiguous across batches and never repeat after a restart.
import type { DyeEvent } from "../events/decode-dye-event.ts";
import { BatchEncoder } from "./dye-event-wire.ts";
import type { SeqStore } from "./seq-store.ts";

export interface EncodedBatch {
  readonly bytes: Uint8Array;
  readonly events: number;
  readonly firstSeq: bigint;
  readonly lastSeq: bigint;
}

export interface BatcherOptions {
  readonly agentId: string;
  readonly node: string;
  readonly bootTimeUnixNano: bigint;
  readonly seq: SeqStore;
  readonly onBatch: (batch: EncodedBatch) => void;
  readonly maxEvents?: number;
  readonly maxDelayMs?: number;
}

export class Batcher {
  readonly #o: BatcherOptions;
  readonly #maxEvents: number;
  readonly #maxDelayMs: number;
  #events: DyeEvent[] = [];
  #releases: string[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  readonly #encoder = new BatchEncoder();
  batches = 0;
  events = 0;

  constructor(o: BatcherOptions) {
    this.#o = o;
    this.#maxEvents = o.maxEvents ?? 2000;
    this.#maxDelayMs = o.maxDelayMs ?? 100;
  }

  add(e: DyeEvent, releaseId: string): void {
    this.#events.push(e);
    this.#releases.push(releaseId);
    if (this.#events.length >= this.#maxEvents) this.flush();
    else if (!this.#timer) this.#timer = setTimeout(() => this.flush(), this.#maxDelayMs);
  }

  /** Closes the open batch (if any) and hands it on. */
  flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    const events = this.#events;
    const releases = this.#releases;
    if (events.length === 0) return;
    this.#events = [];
    this.#releases = [];
    const first = this.#o.seq.take(events.length);
    const bytes = this.#encoder.encode(
      {
        agentId: this.#o.agentId,
        node: this.#o.node,
        bootTimeUnixNano: this.#o.bootTimeUnixNano,
        producedUnixNano: BigInt(Date.now()) * 1_000_000n,
      },
      events,
      first,
      releases,
    );
    this.batches++;
    this.events += events.length;
    this.#o.onBatch({
      bytes,
      events: events.length,
      firstSeq: first,
      lastSeq: first + BigInt(events.length - 1),
    });
  }
}
