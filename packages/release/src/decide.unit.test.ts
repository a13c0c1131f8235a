// decide, given/when/then: given a history of events, when a command, then events (folded by evolve into the
// expected state) or a rejection of the expected kind. The table covers every state × every command.
import { describe, expect, test } from "bun:test";
import type { ReleaseEvent } from "@indigo/proto";
import {
  COMMAND_TYPES,
  type CommandType,
  decide,
  effectivePercent,
  type ReleaseCommand,
  type ReleaseDefinition,
} from "./decide.ts";
import { evolve, type ReleaseState, type ReleaseStatus } from "./state.ts";

const definition: ReleaseDefinition = {
  name: "checkout-v2",
  dye: 7,
  cohort: { percent: 1 },
  services: [
    { name: "checkout", baseline: "checkout:8080", gray: "checkout-v2:8080" },
    { name: "payment", baseline: "payment:8080" },
  ],
  ramp: [
    { percent: 1, pauseSeconds: 60 },
    { percent: 5, pauseSeconds: 60 },
  ],
  analysis: { coverageFloor: 0.99, errorRateCeiling: 0.01, windowSeconds: 60, minRequests: 10 },
};

const commands: Record<CommandType, ReleaseCommand> = {
  CreateRelease: { type: "CreateRelease", data: definition },
  StartRelease: { type: "StartRelease", data: {} },
  PauseRelease: { type: "PauseRelease", data: { reason: "looking" } },
  ResumeRelease: { type: "ResumeRelease", data: {} },
  AdvanceRamp: { type: "AdvanceRamp", data: {} },
  PromoteRelease: { type: "PromoteRelease", data: {} },
  RollbackRelease: { type: "RollbackRelease", data: { reason: "bad" } },
};

let clock = 0;
const meta = (state: ReleaseState | null, actor = "alice") => ({
  releaseId: "r1",
  actor,
  at: new Date(1_000 * ++clock),
  expectedVersion: state?.version,
});

/** Runs commands through decide and evolve: the history a release in `status` has. */
function given(...steps: CommandType[]): ReleaseState | null {
  let state: ReleaseState | null = null;
  for (const step of steps) {
    const d = decide(commands[step], state, meta(state));
    if (!d.ok) throw new Error(`given ${step}: ${d.rejection.reason}`);
    state = d.events.reduce<ReleaseState | null>((s, e) => evolve(s, e), state);
  }
  return state;
}

const histories: Record<ReleaseStatus | "none", CommandType[]> = {
  none: [],
  draft: ["CreateRelease"],
  running: ["CreateRelease", "StartRelease"],
  paused: ["CreateRelease", "StartRelease", "PauseRelease"],
  promoted: ["CreateRelease", "StartRelease", "PromoteRelease"],
  rolled_back: ["CreateRelease", "RollbackRelease"],
};

type Outcome = ReleaseStatus | "not_found" | "already_exists" | "illegal_transition";

// then: the state after the command, or the rejection's kind.
const table: Record<ReleaseStatus | "none", Record<CommandType, Outcome>> = {
  none: {
    CreateRelease: "draft",
    StartRelease: "not_found",
    PauseRelease: "not_found",
    ResumeRelease: "not_found",
    AdvanceRamp: "not_found",
    PromoteRelease: "not_found",
    RollbackRelease: "not_found",
  },
  draft: {
    CreateRelease: "already_exists",
    StartRelease: "running",
    PauseRelease: "illegal_transition",
    ResumeRelease: "illegal_transition",
    AdvanceRamp: "illegal_transition",
    PromoteRelease: "illegal_transition",
    RollbackRelease: "rolled_back",
  },
  running: {
    CreateRelease: "already_exists",
    StartRelease: "illegal_transition",
    PauseRelease: "paused",
    ResumeRelease: "illegal_transition",
    AdvanceRamp: "running",
    PromoteRelease: "promoted",
    RollbackRelease: "rolled_back",
  },
  paused: {
    CreateRelease: "already_exists",
    StartRelease: "illegal_transition",
    PauseRelease: "illegal_transition",
    ResumeRelease: "running",
    AdvanceRamp: "illegal_transition",
    PromoteRelease: "promoted",
    RollbackRelease: "rolled_back",
  },
  promoted: {
    CreateRelease: "already_exists",
    StartRelease: "illegal_transition",
    PauseRelease: "illegal_transition",
    ResumeRelease: "illegal_transition",
    AdvanceRamp: "illegal_transition",
    PromoteRelease: "illegal_transition",
    RollbackRelease: "illegal_transition",
  },
  rolled_back: {
    CreateRelease: "already_exists",
    StartRelease: "illegal_transition",
    PauseRelease: "illegal_transition",
    ResumeRelease: "illegal_transition",
    AdvanceRamp: "illegal_transition",
    PromoteRelease: "illegal_transition",
    RollbackRelease: "illegal_transition",
  },
};

