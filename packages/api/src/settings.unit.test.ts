import { expect, test } from "bun:test";
import { apiSettingsFromEnv } from "./settings.ts";

test("defaults when unset or empty", () => {
  expect(apiSettingsFromEnv({ INDIGO_API_PORT: "" })).toEqual({
    host: "127.0.0.1",
    port: 7400,
    projectorGroup: "indigo-projector",
    samplingBudgetPerS: 50_000,
    agentStaleMs: 30_000,
    dyeReuseAfterMs: 60_000,
    analysisGraceMs: 10_000,
    analysisPeriodMs: 5_000,
    controlRetryMs: 2_000,
    samplingPeriodMs: 1_000,
  });
});

test("values are taken; 0 switches a loop off", () => {
  const s = apiSettingsFromEnv({
    INDIGO_API_PORT: "7500",
    INDIGO_ANALYSIS_PERIOD_MS: "0",
    INDIGO_SAMPLING_BUDGET: "9000",
  });
  expect([s.port, s.analysisPeriodMs, s.samplingBudgetPerS]).toEqual([7500, 0, 9000]);
});

test("anything else stops the start, naming the setting: a NaN period used to switch the analysis off", () => {
  expect(() => apiSettingsFromEnv({ INDIGO_ANALYSIS_PERIOD_MS: "5s" })).toThrow(
    'INDIGO_ANALYSIS_PERIOD_MS must be a whole number of milliseconds ≥ 0, got "5s"',
  );
  expect(() => apiSettingsFromEnv({ INDIGO_API_PORT: "70000" })).toThrow(
    'INDIGO_API_PORT must be a whole number from 0 to 65535, got "70000"',
  );
  expect(() => apiSettingsFromEnv({ INDIGO_SAMPLING_BUDGET: "0" })).toThrow(
    'INDIGO_SAMPLING_BUDGET must be a whole number of events per second ≥ 1, got "0"',
  );
  expect(() => apiSettingsFromEnv({ INDIGO_AGENT_STALE_MS: "-1" })).toThrow("INDIGO_AGENT_STALE_MS");
});
