// Processes a test starts: spawned with stdout and stderr tapped as lines, stopped with a signal and, after a
// grace period, SIGKILL.
import type { Subprocess } from "bun";
import { LineTap } from "./child-lines.ts";

export interface Proc {
  readonly name: string;
  readonly proc: Subprocess<"pipe" | "ignore", "pipe", "pipe">;
  readonly out: LineTap;
  readonly err: LineTap;
}

export const spawnProc = (name: string, argv: string[], stdin: "pipe" | "ignore" = "ignore"): Proc => {
  const proc = Bun.spawn(argv, { stdin, stdout: "pipe", stderr: "pipe" });
  return { name, proc, out: new LineTap(proc.stdout), err: new LineTap(proc.stderr) };
};

/** Sends `signal`, then SIGKILL if the process still runs after graceMs; resolves once it exited, with
 * whether it needed the SIGKILL. Works for Bun's Subprocess and node's ChildProcess alike. */
export const stopWithGrace = async (
  target: { kill(signal: NodeJS.Signals): unknown },
  exited: Promise<unknown>,
  graceMs: number,
  signal: NodeJS.Signals = "SIGTERM",
): Promise<boolean> => {
  let killed = false;
  target.kill(signal);
  const t = setTimeout(() => {
    killed = true;
    target.kill("SIGKILL");
  }, graceMs);
  await exited;
  clearTimeout(t);
  return killed;
};

/** Stops a process we started, if it still runs: SIGTERM (or `signal`), then SIGKILL after graceMs. */
export const stopProc = async (p: Proc | undefined, graceMs = 3000, signal: NodeJS.Signals = "SIGTERM") => {
  if (!p || p.proc.exitCode !== null || p.proc.signalCode !== null) return;
  await stopWithGrace(p.proc, p.proc.exited, graceMs, signal);
};
