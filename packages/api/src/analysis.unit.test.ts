import { describe, expect, test } from "bun:test";
import { judge } from "./analysis.ts";

const analysis = { coverageFloor: 0.99, errorRateCeiling: 0.05, windowSeconds: 60, minRequests: 10 };
const hop = (caller: string, callee: string, source: string, expected: number, dyed: number) => ({
  caller,
  callee,
  source,
  expected,
  dyed,
  responses: 0,
  errors: 0,
});
const responses = (callee: string, n: number, errors: number) => ({
  caller: "*",
  callee,
  source: "payload",
  expected: 0,
  dyed: 0,
  responses: n,
  errors,
});

describe("judge", () => {
  test("passes when every judged hop is at or above the floor and under the ceiling", () => {
    expect(judge(analysis, [hop("a", "b", "payload", 100, 100), responses("b", 100, 5)])).toEqual({
      ok: true,
      judgedHops: 1,
    });
  });
  test("fails on the hop below the coverage floor, naming it and its figures", () => {
    const v = judge(analysis, [
      hop("a", "b", "payload", 100, 100),
      hop("b", "c", "inherit", 90, 90),
      hop("b", "c", "none", 10, 0),
    ]);
    expect(v).toMatchObject({ ok: false, hop: "b → c", coverage: 0.9 });
    expect(!v.ok && v.reason).toContain("coverage 90.00 % (90/100) on b → c is below the floor 99.00 %");
  });
  test("a coverage failure under a header cohort says what stops such a cohort; other cohorts get no such note", () => {
    const rows = [hop("a", "b", "payload", 100, 100), hop("b", "c", "none", 100, 0)];
    const header = judge(analysis, rows, rows, { header: { name: "x-canary", value: "1" } });
    expect(!header.ok && header.reason).toContain(
      "on b → c is below the floor 99.00 % over 60 s; this is a header cohort (x-canary): b sent requests of cohort traces without the dye",
    );
    const traceId = judge(analysis, rows, rows, { traceIdPattern: "^t-[0-9a-f]{8}" });
    expect(!traceId.ok && traceId.reason).not.toContain("header cohort");
    // an error-rate failure is the gray version's, whatever the cohort
    const errors = judge(analysis, [responses("c", 20, 2)], undefined, {
      header: { name: "x-canary", value: "1" },
    });
    expect(!errors.ok && errors.reason).not.toContain("header cohort");
  });
  test("fails when a gray callee's error rate is above the ceiling", () => {
    const v = judge(analysis, [responses("c", 20, 2)]);
    expect(v).toMatchObject({ ok: false, hop: "* → c", errorRate: 0.1 });
  });
  test("coverage over its rows, gray error rates over the response rows (a longer window) when given", () => {
    // in the grace after a start: no coverage judged, the 5xx of the whole window are
    const v = judge(analysis, [], [hop("a", "c", "none", 20, 0), responses("c", 20, 5)]);
    expect(v).toMatchObject({ ok: false, hop: "* → c", errorRate: 0.25 });
    expect(judge(analysis, [], [hop("a", "c", "none", 20, 0)])).toEqual({ ok: true, judgedHops: 0 });
  });
  test("ignores hops with fewer than minRequests, and says nothing was judged", () => {
    expect(judge(analysis, [hop("a", "b", "none", 9, 0), responses("b", 9, 9)])).toEqual({
      ok: true,
      judgedHops: 0,
    });
    expect(judge(analysis, [])).toEqual({ ok: true, judgedHops: 0 });
  });
  test("blames the broken service, not the callers that passed its errors on", () => {
    // client → a → b → c, c answers 503 and each caller answers 503 in turn.
    const v = judge(analysis, [
      hop("client", "a", "payload", 30, 30),
      hop("a", "b", "payload", 30, 30),
      hop("b", "c", "inherit", 30, 30),
      responses("a", 30, 10),
      responses("b", 30, 10),
      responses("c", 30, 10),
    ]);
    expect(v).toMatchObject({ ok: false, hop: "* → c" });
    expect(!v.ok && v.reason).toBe(
      "analysis: gray error rate 33.33 % (10/30) at c is above the ceiling 5.00 % over 60 s; also above it: a 33.33 % (10/30), b 33.33 % (10/30)",
    );
  });
  test("a blamed service whose callee's responses are not in yet says the errors may start there", () => {
    // client → a → b → c with c broken, c's agent not projected yet: b is the deepest failing service seen.
    const v = judge(analysis, [
      hop("a", "b", "payload", 30, 30),
      hop("b", "c", "inherit", 30, 30),
      responses("a", 30, 10),
      responses("b", 30, 10),
      responses("c", 4, 4),
    ]);
    expect(v).toMatchObject({ ok: false, hop: "* → b" });
    expect(!v.ok && v.reason).toEndWith(
      "; b called c (4 of 30) too, whose responses are not in the window yet: the errors may start there",
    );
  });
  test("a caller failing while what it calls is healthy is the one blamed", () => {
    const v = judge(analysis, [
      hop("a", "b", "payload", 30, 30),
      responses("a", 30, 12),
      responses("b", 30, 1),
    ]);
    expect(v).toMatchObject({ ok: false, hop: "* → a", errorRate: 0.4 });
    expect(!v.ok && v.reason).not.toContain("not in the window yet");
  });
  test("of two failing services that call no failing one, the higher rate; in a cycle, the higher rate", () => {
    const apart = judge(analysis, [
      hop("a", "b", "payload", 30, 30),
      hop("a", "d", "payload", 30, 30),
      responses("b", 30, 6),
      responses("d", 30, 15),
    ]);
    expect(apart).toMatchObject({ ok: false, hop: "* → d", errorRate: 0.5 });
    const cycle = judge(analysis, [
      hop("a", "b", "payload", 30, 30),
      hop("b", "a", "payload", 30, 30),
      responses("a", 30, 6),
      responses("b", 30, 9),
    ]);
    expect(cycle).toMatchObject({ ok: false, hop: "* → b", errorRate: 0.3 });
  });
});
