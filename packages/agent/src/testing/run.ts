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

/**
 * The same without blocking the event loop, for commands run while something in this process must keep going
 * (an engine draining its ring, a daemon's status loop): its stdout, or an error naming it with its stderr.
 */
export async function runAsync(argv: string[]): Promise<string> {
  const proc = Bun.spawn(argv, { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  if (code !== 0) throw new Error(`${argv.join(" ")} exited ${code}: ${err.trim()}`);
  return out;
}
