// Raw produce throughput of DyeEventBatch messages into the real broker: the ceiling the agent's event
// path works under (agent.events_per_s adds the kernel and the encoder in front of it).
import { CompressionTypes, createKafka } from "@indigo/bus";
import { create, DetectionSource, DyeEventBatchSchema, DyeEventSchema, toBinary } from "@indigo/proto";
import type { Benchmark } from "./benchmark.ts";

const EVENTS_PER_BATCH = 1000;
const BATCHES = 200;

export const benchmarks: Benchmark[] = [
  {
    name: "bus.produce_events_per_s",
    run: async () => {
      const kafka = createKafka("bench-bus");
      const admin = kafka.admin();
      const topic = `indigo.bench.produce.${Date.now()}`;
      await admin.connect();
      await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 6 }] });
      const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
      await producer.connect();
      try {
        const messages = Array.from({ length: BATCHES }, (_, b) => {
          const batch = create(DyeEventBatchSchema, {
            agentId: `agent-${b % 6}`,
            events: Array.from({ length: EVENTS_PER_BATCH }, (_, i) =>
              create(DyeEventSchema, {
                seq: BigInt(b * EVENTS_PER_BATCH + i),
                tsNs: BigInt(Date.now()) * 1_000_000n,
                dye: 7,
                source: DetectionSource.PAYLOAD,
                pid: 1000 + (i % 50),
                comm: "java",
                sport: 40000 + (i % 1000),
                dport: 8080,
                traceId: `t-${(b * EVENTS_PER_BATCH + i).toString(16).padStart(8, "0")}`,
              }),
            ),
          });
          return { key: batch.agentId, value: Buffer.from(toBinary(DyeEventBatchSchema, batch)) };
        });
        const started = performance.now();
        for (let i = 0; i < messages.length; i += 20) {
          await producer.send({
            topic,
            acks: -1,
            compression: CompressionTypes.GZIP,
            messages: messages.slice(i, i + 20),
          });
        }
        const seconds = (performance.now() - started) / 1000;
        return [
          {
            name: "bus.produce_events_per_s",
            value: Math.round((BATCHES * EVENTS_PER_BATCH) / seconds),
            unit: "events/s",
            target: null,
            better: "higher",
            detail: `${BATCHES} batches of ${EVENTS_PER_BATCH} pre-encoded events, gzip, acks=all, idempotent, 20 messages per request`,
          },
        ];
      } finally {
        await producer.disconnect();
        await admin.deleteTopics({ topics: [topic] }).catch(() => {});
        await admin.disconnect();
      }
    },
  },
];