describe("decide: every state × every command", () => {
  for (const [from, row] of Object.entries(table) as [
    ReleaseStatus | "none",
    Record<CommandType, Outcome>,
  ][]) {
    for (const command of COMMAND_TYPES) {
      const expected = row[command];
      test(`given ${from}, when ${command}, then ${expected}`, () => {
        const state = given(...histories[from]);
        const d = decide(commands[command], state, meta(state, "bob"));
        if (d.ok) {
          const after = d.events.reduce<ReleaseState | null>((s, e) => evolve(s, e), state);
          expect(after?.status).toBe(expected as ReleaseStatus);
          expect(after?.version).toBe((state?.version ?? 0) + 1);
          expect(d.events.every((e: ReleaseEvent) => e.actor === "bob")).toBe(true);
        } else {
          expect(d.rejection.kind).toBe(expected as "not_found");
          expect(d.rejection.reason.length).toBeGreaterThan(10);
        }
      });
    }
  }
});

describe("decide: details", () => {
  test("a stale or missing expected version is a version conflict, before the transition is judged", () => {
    const state = given("CreateRelease", "StartRelease")!;
    for (const expectedVersion of [1, 3, undefined]) {
      const d = decide(commands.PromoteRelease, state, { ...meta(state), expectedVersion });
      expect(d.ok).toBe(false);
      if (!d.ok) {
        expect(d.rejection).toMatchObject({ kind: "version_conflict", actual: 2, expected: expectedVersion });
      }
    }
    const promoted = given("CreateRelease", "StartRelease", "PromoteRelease")!;
    const stale = decide(commands.StartRelease, promoted, { ...meta(promoted), expectedVersion: 1 });
    expect(!stale.ok && stale.rejection.kind).toBe("version_conflict");
  });

  test("an illegal transition says why", () => {
    const state = given("CreateRelease", "StartRelease", "PromoteRelease")!;
    const d = decide(commands.RollbackRelease, state, meta(state));
    expect(!d.ok && d.rejection.reason).toBe("cannot roll back release r1: it was promoted and is finished");
  });

  test("the ramp advances step by step and stops at its last step", () => {
    const state = given("CreateRelease", "StartRelease")!;
    expect(effectivePercent(state)).toBe(1);
    const stepped = given("CreateRelease", "StartRelease", "AdvanceRamp")!;
    expect(stepped.rampStep).toBe(1);
    expect(effectivePercent(stepped)).toBe(5);
    const d = decide(commands.AdvanceRamp, stepped, meta(stepped));
    expect(!d.ok && d.rejection.reason).toContain("last ramp step (5 %)");
  });

  test("an automatic rollback carries the failing hop and figures", () => {
    const state = given("CreateRelease", "StartRelease")!;
    const d = decide(
      {
        type: "RollbackRelease",
        data: { reason: "coverage below floor", automatic: true, hop: "a → b", coverage: 0.5 },
      },
      state,
      meta(state, "analysis"),
    );
    expect(d.ok).toBe(true);
    const kind = d.ok ? d.events[0]?.kind : undefined;
    expect(kind?.case).toBe("rolledBack");
    if (kind?.case === "rolledBack")
      expect(kind.value).toMatchObject({ automatic: true, hop: "a → b", coverage: 0.5 });
  });

  const invalid: [string, Partial<ReleaseDefinition>, string][] = [
    ["a blank name", { name: "  " }, "name"],
    ["dye 0", { dye: 0 }, "dye"],
    ["two matchers", { cohort: { percent: 1, sni: ".x" } }, "cohort"],
    ["no services", { services: [] }, "services"],
    [
      "a service twice",
      {
        services: [
          { name: "a", baseline: "a:1" },
          { name: "a", baseline: "a:2" },
        ],
      },
      "services.1.name",
    ],
    ["a ramp on a pattern cohort", { cohort: { traceIdPattern: "^t" } }, "ramp"],
    [
      "a decreasing ramp",
      {
        ramp: [
          { percent: 5, pauseSeconds: 1 },
          { percent: 1, pauseSeconds: 1 },
        ],
      },
      "ramp.1.percent",
    ],
  ];
  for (const [name, change, field] of invalid) {
    test(`CreateRelease refuses ${name}`, () => {
      const d = decide({ type: "CreateRelease", data: { ...definition, ...change } }, null, meta(null));
      expect(!d.ok && d.rejection).toMatchObject({ kind: "invalid", field });
    });
  }

  test("created with a header cohort and no analysis round-trips through evolve", () => {
    const d = decide(
      {
        type: "CreateRelease",
        data: {
          ...definition,
          cohort: { header: { name: "x-lane", value: "gray" } },
          ramp: [],
          analysis: null,
        },
      },
      null,
      meta(null),
    );
    const state = d.ok ? d.events.reduce<ReleaseState | null>((s, e) => evolve(s, e), null) : null;
    expect(state).toMatchObject({
      cohort: { header: { name: "x-lane", value: "gray" } },
      analysis: null,
      status: "draft",
    });
    expect(state?.services[1]).toEqual({ name: "payment", baseline: "payment:8080" });
  });
});
