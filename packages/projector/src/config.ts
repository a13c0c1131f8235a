// The projector's settings, from the environment.
import { CONTRACT_TOPICS, type ProjectorTopics } from "./apply-batch.ts";
import { ServiceIdentity, serviceRulesFile } from "./service-identity.ts";
import { DEFAULT_UNDYED_RETENTION_MS } from "./write/retention.ts";

export interface ProjectorConfig {
  readonly group: string;
  readonly bucketMs: number;
  readonly undyedRetentionMs: number;
  readonly identity: ServiceIdentity;
  readonly topics: ProjectorTopics;
}

export function configFromEnv(env: Record<string, string | undefined> = process.env): ProjectorConfig {
  const rulesFile = env.INDIGO_SERVICE_RULES;
  return {
    group: env.INDIGO_PROJECTOR_GROUP ?? "indigo-projector",
    bucketMs: Number(env.INDIGO_COVERAGE_BUCKET_MS ?? 10_000),
    undyedRetentionMs: Number(env.INDIGO_UNDYED_RETENTION_MS ?? DEFAULT_UNDYED_RETENTION_MS),
    identity: new ServiceIdentity([], rulesFile ? serviceRulesFile(rulesFile) : undefined),
    // Tests point a projector process at topics of their own; production leaves this unset.
    topics: env.INDIGO_PROJECTOR_TOPICS
      ? (JSON.parse(env.INDIGO_PROJECTOR_TOPICS) as ProjectorTopics)
      : CONTRACT_TOPICS,
  };
}
