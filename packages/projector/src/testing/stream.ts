// A stream of dye events as agents produce it: round after round, one DyeEventBatch per agent, keyed by the
// agent id (a0, a1, …) so each agent's batches stay in order on one partition.
import { DetectionSource } from "@indigo/proto";
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

/**
 * Batches in which every agent sees every trace (hops on different nodes), so a trace's events span
 * partitions and which of them is projected first differs between runs — the tables must not. Trace t holds
 * seqs [t·hops, (t+1)·hops); one trace in `cohortEvery` is dyed, except the hops whose seq is a multiple of
 * `missEvery` (misses); each node sees a hop a little later than the previous one.
 */
export function tracesAcrossAgents(o: {
  readonly eventsPerBatch: number;
  readonly hopsPerTrace: number;
  readonly cohortEvery: number;
  readonly missEvery: number;
  readonly dye: number;
  readonly releaseId: string;
  readonly tracePrefix: string;
}): (agent: number, batch: number) => Ev[] {
  return (agent, batch) =>
    Array.from({ length: o.eventsPerBatch }, (_, i) => {
      const seq = batch * o.eventsPerBatch + i + 1;
      const trace = Math.floor(seq / o.hopsPerTrace);
      const dyed = trace % o.cohortEvery === 0 && seq % o.missEvery !== 0;
      return {
        seq,
        atMs: seq * 3 + agent,
        dye: dyed ? o.dye : 0,
        releaseId: dyed ? o.releaseId : "",
        source: dyed ? DetectionSource.PAYLOAD : DetectionSource.UNSPECIFIED,
        comm: `svc${seq % 4}`,
        sport: 20000 + (seq % 1000),
        dport: 8000 + (seq % 3),
        traceId: `${o.tracePrefix}${trace}`,
      };
    });
}
