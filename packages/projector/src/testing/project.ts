// One projector run over a sandbox: start, wait until every partition's stored offset reaches the log end,
// stop — what a test does between producing events and reading the projections.
import type { Database } from "@indigo/db";
import { startProjector } from "../projector.ts";
import { ServiceIdentity } from "../service-identity.ts";
import type { Sandbox } from "./sandbox.ts";
import { snapshot } from "./snapshot.ts";

export async function projectUntilCaughtUp(
  sb: Sandbox,
  group: string,
  identity: ServiceIdentity,
  bucketMs: number,
  /** Another database than the sandbox's own, and where the projector's log lines go (nowhere). */
  opts: { readonly db?: Database; readonly log?: (line: string) => void; readonly timeoutMs?: number } = {},
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
    await p.caughtUp(opts.timeoutMs ?? 30_000);
  } finally {
    await p.stop();
  }
}

/** The projections of one clean, uninterrupted run over the whole log, in a database of its own: what a run
 * that was disturbed must end with. */
export async function cleanSnapshot(
  sb: Sandbox,
  bucketMs: number,
  /** Names the database and the group; another label gives a second clean run after more was produced. */
  label = "clean",
): Promise<Awaited<ReturnType<typeof snapshot>>> {
  const clean = await sb.extraDatabase(label);
  await projectUntilCaughtUp(sb, `${label}_${sb.id}`, new ServiceIdentity([]), bucketMs, {
    db: clean.handle.db,
    timeoutMs: 120_000,
  });
  return snapshot(clean.handle.db);
}
