// Example for teams consuming Indigo's dye events: decode indigo.dye.v1 and notice gaps and duplicates per
// agent. Run it: `bun packages/bus/src/examples/consume-dye-events.ts [GROUP]` (brokers from INDIGO_KAFKA_BROKERS).
import { DetectionSource, DyeEventBatchSchema, fromBinary } from "@indigo/proto";
import { createKafka } from "../kafka.ts";
import { TOPICS } from "../topics.ts";

export interface SeenEvent {
  readonly agentId: string;
  readonly seq: bigint;
  readonly dye: number;
  readonly source: string;
  readonly traceId: string;
  readonly at: Date;
}

/** Per agent, the next sequence number expected: a higher one is a gap, a lower one a duplicate. */
export class SequenceWatch {
  readonly #next = new Map<string, bigint>();
  gaps = 0n;
  duplicates = 0n;

  observe(agentId: string, seq: bigint): "new" | "duplicate" {
    const next = this.#next.get(agentId) ?? 1n;
    if (seq < next) {
      this.duplicates += 1n;
      return "duplicate";
    }
    if (seq > next) this.gaps += seq - next;
    this.#next.set(agentId, seq + 1n);
    return "new";
  }
}

/** Decodes one Kafka message value of indigo.dye.v1 into flat events, dropping repeats. */
export function decodeDyeMessage(value: Uint8Array, watch: SequenceWatch): SeenEvent[] {
  const batch = fromBinary(DyeEventBatchSchema, value);
  const out: SeenEvent[] = [];
  for (const e of batch.events) {
    if (watch.observe(batch.agentId, e.seq) === "duplicate") continue;
    out.push({
      agentId: batch.agentId,
      seq: e.seq,
      dye: e.dye,
      source: DetectionSource[e.source].toLowerCase(),
      traceId: e.traceId,
      // ts_ns is the node's monotonic clock; boot_time_unix_nano places it in wall time.
      at: new Date(Number((batch.bootTimeUnixNano + e.tsNs) / 1_000_000n)),
    });
  }
  return out;
}

if (import.meta.main) {
  const consumer = createKafka("dye-example").consumer({ groupId: process.argv[2] ?? "dye-example" });
  const watch = new SequenceWatch();
  await consumer.connect();
  await consumer.subscribe({ topic: TOPICS.dye, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      for (const e of decodeDyeMessage(message.value ?? new Uint8Array(), watch))
        console.log(JSON.stringify(e, (_, v) => (typeof v === "bigint" ? String(v) : v)));
    },
  });
}
