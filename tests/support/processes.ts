// Finds processes by what they run and where their state lives, reading /proc directly.
import { readdirSync, readFileSync } from "node:fs";

export interface ProcessInfo {
  readonly pid: number;
  readonly argv: readonly string[];
  readonly env: ReadonlyMap<string, string>;
}

function readNulSeparated(path: string): string[] {
  try {
    return readFileSync(path, "utf8")
      .split("\0")
      .filter((s) => s.length > 0);
  } catch {
    return []; // the process exited while we looked
  }
}

export function listProcesses(): ProcessInfo[] {
  const out: ProcessInfo[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const argv = readNulSeparated(`/proc/${entry}/cmdline`);
    if (argv.length === 0) continue;
    const env = new Map<string, string>();
    for (const pair of readNulSeparated(`/proc/${entry}/environ`)) {
      const eq = pair.indexOf("=");
      if (eq > 0) env.set(pair.slice(0, eq), pair.slice(eq + 1));
    }
    out.push({ pid: Number(entry), argv, env });
  }
  return out;
}
