// kafkajs 2.2.4 re-armed a 1 ms timer on every connection forever once a request had been answered
// (kafkajs#1556): an idle projector took 5 % of a core, and so would every node's agent. The patch in
// patches/kafkajs@2.2.4.patch arms it only while a request waits in the queue or a throttle runs.
import { expect, test } from "bun:test";
import { createKafka } from "./kafka.ts";

test("connected kafkajs clients with nothing to do arm no timers", async () => {
  const kafka = createKafka("test-idle-client");
  const producer = kafka.producer();
  const admin = kafka.admin();
  await Promise.all([producer.connect(), admin.connect()]);
  try {
    // A request answered on each connection (connect asks for metadata): the loop started after that.
    await admin.listTopics();
    const original = globalThis.setTimeout;
    let armed = 0;
    const counting = ((...args: Parameters<typeof setTimeout>) => {
      armed += 1;
      return original(...args);
    }) as typeof setTimeout;
    globalThis.setTimeout = counting;
    try {
      await new Promise<void>((resolve) => original(resolve, 1000));
    } finally {
      globalThis.setTimeout = original;
    }
    // Unpatched: about a thousand per second per connection.
    expect(armed).toBeLessThan(20);
  } finally {
    await Promise.all([producer.disconnect(), admin.disconnect()]);
  }
}, 30_000);
