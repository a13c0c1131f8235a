// A stream of dye events as agents produce it: round after round, one DyeEventBatch per agent, keyed by the
// agent id (a0, a1, …) so each agent's batches stay in order on one partition.
import { dyeBatch, type Ev } from "./events.ts";
import type { Sandbox } from "./sandbox.ts";

export async function produceAgentBatches(
  sb: Sandbox,
  agents: number,
  rounds: number,
  events: (agent: number, round: number) => Ev[],
): Promise<void> {
  const producer = sb.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    for (let r = 0; r < rounds; r++) {
      await producer.send({
        topic: sb.topics.dye,
        messages: Array.from({ length: agents }, (_, a) => ({
          key: `a${a}`,
          value: dyeBatch(`a${a}`, events(a, r)),
        })),
      });
    }
  } finally {
    await producer.disconnect();
  }
}
