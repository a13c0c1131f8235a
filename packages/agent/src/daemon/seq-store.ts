// The next per-agent sequence number, kept in a small file next to the spool so a restarted agent never
// hands out a number twice. Numbers are taken when a batch is closed and the file is rewritten (write a
// temporary file, rename) before the batch leaves the process: a crash can lose a batch (a real gap that
// consumers see and count), never repeat a number.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

export class SeqStore {
  readonly #file: string;
  #next: bigint;

  constructor(file: string) {
    this.#file = file;
    mkdirSync(dirname(file), { recursive: true });
    this.#next = 1n;
    if (existsSync(file)) {
      const text = readFileSync(file, "utf8").trim();
      if (!/^\d+$/.test(text))
        throw new Error(`failed to read the next sequence number from ${file}: "${text}"`);
      this.#next = BigInt(text);
      if (this.#next < 1n) this.#next = 1n;
    }
  }

  /** The next number to hand out. */
  get next(): bigint {
    return this.#next;
  }

  /** The last number handed out (0 when none yet). */
  get last(): bigint {
    return this.#next - 1n;
  }

  /** Takes `n` numbers and persists the new next; returns the first. */
  take(n: number): bigint {
    const first = this.#next;
    this.#next += BigInt(n);
    const tmp = `${this.#file}.tmp`;
    writeFileSync(tmp, `${this.#next}\n`);
    renameSync(tmp, this.#file);
    return first;
  }
}
