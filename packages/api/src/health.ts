// Readiness of what the API depends on: Postgres answers a query, Kafka answers a metadata request, each
// within a time limit — a dependency that hangs fails its check instead of hanging the probe.
import type { Admin } from "@indigo/bus";
import { type Database, ping } from "@indigo/db";
import { within } from "./within.ts";

export interface HealthReport {
  readonly ok: boolean;
  readonly checks: Readonly<Record<string, { ok: boolean; error?: string }>>;
}

export type HealthProbe = () => Promise<HealthReport>;

async function probe(
  run: () => Promise<unknown>,
  timeoutMs: number,
): Promise<{ ok: boolean; error?: string }> {
  try {
    await within(timeoutMs, run());
    return { ok: true };
  } catch (error) {
    return { ok: false, error: error instanceof Error ? error.message : String(error) };
  }
}

/** `notConnected` says why the API's Kafka clients are not connected yet (see keepConnecting), if they are not. */
export function healthProbe(
  db: Database,
  kafkaAdmin: Admin,
  timeoutMs = 2000,
  notConnected: () => string | undefined = () => undefined,
): HealthProbe {
  return async () => {
    const why = notConnected();
    const [postgres, kafka] = await Promise.all([
      probe(() => ping(db), timeoutMs),
      why === undefined
        ? probe(() => kafkaAdmin.describeCluster(), timeoutMs)
        : { ok: false, error: `not connected yet: ${why}` },
    ]);
    return { ok: postgres.ok && kafka.ok, checks: { postgres, kafka } };
  };
}
