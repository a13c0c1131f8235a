// The API process's own settings (the database's are in database/config.ts), read and checked before it
// serves: a value that is not a whole number in range stops the start with the setting's name. Before, each was
// read with Number() where it was used: INDIGO_ANALYSIS_PERIOD_MS=5s gave NaN, which switched the automatic
// rollback off without a word, and a bad grace stopped the API only after it had started listening.
import { msSetting, wholeSetting } from "@indigo/db";
import { DEFAULT_ANALYSIS_GRACE_MS } from "./analysis.ts";

export interface ApiSettings {
  readonly host: string;
  readonly port: number;
  readonly projectorGroup: string;
  /** B of the sampling controller: events per second one agent may send. */
  readonly samplingBudgetPerS: number;
  readonly agentStaleMs: number;
  readonly dyeReuseAfterMs: number;
  readonly analysisGraceMs: number;
  /** Background loops; 0 switches one off (e.g. on all but one of several API instances). */
  readonly analysisPeriodMs: number;
  readonly controlRetryMs: number;
  readonly samplingPeriodMs: number;
}

export function apiSettingsFromEnv(env: Record<string, string | undefined> = process.env): ApiSettings {
  return {
    host: env.INDIGO_API_HOST || "127.0.0.1",
    port: wholeSetting(env, "INDIGO_API_PORT", 7400, { min: 0, max: 65_535 }),
    projectorGroup: env.INDIGO_PROJECTOR_GROUP || "indigo-projector",
    samplingBudgetPerS: wholeSetting(env, "INDIGO_SAMPLING_BUDGET", 50_000, {
      min: 1,
      unit: "events per second",
    }),
    agentStaleMs: msSetting(env, "INDIGO_AGENT_STALE_MS", 30_000, 1),
    dyeReuseAfterMs: msSetting(env, "INDIGO_DYE_REUSE_AFTER_MS", 60_000, 0),
    analysisGraceMs: msSetting(env, "INDIGO_ANALYSIS_GRACE_MS", DEFAULT_ANALYSIS_GRACE_MS, 0),
    analysisPeriodMs: msSetting(env, "INDIGO_ANALYSIS_PERIOD_MS", 5_000, 0),
    controlRetryMs: msSetting(env, "INDIGO_CONTROL_RETRY_MS", 2_000, 0),
    samplingPeriodMs: msSetting(env, "INDIGO_SAMPLING_PERIOD_MS", 1_000, 0),
  };
}
