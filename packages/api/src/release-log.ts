// The release aggregates folded from indigo.release.v1 itself, for when the projection is behind the log (the
// projector stopped, stuck, or far behind). The log is the source of truth: stopping a release must not wait
// for the projector, and the rules published to the agents must not come from a projection that has not seen
// the latest commands (a rolled-back release's rule would come back).
import { randomUUID } from "node:crypto";
import type { Kafka } from "@indigo/bus";
import { fromBinary, ReleaseEventSchema } from "@indigo/proto";
import { EvolveError, evolve, type ReleaseState } from "@indigo/release";
import { within } from "./within.ts";

/** Every release in the log up to `ends` (next offset per partition, exclusive), by id. */
export type ReadReleaseLog = (ends: ReadonlyMap<number, bigint>) => Promise<Map<string, ReleaseState>>;

/**
 * Folds one logged event into `states` the way the projector applies it: at its release's version + 1, a
 * repeat skipped; an event that cannot be decoded or cannot follow its release's state is skipped (the
 * projector sends it to the dead-letter topic).
 */
export function foldReleaseEvent(states: Map<string, ReleaseState>, value: Uint8Array | null): void {
  if (!value) return;
  let event: ReturnType<typeof fromBinary<typeof ReleaseEventSchema>>;
  try {
    event = fromBinary(ReleaseEventSchema, value);
  } catch {
    return;
  }
  const state = states.get(event.releaseId) ?? null;
  if (state !== null && Number(event.version) <= state.version) return;
  try {
    states.set(event.releaseId, evolve(state, event));
  } catch (error) {
    if (!(error instanceof EvolveError)) throw error;
  }
}

/**
 * Reads the release topic from its beginning to `ends` with a consumer of a group of its own (nothing is
 * committed; the empty group is left for the broker to forget), within `timeoutMs`.
 */
export function releaseLogReader(kafka: Kafka, topic: string, timeoutMs: number): ReadReleaseLog {
  return async (ends) => {
    const states = new Map<string, ReleaseState>();
    const remaining = new Map([...ends].filter(([, end]) => end > 0n));
    if (remaining.size === 0) return states;
    const consumer = kafka.consumer({ groupId: `indigo-api-release-log-${randomUUID()}` });
    let reached = () => {};
    const done = new Promise<void>((resolve) => {
      reached = resolve;
    });
    try {
      await within(
        timeoutMs,
        (async () => {
          await consumer.connect();
          await consumer.subscribe({ topics: [topic], fromBeginning: true });
          await consumer.run({
            autoCommit: false,
            eachBatch: async ({ batch }) => {
              const end = remaining.get(batch.partition);
              if (end === undefined) return;
              for (const m of batch.messages) {
                const offset = BigInt(m.offset);
                if (offset < end) foldReleaseEvent(states, m.value);
                if (offset + 1n >= end) remaining.delete(batch.partition);
              }
              if (remaining.size === 0) reached();
            },
          });
          await done;
        })(),
        () =>
          new Error(
            `the release log was not read within ${timeoutMs} ms (partitions left: ${[...remaining.keys()].join(", ")})`,
          ),
      );
      return states;
    } finally {
      await consumer.disconnect().catch(() => {});
    }
  };
}
