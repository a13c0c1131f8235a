// The projector's settings, from the environment. A setting that does not parse stops the start with its name:
// a window of NaN would otherwise reach the sweeps as an invalid date, batch after batch.
import { msSetting, type PoolOptions, type SessionSettings, sessionSettings, wholeSetting } from "@indigo/db";
import { CONTRACT_TOPICS, type ProjectorTopics } from "./apply-batch.ts";
import { DEFAULT_COHORT_FILTER_MAX_ENTRIES } from "./cohort-filter.ts";
import { ServiceIdentity, serviceRulesFile } from "./service-identity.ts";
import { PROJECTOR_APPLICATION } from "./stuck-sessions.ts";
import { DEFAULT_TRACE_RETENTION_MS, DEFAULT_UNDYED_RETENTION_MS } from "./write/retention.ts";

export interface ProjectorConfig {
  readonly group: string;
  readonly bucketMs: number;
  readonly undyedRetentionMs: number;
  readonly traceRetentionMs: number;
  /** Cohort entries up to which trace ids are filtered before their lookup (cohort-filter.ts); 0: none. */
  readonly cohortFilterMaxEntries: number;
  readonly identity: ServiceIdentity;
  readonly topics: ProjectorTopics;
  /** Postgres settings of the projector's connections: what a frozen instance may hold, and for how long. */
  readonly session: SessionSettings;
  /** A new connection may take this long: a server that accepts and then never answers (a backend killed
   * during authentication, a host frozen mid-handshake) held a batch 30 s, postgres.js' default. */
  readonly pool: PoolOptions;
}

export function configFromEnv(env: Record<string, string | undefined> = process.env): ProjectorConfig {
  const rulesFile = env.INDIGO_SERVICE_RULES;
  return {
    group: env.INDIGO_PROJECTOR_GROUP ?? "indigo-projector",
    bucketMs: msSetting(env, "INDIGO_COVERAGE_BUCKET_MS", 10_000, 1),
    undyedRetentionMs: msSetting(env, "INDIGO_UNDYED_RETENTION_MS", DEFAULT_UNDYED_RETENTION_MS, 0),
    traceRetentionMs: msSetting(env, "INDIGO_TRACE_RETENTION_MS", DEFAULT_TRACE_RETENTION_MS, 0),
    cohortFilterMaxEntries: wholeSetting(
      env,
      "INDIGO_PROJECTOR_COHORT_FILTER_MAX_ENTRIES",
      DEFAULT_COHORT_FILTER_MAX_ENTRIES,
      { min: 0 },
    ),
    identity: new ServiceIdentity([], rulesFile ? serviceRulesFile(rulesFile) : undefined),
    // A projector instance that stops mid-transaction (a hung process, SIGSTOP, a paused VM, a network
    // partition) holds its row locks and the dye lock, which every dye transaction of every instance takes
    // in turn: without limits all of them waited until the server noticed — for a partition, TCP keepalive
    // after two hours by default; for a stopped process, never. Its partitions move to another instance
    // after the Kafka session timeout; the server ends its session once idle in the transaction (between
    // two statements: the JS of a batch takes well under a second) or once a statement has run too long
    // (its longest, a COPY of a 4 MB fetch's rows, takes seconds), and probes a silent peer from 30 s on.
    // A stopped process in the middle of a statement is left to stuck-sessions.ts: its backend waits for the
    // rest, where Postgres acts on no timeout, and the process's kernel answers the probes.
    session: sessionSettings(PROJECTOR_APPLICATION, {
      idleInTransactionTimeoutMs: msSetting(env, "INDIGO_PROJECTOR_IDLE_TX_TIMEOUT_MS", 30_000, 1),
      statementTimeoutMs: msSetting(env, "INDIGO_PROJECTOR_STATEMENT_TIMEOUT_MS", 60_000, 1),
    }),
    pool: {
      connectTimeoutS: Math.ceil(msSetting(env, "INDIGO_PROJECTOR_CONNECT_TIMEOUT_MS", 5_000, 1) / 1000),
    },
    // Tests point a projector process at topics of their own; production leaves this unset.
    topics: env.INDIGO_PROJECTOR_TOPICS
      ? (JSON.parse(env.INDIGO_PROJECTOR_TOPICS) as ProjectorTopics)
      : CONTRACT_TOPICS,
  };
}
