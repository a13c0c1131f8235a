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
  /** Postgres settings of the projector's connections: what a frozen instance may hold, and for how long. */
  readonly session: {
    readonly idle_in_transaction_session_timeout: number;
    readonly statement_timeout: number;
  };
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
    // A projector instance that stops mid-transaction (SIGSTOP, a paused VM, a partition that leaves its
    // TCP connection half open) holds its row locks and the dye lock, which every dye transaction of every
    // instance takes in turn: without a limit all of them waited until the server noticed the dead client
    // (TCP keepalive: two hours by default). Its partitions move to another instance after the Kafka
    // session timeout; the server ends its session after these (idle in transaction; or statement, when it
    // froze in the middle of a COPY, whose backend then waits for data), and the batch is applied again by
    // whoever holds the partition. The JS between two statements of a batch takes well under a second, and
    // its longest statement (a COPY of a 4 MB fetch's rows) seconds.
    session: {
      idle_in_transaction_session_timeout: msSetting(env, "INDIGO_PROJECTOR_IDLE_TX_TIMEOUT_MS", 30_000, 1),
      statement_timeout: msSetting(env, "INDIGO_PROJECTOR_STATEMENT_TIMEOUT_MS", 60_000, 1),
    },
    // Tests point a projector process at topics of their own; production leaves this unset.
    topics: env.INDIGO_PROJECTOR_TOPICS
      ? (JSON.parse(env.INDIGO_PROJECTOR_TOPICS) as ProjectorTopics)
      : CONTRACT_TOPICS,
  };
}
