// Readiness of what the API depends on: Postgres answers a query, Kafka answers a metadata request.
import type { Admin } from "@indigo/bus";
import { type Database, ping } from "@indigo/db";

export interface HealthReport {
  readonly ok: boolean;
  readonly checks: Readonly<Record<string, { ok: boolean; error?: string }>>;
}

export type HealthProbe = () => Promise<HealthReport>;

async function probe(run: () => Promise<unknown>): Promise<{ ok: boolean; error?: string }> {
  try {
    await run();
    return { ok: true };
  } catch (error) {
    return { ok: false, error: error instanceof Error ? error.message : String(error) };
  }
}

export function healthProbe(db: Database, kafkaAdmin: Admin): HealthProbe {
  return async () => {
    const [postgres, kafka] = await Promise.all([
      probe(() => ping(db)),
      probe(() => kafkaAdmin.describeCluster()),
    ]);
    return { ok: postgres.ok && kafka.ok, checks: { postgres, kafka } };
  };
}
