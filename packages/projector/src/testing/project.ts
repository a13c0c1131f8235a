// One projector run over a sandbox: start, wait until every partition's stored offset reaches the log end,
// stop — what a test does between producing events and reading the projections.
import { startProjector } from "../projector.ts";
import type { ServiceIdentity } from "../service-identity.ts";
import type { Sandbox } from "./sandbox.ts";

export async function projectUntilCaughtUp(
  sb: Sandbox,
  group: string,
  identity: ServiceIdentity,
  bucketMs: number,
): Promise<void> {
  const p = await startProjector({
    kafka: sb.kafka,
    db: sb.database.db,
    group,
    topics: sb.topics,
    identity,
    bucketMs,
    log: () => {},
  });
  try {
    await p.caughtUp(30_000);
  } finally {
    await p.stop();
  }
}
