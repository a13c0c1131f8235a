// A child process's output as lines, with a wait for the first line that matches: how tests read the
// agent's JSON lines (events on stdout, ready/rules/stopped on stderr) and the chain test its servers' logs.
import type { ChildProcess } from "node:child_process";

/** A stream's lines as they arrive (Bun's ReadableStream or node's Readable), with waiters. */
export class LineTap {
  readonly lines: string[] = [];
  private waiters: (() => void)[] = [];
  private ended = false;
  readonly done: Promise<void>;

  constructor(stream: AsyncIterable<Uint8Array> | undefined | null) {
    this.done = stream ? this.pump(stream) : Promise.resolve();
  }

  private async pump(stream: AsyncIterable<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let rest = "";
    for await (const chunk of stream) {
      rest += decoder.decode(chunk, { stream: true });
      const parts = rest.split("\n");
      rest = parts.pop() ?? "";
      for (const line of parts) this.lines.push(line);
      this.wake();
    }
    if (rest !== "") this.lines.push(rest);
    this.ended = true;
    this.wake();
  }

  private wake(): void {
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) w();
  }

  /** Resolves with the first line (from `from` on) that satisfies pred; rejects on timeout or end of stream. */
  async waitFor(pred: (line: string) => boolean, timeoutMs: number, what: string, from = 0): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.lines.slice(from).find(pred);
      if (hit !== undefined) return hit;
      if (this.ended) throw new Error(`${what}: the stream ended without it`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${what}: not seen within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** The lines that parse as JSON objects. */
  json<T = Record<string, unknown>>(): T[] {
    return this.lines.flatMap((l) => {
      if (!l.startsWith("{")) return [];
      try {
        return [JSON.parse(l) as T];
      } catch {
        return [];
      }
    });
  }
}

export interface ChildLines {
  readonly all: string[];
  /** The first line matching `pred` from line `from` on, waiting for it up to the timeout. */
  readonly next: (pred: (l: string) => boolean, from?: number) => Promise<string>;
}

/** A node child's stream as a LineTap, every wait bounded by timeoutMs. */
export function childLines(child: ChildProcess, stream: "stdout" | "stderr", timeoutMs: number): ChildLines {
  const tap = new LineTap(child[stream]);
  return {
    all: tap.lines,
    next: (pred, from = 0) =>
      tap.waitFor(pred, timeoutMs, `no ${stream} line matched`, from).catch((e: Error) => {
        throw new Error(`${e.message}; got:\n${tap.lines.join("\n")}`);
      }),
  };
}
