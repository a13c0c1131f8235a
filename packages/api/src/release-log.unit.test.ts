// foldReleaseEvent applies logged events as the projector does: in version order, repeats skipped, and an
// event that cannot be decoded or cannot follow its release's state skipped instead of ending the fold.
import { expect, test } from "bun:test";
import { type ReleaseEvent, ReleaseEventSchema, toBinary } from "@indigo/proto";
import { decide, evolve, type ReleaseCommand, type ReleaseState } from "@indigo/release";
import { foldReleaseEvent } from "./release-log.ts";

let clock = 0;
/** The events `command` makes from `state`, and the state after them. */
function step(releaseId: string, state: ReleaseState | null, command: ReleaseCommand) {
  const d = decide(command, state, {
    releaseId,
    actor: "alice",
    at: new Date(1_000 * ++clock),
    expectedVersion: state?.version,
  });
  if (!d.ok) throw new Error(d.rejection.reason);
  const next = d.events.reduce<ReleaseState | null>((s, e) => evolve(s, e), state);
  return { events: d.events, state: next };
}

const bytes = (e: ReleaseEvent) => toBinary(ReleaseEventSchema, e);
const create: ReleaseCommand = {
  type: "CreateRelease",
  data: {
    name: "checkout-v2",
    dye: 3,
    cohort: { traceIdPattern: "^t-[a-f0-9]{8}$" },
    services: [{ name: "checkout", baseline: "checkout:8080" }],
    ramp: [],
    analysis: null,
  },
};

test("folds in version order; a repeat, an undecodable message and an event that cannot follow are skipped", () => {
  const created = step("r1", null, create);
  const started = step("r1", created.state, { type: "StartRelease", data: {} });
  const rolledBack = step("r1", started.state, { type: "RollbackRelease", data: { reason: "bad" } });
  // decided on the created state, so it cannot follow a rollback: what a lost race would have logged
  const paused = step("r1", started.state, { type: "PauseRelease", data: { reason: "late" } });
  const other = step("r2", null, create);

  const states = new Map<string, ReleaseState>();
  const log: (Uint8Array | null)[] = [
    ...created.events.map(bytes),
    ...started.events.map(bytes),
    ...started.events.map(bytes), // repeated delivery
    new Uint8Array([0xff, 0xff, 0xff]), // not a ReleaseEvent
    null,
    ...rolledBack.events.map(bytes),
    ...other.events.map(bytes),
  ];
  for (const value of log) foldReleaseEvent(states, value);
  expect(states.get("r1")).toEqual(rolledBack.state ?? undefined);
  expect(states.get("r1")?.status).toBe("rolled_back");
  expect(states.get("r2")?.status).toBe("draft");

  // The pause carries version 3, already taken by the rollback: a repeat by its number, skipped.
  for (const e of paused.events) foldReleaseEvent(states, bytes(e));
  expect(states.get("r1")?.status).toBe("rolled_back");
  // An event for a release whose creation is not in the log cannot follow: skipped, the fold goes on.
  const orphan = step("r3", null, create);
  const orphanStart = step("r3", orphan.state, { type: "StartRelease", data: {} });
  for (const e of orphanStart.events) foldReleaseEvent(states, bytes(e));
  expect(states.has("r3")).toBe(false);
});
