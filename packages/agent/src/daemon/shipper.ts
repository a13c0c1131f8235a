// Batches → Kafka, or → the spool while Kafka cannot take them, replayed in order when it can.
//
// One loop does every send, so the order per agent holds: while the spool holds anything, new batches are
// appended to it and the loop replays the oldest segment first; only with the spool empty do batches go
// straight to Kafka (many messages per produce request). Batches that queue in memory behind a send that is
// taking long spill to the spool past memoryBytes; if that send then fails its batches are prepended, so
// they are still replayed first. The producer is idempotent (acks=all); after a failure it is thrown away
// and a new one (new producer id) connects when the broker answers again.
import { CompressionTypes, createKafka, type Kafka, type Producer } from "@indigo/bus";
import { DyeEventBatchSchema, fromBinary } from "@indigo/proto";
import type { EncodedBatch } from "./batcher.ts";
import { registerFastGzipCodec } from "./gzip-codec.ts";
import type { Spool, SpoolRecord } from "./spool.ts";

export type Compression = "gzip" | "zstd" | "none";

const CODEC: Record<Compression, CompressionTypes> = {
  gzip: CompressionTypes.GZIP,
  zstd: CompressionTypes.ZSTD,
  none: CompressionTypes.None,
};

export interface ShipperOptions {
  readonly brokers: string[];
  readonly topic: string;
  readonly key: string;
  readonly spool: Spool;
  readonly compression?: Compression;
  /** messages per produce request */
  readonly maxMessagesPerSend?: number;
  /** batches waiting in memory behind an in-flight send before they spill to the spool */
  readonly memoryBytes?: number;
  readonly log?: (o: Record<string, unknown>) => void;
}

export class Shipper {
  readonly #o: ShipperOptions;
  readonly #kafka: Kafka;
  readonly #log: (o: Record<string, unknown>) => void;
  #producer: Producer | undefined;
  #pending: EncodedBatch[] = [];
  #pendingBytes = 0;
  #wake: (() => void) | undefined;
  #stopping = false;
  #abandoned = false;
  #loop: Promise<void> | undefined;
  #backoffMs = 250;
  /** the replay position inside the oldest segment (records already sent) */
  #replay: { id: number; sent: number } | undefined;
  connected = false;
  lastError = "";
  sentBatches = 0;
  sentEvents = 0;
  replayedEvents = 0;
  lastSentSeq = 0n;

  constructor(o: ShipperOptions) {
    this.#o = o;
    this.#kafka = createKafka(`indigo-agent-${o.key}`, { brokers: o.brokers, quiet: true });
    this.#log = o.log ?? (() => {});
    if ((o.compression ?? "gzip") === "gzip") registerFastGzipCodec();
  }

