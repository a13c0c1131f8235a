// given events → then state, and the transitions evolve refuses.
import { describe, expect, test } from "bun:test";
import { create, ReleaseEventSchema } from "@indigo/proto";
import { EvolveError, evolve, type ReleaseState } from "./state.ts";

type Kind = Parameters<typeof create<typeof ReleaseEventSchema>>[1] extends infer I
  ? I extends { kind?: infer K }
    ? K
    : never
  : never;

const event = (version: number, kind: Kind) =>
  create(ReleaseEventSchema, {
    releaseId: "r1",
    version: BigInt(version),
    timeUnixNano: BigInt(version) * 1_000_000_000n,
    actor: "ci",
    kind,
  });

const created = event(1, {
  case: "created",
  value: {
    name: "checkout-v2",
    dye: 7,
    cohort: { match: { case: "traceIdPattern", value: "^t-[a-f0-9]{8}" } },
    services: [
      { name: "checkout", baseline: "checkout:8080", gray: "checkout-v2:8080" },
      { name: "payment", baseline: "payment:8080", gray: "" },
    ],
    ramp: [{ percentBasisPoints: 100, pauseSeconds: 60 }],
  },
});

const fold = (events: ReturnType<typeof event>[]): ReleaseState | null =>
  events.reduce<ReleaseState | null>((s, e) => evolve(s, e), null);

describe("evolve", () => {
  test("created → draft with the definition; a service without gray has none", () => {
    const state = fold([created])!;
    expect(state.status).toBe("draft");
    expect(state.version).toBe(1);
    expect(state.cohort).toEqual({ traceIdPattern: "^t-[a-f0-9]{8}" });
    expect(state.services).toEqual([
      { name: "checkout", baseline: "checkout:8080", gray: "checkout-v2:8080" },
      { name: "payment", baseline: "payment:8080" },
    ]);
    expect(state.ramp).toEqual([{ percent: 1, pauseSeconds: 60 }]);
  });

  test("started, paused, resumed, promoted walk the lifecycle", () => {
    const state = fold([
      created,
      event(2, { case: "started", value: {} }),
      event(3, { case: "paused", value: { reason: "looking" } }),
      event(4, { case: "resumed", value: {} }),
      event(5, { case: "promoted", value: {} }),
    ])!;
    expect(state.status).toBe("promoted");
    expect(state.version).toBe(5);
    expect(state.updatedAt).toEqual(new Date(5000));
  });

  test("rolled back by analysis keeps the reason", () => {
    const state = fold([
      created,
      event(2, { case: "started", value: {} }),
      event(3, { case: "rolledBack", value: { reason: "coverage 0.5 < 0.99 on a → b", automatic: true } }),
    ])!;
    expect(state.status).toBe("rolled_back");
    expect(state.reason).toBe("coverage 0.5 < 0.99 on a → b");
  });

  const refused: [string, ReturnType<typeof event>[], string][] = [
    ["an event before creation", [event(1, { case: "started", value: {} })], "has no ReleaseCreated"],
    ["creation twice", [created, created], "created twice"],
    ["a version gap", [created, event(3, { case: "started", value: {} })], "event version 3 does not follow"],
    [
      "promote a draft",
      [created, event(2, { case: "promoted", value: {} })],
      "promoted cannot follow state draft",
    ],
    [
      "resume a running release",
      [created, event(2, { case: "started", value: {} }), event(3, { case: "resumed", value: {} })],
      "resumed cannot follow state running",
    ],
    [
      "start after promotion",
      [
        created,
        event(2, { case: "started", value: {} }),
        event(3, { case: "promoted", value: {} }),
        event(4, { case: "started", value: {} }),
      ],
      "started cannot follow state promoted",
    ],
  ];
  for (const [name, events, message] of refused) {
    test(`refuses ${name}`, () => {
      expect(() => fold(events)).toThrow(EvolveError);
      expect(() => fold(events)).toThrow(message);
    });
  }
});
