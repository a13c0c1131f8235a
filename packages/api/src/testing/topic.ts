// Reads a whole topic (every partition up to its end as measured at the call), for assertions.
import type { Kafka } from "@indigo/bus";

export interface Read {
  readonly key: string | null;
  readonly value: Buffer | null;
  readonly offset: string;
}

export async function readTopic(kafka: Kafka, topic: string, timeoutMs = 15_000): Promise<Read[]> {
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const want = new Map(ends.map((e) => [e.partition, BigInt(e.high)]));
  const total = [...want.values()].reduce((a, b) => a + b, 0n);
  if (total === 0n) return [];
  const out: Read[] = [];
  const consumer = kafka.consumer({ groupId: `read-${topic}-${crypto.randomUUID()}` });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const done = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`read ${out.length} of ${total} messages of ${topic}`)),
      timeoutMs,
    );
    consumer.run({
      eachMessage: async ({ message }) => {
        out.push({ key: message.key?.toString() ?? null, value: message.value, offset: message.offset });
        if (BigInt(out.length) >= total) {
          clearTimeout(timer);
          resolve();
        }
      },
    });
  });
  try {
    await done;
  } finally {
    await consumer.disconnect();
  }
  return out;
}
