// One projector run over a sandbox: start, wait until every partition's stored offset reaches the log end,
// stop — what a test does between producing events and reading the projections.
import type { Database } from "@indigo/db";
import { startProjector } from "../projector.ts";
import type { ServiceIdentity } from "../service-identity.ts";
import type { Sandbox } from "./sandbox.ts";

export async function projectUntilCaughtUp(
  sb: Sandbox,
  group: string,
  identity: ServiceIdentity,
  bucketMs: number,
  /** Another database than the sandbox's own, and where the projector's log lines go (nowhere). */
  opts: { readonly db?: Database; readonly log?: (line: string) => void } = {},
): Promise<void> {
  const p = await startProjector({
    kafka: sb.kafka,
    db: opts.db ?? sb.database.db,
    group,
    topics: sb.topics,
    identity,
    bucketMs,
    log: opts.log ?? (() => {}),
  });
  try {
    await p.caughtUp(30_000);
  } finally {
    await p.stop();
  }
}