  get spooling(): boolean {
    return !this.#o.spool.empty || !this.connected;
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  enqueue(batch: EncodedBatch): void {
    const spool = this.#o.spool;
    if (!spool.empty || (!this.connected && this.#pending.length === 0 && this.#producer === undefined)) {
      spool.append([record(batch)]);
    } else if (this.#pendingBytes + batch.bytes.length > (this.#o.memoryBytes ?? 64 << 20)) {
      spool.append([record(batch)]);
    } else {
      this.#pending.push(batch);
      this.#pendingBytes += batch.bytes.length;
    }
    this.#wake?.();
  }

  /** Sends what is queued (or spools it when Kafka does not take it within timeoutMs), then disconnects. */
  async stop(timeoutMs = 5000): Promise<void> {
    this.#stopping = true;
    this.#wake?.();
    const done = this.#loop ?? Promise.resolve();
    await Promise.race([done, Bun.sleep(timeoutMs)]);
    this.#abandoned = true;
    // Whatever is still in memory goes to disk; a send still in flight is spooled by the loop when it fails.
    if (this.#pending.length > 0) {
      this.#o.spool.append(this.#pending.map(record));
      this.#pending = [];
      this.#pendingBytes = 0;
    }
    this.#o.spool.close();
    await this.#producer?.disconnect().catch(() => {});
    this.#producer = undefined;
  }

  async #run(): Promise<void> {
    const spool = this.#o.spool;
    while (!this.#abandoned) {
      if (this.#stopping && this.#pending.length === 0 && (spool.empty || !this.connected)) return;
      if (!this.#producer) {
        if (!(await this.#connect())) {
          this.#spillPending();
          if (this.#stopping) return;
          await this.#sleep(this.#backoffMs);
          this.#backoffMs = Math.min(this.#backoffMs * 2, 2000);
          continue;
        }
        this.#backoffMs = 250;
      }
      if (!spool.empty) {
        this.#spillPending();
        await this.#replayStep();
        continue;
      }
      if (this.#pending.length > 0) {
        await this.#sendPending();
        continue;
      }
      if (this.#stopping) return;
      await this.#sleep(1000);
    }
  }

  async #connect(): Promise<boolean> {
    const producer = this.#kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 1000 },
    });
    try {
      await producer.connect();
      this.#producer = producer;
      if (!this.connected) this.#log({ kafka: "connected" });
      this.connected = true;
      return true;
    } catch (e) {
      await producer.disconnect().catch(() => {});
      this.#failed(e);
      return false;
    }
  }

  #failed(e: unknown): void {
    const message = e instanceof Error ? e.message : String(e);
    if (this.connected || message !== this.lastError) this.#log({ kafka: "unreachable", error: message });
    this.lastError = message;
    this.connected = false;
    const producer = this.#producer;
    this.#producer = undefined;
    void producer?.disconnect().catch(() => {});
  }

  async #send(values: Uint8Array[]): Promise<void> {
    const producer = this.#producer;
    if (!producer) throw new Error("no producer");
    await producer.send({
      topic: this.#o.topic,
      acks: -1,
      timeout: 10_000,
      compression: CODEC[this.#o.compression ?? "gzip"],
      messages: values.map((value) => ({
        key: this.#o.key,
        value: Buffer.from(value.buffer, value.byteOffset, value.byteLength),
      })),
    });
  }

  async #sendPending(): Promise<void> {
    const max = this.#o.maxMessagesPerSend ?? 64;
    const chunk = this.#pending.splice(0, max);
    this.#pendingBytes -= chunk.reduce((n, b) => n + b.bytes.length, 0);
    try {
      await this.#send(chunk.map((b) => b.bytes));
      this.sentBatches += chunk.length;
      for (const b of chunk) {
        this.sentEvents += b.events;
        this.lastSentSeq = b.lastSeq;
      }
    } catch (e) {
      this.#failed(e);
      // In front of anything spilled to the spool while this send was in flight.
      if (this.#o.spool.empty) this.#o.spool.append(chunk.map(record));
      else this.#o.spool.prepend(chunk.map(record));
      this.#spillPending();
    }
  }

  async #replayStep(): Promise<void> {
    const spool = this.#o.spool;
    const seg = spool.oldest();
    if (!seg) return;
    if (this.#replay?.id !== seg.id) this.#replay = { id: seg.id, sent: 0 };
    const replay = this.#replay;
    const max = this.#o.maxMessagesPerSend ?? 64;
    while (replay.sent < seg.records.length) {
      if (!spool.has(seg.id)) return; // dropped by the bound meanwhile: counted there
      const chunk = seg.records.slice(replay.sent, replay.sent + max);
      try {
        await this.#send(chunk.map((r) => r.bytes));
      } catch (e) {
        this.#failed(e);
        return;
      }
      replay.sent += chunk.length;
      this.sentBatches += chunk.length;
      const events = chunk.reduce((n, r) => n + r.events, 0);
      this.sentEvents += events;
      this.replayedEvents += events;
      const last = chunk.at(-1);
      const lastSeq = last ? fromBinary(DyeEventBatchSchema, last.bytes).events.at(-1)?.seq : undefined;
      if (lastSeq !== undefined && lastSeq > this.lastSentSeq) this.lastSentSeq = lastSeq;
    }
    spool.remove(seg.id);
    this.#replay = undefined;
    if (spool.empty) this.#log({ spool: "replayed", events: this.replayedEvents });
  }

  #spillPending(): void {
    if (this.#pending.length === 0) return;
    this.#o.spool.append(this.#pending.map(record));
    this.#pending = [];
    this.#pendingBytes = 0;
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = () => {
        this.#wake = undefined;
        done();
      };
    });
  }
}

const record = (b: EncodedBatch): SpoolRecord => ({ bytes: b.bytes, events: b.events });
