import { expect, test } from "bun:test";
import { rampNextStepAt } from "./ramp-schedule.ts";

const at = new Date("2026-11-26T12:00:00Z");
const ramp = [
  { percent: 10, pauseSeconds: 60 },
  { percent: 50, pauseSeconds: 120 },
  { percent: 100, pauseSeconds: 0 },
];

test("due the current step's pause after the last start, resume or step; none at the last step or when not running", () => {
  expect(rampNextStepAt({ state: "running", ramp, rampStep: 0, updatedAt: at })?.toISOString()).toBe(
    "2026-11-26T12:01:00.000Z",
  );
  expect(rampNextStepAt({ state: "running", ramp, rampStep: 1, updatedAt: at })?.toISOString()).toBe(
    "2026-11-26T12:02:00.000Z",
  );
  expect(rampNextStepAt({ state: "running", ramp, rampStep: 2, updatedAt: at })).toBeNull();
  expect(rampNextStepAt({ state: "paused", ramp, rampStep: 0, updatedAt: at })).toBeNull();
  expect(rampNextStepAt({ state: "draft", ramp, rampStep: 0, updatedAt: at })).toBeNull();
  expect(rampNextStepAt({ state: "running", ramp: [], rampStep: 0, updatedAt: at })).toBeNull();
});
