// The agent as a daemon (`indigo-agent run` without --standalone): the engine's events → batches → Kafka
// (spooled while Kafka is away), control from Kafka → the engine's maps, AgentStatus every few seconds,
// /healthz and /metrics. stop() flushes the open batch (to Kafka or the spool) and detaches.
// When the engine cannot start (no CAP_BPF/CAP_SYS_ADMIN, verifier rejection, no BTF) the daemon runs in
// degraded mode instead (../degraded/): netfilter marks the L3/L4 rules of `l4Rules`, no event is read or
// shipped (so no coverage is ever claimed), control is not applied (its cohort rules have no netfilter form),
// and /healthz, /metrics and AgentStatus say "degraded" with the reason.
import { hostname } from "node:os";
import { join } from "node:path";
import { createKafka, type Producer } from "@indigo/bus";
import { AgentStatusSchema, toBinary } from "@indigo/proto";
import { type DegradedHandle, type DegradedOptions, startOrDegrade } from "../degraded/degraded.ts";
import type { L4Rule } from "../degraded/l4-rules.ts";
import type { Engine, EngineOptions } from "../engine/engine.ts";
import { Batcher } from "./batcher.ts";
import { bootTimeUnixNano } from "./boot-time.ts";
import { ControlApplier } from "./control.ts";
import { DEFAULT_AGENT_PORT, serveHttp } from "./http.ts";
import { heldProgramIds, programStats } from "./programs.ts";
import { writeSampling } from "./sampling-writer.ts";
import { SeqStore } from "./seq-store.ts";
import { type Compression, Shipper } from "./shipper.ts";
import type { DaemonSnapshot } from "./snapshot.ts";
import { Spool } from "./spool.ts";
import { buildStatus } from "./status.ts";
import { type DaemonTopics, topicsFromEnv } from "./topics.ts";

export const DEFAULT_SPOOL_DIR = "/var/lib/indigo/spool";
export const DEFAULT_SPOOL_MAX_BYTES = 1 << 30;

export interface DaemonOptions {
  readonly agentId: string;
  readonly node?: string;
  readonly engine?: EngineOptions;
  /** L3/L4 rules degraded mode marks through netfilter when the engine cannot start (none by default) */
  readonly l4Rules?: readonly L4Rule[];
  readonly degradedOptions?: DegradedOptions;
  readonly brokers: string[];
  readonly topics?: DaemonTopics;
  readonly spoolDir?: string;
  readonly spoolMaxBytes?: number;
  readonly spoolSegmentBytes?: number;
  readonly statusIntervalMs?: number;
  readonly httpPort?: number;
  readonly compression?: Compression;
  readonly batchMaxEvents?: number;
  readonly batchMaxDelayMs?: number;
  readonly log?: (o: Record<string, unknown>) => void;
}

export class Daemon {
  readonly agentId: string;
  readonly node: string;
  /** the eBPF engine; undefined in degraded mode */
  readonly engine: Engine | undefined;
  /** degraded mode's netfilter marking; undefined in full mode */
  readonly degraded: DegradedHandle | undefined;
  readonly spool: Spool;
  readonly seq: SeqStore;
  readonly shipper: Shipper;
  readonly control: ControlApplier;
  readonly batcher: Batcher;
  readonly topics: DaemonTopics;
  readonly #o: DaemonOptions;
  readonly #log: (o: Record<string, unknown>) => void;
  #http: ReturnType<typeof Bun.serve> | undefined;
  #statusProducer: Producer | undefined;
  #statusTimer: ReturnType<typeof setInterval> | undefined;
  #drained: Promise<void> | undefined;
  #attached = false;
  #received = 0;
  #undecodable = 0;
  #rate = { at: performance.now(), received: 0, perS: 0 };
  #stopped = false;
  #flushedForStop = false;

