// A child process's output as lines, with a wait for the first line that matches: how tests read the
// agent's JSON lines (events on stdout, ready/rules/stopped on stderr).
import type { ChildProcess } from "node:child_process";

export interface ChildLines {
  readonly all: string[];
  /** The first line matching `pred` from line `from` on, waiting for it up to the timeout. */
  readonly next: (pred: (l: string) => boolean, from?: number) => Promise<string>;
}

export function childLines(child: ChildProcess, stream: "stdout" | "stderr", timeoutMs: number): ChildLines {
  const all: string[] = [];
  let buf = "";
  const waiters: { pred: (l: string) => boolean; resolve: (l: string) => void }[] = [];
  child[stream]?.on("data", (d: Buffer) => {
    buf += d.toString();
    const parts = buf.split("\n");
    buf = parts.pop() ?? "";
    for (const l of parts) {
      all.push(l);
      for (const w of waiters.splice(0)) w.pred(l) ? w.resolve(l) : waiters.push(w);
    }
  });
  return {
    all,
    next: (pred, from = 0) => {
      const seen = all.slice(from).find(pred);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        waiters.push({ pred, resolve });
        setTimeout(() => reject(new Error(`no ${stream} line matched; got:\n${all.join("\n")}`)), timeoutMs);
      });
    },
  };
}
