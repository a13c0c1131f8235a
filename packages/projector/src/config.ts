// The projector's settings, from the environment. A setting that does not parse stops the start with its name:
// a window of NaN would otherwise reach the sweeps as an invalid date, batch after batch.
import { CONTRACT_TOPICS, type ProjectorTopics } from "./apply-batch.ts";
import { ServiceIdentity, serviceRulesFile } from "./service-identity.ts";
import { DEFAULT_TRACE_RETENTION_MS, DEFAULT_UNDYED_RETENTION_MS } from "./write/retention.ts";

export interface ProjectorConfig {
  readonly group: string;
  readonly bucketMs: number;
  readonly undyedRetentionMs: number;
  readonly traceRetentionMs: number;
  readonly identity: ServiceIdentity;
  readonly topics: ProjectorTopics;
}

/** A whole number of milliseconds ≥ `min`, or the default when unset. */
function msSetting(
  env: Record<string, string | undefined>,
  name: string,
  fallback: number,
  min: number,
): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < min)
    throw new Error(`${name} must be a whole number of milliseconds ≥ ${min}, got "${raw}"`);
  return value;
}

export function configFromEnv(env: Record<string, string | undefined> = process.env): ProjectorConfig {
  const rulesFile = env.INDIGO_SERVICE_RULES;
  return {
    group: env.INDIGO_PROJECTOR_GROUP ?? "indigo-projector",
    bucketMs: msSetting(env, "INDIGO_COVERAGE_BUCKET_MS", 10_000, 1),
    undyedRetentionMs: msSetting(env, "INDIGO_UNDYED_RETENTION_MS", DEFAULT_UNDYED_RETENTION_MS, 0),
    traceRetentionMs: msSetting(env, "INDIGO_TRACE_RETENTION_MS", DEFAULT_TRACE_RETENTION_MS, 0),
    identity: new ServiceIdentity([], rulesFile ? serviceRulesFile(rulesFile) : undefined),
    // Tests point a projector process at topics of their own; production leaves this unset.
    topics: env.INDIGO_PROJECTOR_TOPICS
      ? (JSON.parse(env.INDIGO_PROJECTOR_TOPICS) as ProjectorTopics)
      : CONTRACT_TOPICS,
  };
}