  private constructor(o: DaemonOptions, engine: Engine | undefined, degraded: DegradedHandle | undefined) {
    this.#o = o;
    this.#log = o.log ?? (() => {});
    this.agentId = o.agentId;
    this.node = o.node ?? hostname();
    this.engine = engine;
    this.degraded = degraded;
    this.#attached = engine !== undefined;
    this.topics = o.topics ?? topicsFromEnv();
    const spoolDir = o.spoolDir ?? DEFAULT_SPOOL_DIR;
    this.spool = Spool.open(spoolDir, {
      maxBytes: o.spoolMaxBytes ?? DEFAULT_SPOOL_MAX_BYTES,
      segmentBytes: o.spoolSegmentBytes,
      log: this.#log,
    });
    this.seq = new SeqStore(join(spoolDir, "next-seq"));
    if (this.seq.resumed.from === "reserved")
      this.#log({
        seq: "continued at the synced reservation: the last stop was not clean and the machine rebooted",
        next: String(this.seq.next),
        skipped: String(this.seq.resumed.skipped),
      });
    this.shipper = new Shipper({
      brokers: o.brokers,
      topic: this.topics.dye,
      key: this.agentId,
      spool: this.spool,
      compression: o.compression,
      log: this.#log,
    });
    this.control = new ControlApplier({
      agentId: this.agentId,
      brokers: o.brokers,
      topic: this.topics.control,
      log: this.#log,
      deadLetter: (d) =>
        this.#sendSide(this.topics.dlq, [
          {
            key: d.key,
            value: d.value ? Buffer.from(d.value) : null,
            headers: {
              "indigo-error": d.error,
              "indigo-topic": this.topics.control,
              "indigo-partition": String(d.partition),
              "indigo-offset": d.offset,
              "indigo-agent": this.agentId,
            },
          },
        ]),
      target: {
        writeRules: (slots) => engine?.writeRules(slots),
        writeSampling: (rates) => {
          if (engine) writeSampling(engine.map("sampling"), rates);
        },
      },
    });
    this.batcher = new Batcher({
      agentId: this.agentId,
      node: this.node,
      bootTimeUnixNano: bootTimeUnixNano(),
      seq: this.seq,
      maxEvents: o.batchMaxEvents,
      maxDelayMs: o.batchMaxDelayMs,
      onBatch: (b) => this.shipper.enqueue(b),
    });
  }

  /**
   * Loads and attaches the engine (or, when it cannot, starts degraded mode), then starts every loop. Until
   * control arrives no rule is in force. Throws only when degraded mode cannot start either.
   */
  static start(o: DaemonOptions): Daemon {
    const started = startOrDegrade(o.engine ?? {}, o.l4Rules ?? [], o.degradedOptions);
    const engine = started.mode === "ebpf" ? started.engine : undefined;
    const degraded = started.mode === "degraded" ? started.handle : undefined;
    let d: Daemon;
    try {
      d = new Daemon(o, engine, degraded);
    } catch (e) {
      if (engine) void engine.stop();
      degraded?.stop();
      throw e;
    }
    d.shipper.start();
    if (degraded) {
      d.#log({ degraded: degraded.status() });
      d.#http = serveHttp(o.httpPort ?? DEFAULT_AGENT_PORT, () => d.snapshot());
      d.#statusTimer = setInterval(() => void d.publishStatus(), o.statusIntervalMs ?? 5000);
      void d.publishStatus();
      return d;
    }
    if (!engine) throw new Error("unreachable: neither engine nor degraded mode");
    d.control.apply(undefined); // no rules, full sampling, until the control topic says otherwise
    d.control.start();
    d.#drained = engine.drain(
      (e) => {
        d.#received++;
        d.batcher.add(e, d.control.releaseOf(e.dye));
      },
      (err) => {
        d.#undecodable++;
        d.#log({ error: `undecodable event: ${String(err)}` });
      },
    );
    d.#http = serveHttp(o.httpPort ?? DEFAULT_AGENT_PORT, () => d.snapshot());
    const every = o.statusIntervalMs ?? 5000;
    d.#statusTimer = setInterval(() => void d.publishStatus(), every);
    return d;
  }

  get httpPort(): number | undefined {
    return this.#http?.port;
  }

  snapshot(): DaemonSnapshot {
    const counters = this.#attached && this.engine ? this.engine.counters() : {};
    const degraded = this.degraded?.status();
    return {
      agentId: this.agentId,
      node: this.node,
      mode: degraded ? "degraded" : "full",
      degraded,
      engineAttached: this.#attached,
      kafkaConnected: this.shipper.connected,
      kafkaError: this.shipper.lastError,
      spooling: this.shipper.spooling,
      counters,
      eventsReceived: this.#received,
      eventsUndecodable: this.#undecodable,
      batchesClosed: this.batcher.batches,
      eventsProduced: this.shipper.sentEvents,
      batchesProduced: this.shipper.sentBatches,
      eventsReplayed: this.shipper.replayedEvents,
      spooledEvents: this.spool.events,
      spoolBytes: this.spool.bytes,
      spoolEventsTotal: this.spool.spooledTotal,
      spoolDroppedEvents: this.spool.droppedEvents,
      spoolCorruptRecords: this.spool.corruptRecords,
      spoolWriteFailures: this.spool.writeFailures,
      // a refusal within the last minute: the disk is still full (the spool makes room by dropping its oldest)
      ...(this.spool.writeError && Date.now() - this.spool.writeErrorAtMs < 60_000
        ? { spoolWriteError: this.spool.writeError }
        : {}),
      lastSeq: this.seq.last,
      lastProducedSeq: this.shipper.lastSentSeq,
      eventRatePerS: this.#rate.perS,
      appliedGeneration: this.control.appliedGeneration,
      controlErrors: this.control.errors,
      sampling: this.control.sampling,
      stopped: this.#flushedForStop,
    };
  }

  /** One AgentStatus to indigo.agent.v1 (best effort: a heartbeat that cannot go out is skipped). */
  async publishStatus(): Promise<void> {
    const now = performance.now();
    const dt = (now - this.#rate.at) / 1000;
    if (dt > 0)
      this.#rate = { at: now, received: this.#received, perS: (this.#received - this.#rate.received) / dt };
    const status = buildStatus(this.snapshot(), await programStats(heldProgramIds()).catch(() => []));
    await this.#sendSide(this.topics.agent, [
      { key: this.agentId, value: Buffer.from(toBinary(AgentStatusSchema, status)) },
    ]).catch(() => {}); // best effort: the next heartbeat says it all again
  }

  /**
   * Status and DLQ messages, on a producer of their own (the event path's is idempotent and spools). A
   * failure throws it away; the next send connects a new one.
   */
  async #sendSide(
    topic: string,
    messages: { key: string; value: Buffer | null; headers?: Record<string, string> }[],
  ): Promise<void> {
    try {
      if (!this.#statusProducer) {
        const p = createKafka(`indigo-agent-status-${this.agentId}`, {
          brokers: this.#o.brokers,
          quiet: true,
        }).producer({
          retry: { retries: 1 },
        });
        await p.connect();
        this.#statusProducer = p;
      }
      await this.#statusProducer.send({ topic, acks: -1, messages });
    } catch (e) {
      const p = this.#statusProducer;
      this.#statusProducer = undefined;
      await p?.disconnect().catch(() => {});
      throw e;
    }
  }

  /** Flushes the open batch to Kafka (or the spool), detaches the engine, stops every loop. Idempotent. */
  async stop(): Promise<Record<string, bigint>> {
    if (this.#stopped) return {};
    this.#stopped = true;
    if (this.#statusTimer) clearInterval(this.#statusTimer);
    const counters = this.engine?.counters() ?? {};
    const degraded = this.degraded?.status();
    await this.engine?.stop();
    await this.#drained;
    this.#attached = false;
    this.batcher.flush();
    this.seq.close(); // the last number taken; a restart after any reboot continues right after it
    await this.shipper.stop();
    this.#flushedForStop = true;
    await this.publishStatus().catch(() => {});
    this.degraded?.stop(); // after the last status, which still says why the agent was degraded
    if (degraded) this.#log({ degradedStopped: { packetsMarked: degraded.packetsMarked } });
    await this.control.stop();
    await this.#statusProducer?.disconnect().catch(() => {});
    this.#http?.stop(true);
    return counters;
  }
}
