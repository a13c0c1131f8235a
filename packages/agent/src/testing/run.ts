// Runs a set-up command to completion: its stdout, or an error that names it and carries its output.
import { spawnSync } from "bun";

export const run = (argv: string[], what = argv.join(" "), input?: string): string => {
  const r = spawnSync(argv, {
    stdin: input === undefined ? "ignore" : new TextEncoder().encode(input),
    stdout: "pipe",
    stderr: "pipe",
  });
  if (r.exitCode !== 0)
    throw new Error(`${what} failed (${r.exitCode}): ${r.stderr.toString()}${r.stdout.toString()}`);
  return r.stdout.toString();
};
