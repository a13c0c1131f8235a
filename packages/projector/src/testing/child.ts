// Runs the real projector entry point as a child process against a sandbox, so tests can SIGKILL it.
import { resolve } from "node:path";
import type { Sandbox } from "./sandbox.ts";

const MAIN = resolve(import.meta.dir, "../main.ts");

export function spawnProjector(
  sb: Sandbox,
  group: string,
  bucketMs: number,
  databaseUrl = sb.databaseUrl,
  env: Record<string, string> = {},
  stderr: "ignore" | "pipe" = "ignore",
) {
  return Bun.spawn(["bun", MAIN, "run"], {
    env: {
      ...process.env,
      ...env,
      INDIGO_DATABASE_URL: databaseUrl,
      INDIGO_PROJECTOR_GROUP: group,
      INDIGO_PROJECTOR_TOPICS: JSON.stringify(sb.topics),
      INDIGO_COVERAGE_BUCKET_MS: String(bucketMs),
    },
    stdout: "ignore",
    stderr,
  });
}
