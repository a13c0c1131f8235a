// Applies release events: the aggregate is rebuilt from its stored history with `evolve`, the event is
// appended to the history and the current-state row replaced. Repeats (version already applied) are skipped;
// events that cannot follow the state are refused, for the dead-letter topic.
import { type Database, schema } from "@indigo/db";
import { fromJson, type JsonValue, type ReleaseEvent, ReleaseEventSchema, toJson } from "@indigo/proto";
import { evolve, type ReleaseState } from "@indigo/release";
import { asc, eq } from "drizzle-orm";

type Tx = Parameters<Parameters<Database["transaction"]>[0]>[0];

export type ReleaseApplyOutcome = "applied" | "duplicate";

async function currentState(tx: Tx, releaseId: string): Promise<ReleaseState | null> {
  const rows = await tx
    .select({ data: schema.releaseEvents.data })
    .from(schema.releaseEvents)
    .where(eq(schema.releaseEvents.releaseId, releaseId))
    .orderBy(asc(schema.releaseEvents.version));
  return rows.reduce<ReleaseState | null>(
    (s, r) => evolve(s, fromJson(ReleaseEventSchema, r.data as JsonValue)),
    null,
  );
}

/** Throws EvolveError when the event cannot follow the release's state. */
export async function applyReleaseEvent(tx: Tx, event: ReleaseEvent): Promise<ReleaseApplyOutcome> {
  const state = await currentState(tx, event.releaseId);
  if (state !== null && Number(event.version) <= state.version) return "duplicate";
  const next = evolve(state, event);
  await tx.insert(schema.releaseEvents).values({
    releaseId: event.releaseId,
    version: next.version,
    kind: event.kind.case ?? "unknown",
    actor: event.actor,
    at: next.updatedAt,
    data: toJson(ReleaseEventSchema, event),
  });
  const row = {
    id: next.id,
    name: next.name,
    state: next.status,
    version: next.version,
    dye: next.dye,
    cohort: next.cohort,
    services: next.services,
    ramp: next.ramp,
    analysis: next.analysis,
    rampStep: next.rampStep,
    stateReason: next.reason,
    createdAt: next.createdAt,
    updatedAt: next.updatedAt,
  };
  await tx.insert(schema.releases).values(row).onConflictDoUpdate({ target: schema.releases.id, set: row });
  return "applied";
}
