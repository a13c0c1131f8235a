// Wall-clock milliseconds of an event: ⌊(boot time + ts_ns) / 10^6⌋, exactly. BigInt arithmetic per event
// costs more than the rest of folding it, so the usual case (both parts below 2^53) is done in doubles,
// split so that no intermediate leaves the range where they are exact integers.
const NS_PER_MS = 1_000_000;
const SAFE = BigInt(Number.MAX_SAFE_INTEGER);

export class BatchClock {
  readonly #bootNs: bigint;
  /** The boot time's whole milliseconds and the nanoseconds left over; undefined when not exact. */
  readonly #bootMs: number | undefined;
  readonly #bootRestNs: number;

  constructor(bootNs: bigint) {
    this.#bootNs = bootNs;
    const ms = bootNs / 1_000_000n;
    this.#bootMs = ms <= SAFE ? Number(ms) : undefined;
    this.#bootRestNs = Number(bootNs % 1_000_000n);
  }

  ms(tsNs: bigint): number {
    if (this.#bootMs === undefined || tsNs > SAFE) return Number((this.#bootNs + tsNs) / 1_000_000n);
    const ns = Number(tsNs);
    // ⌊ns / 10^6⌋ by a double division may be one off near a multiple; the remainder corrects it.
    let ms = Math.floor(ns / NS_PER_MS);
    let rest = ns - ms * NS_PER_MS;
    if (rest < 0) {
      ms -= 1;
      rest += NS_PER_MS;
    } else if (rest >= NS_PER_MS) {
      ms += 1;
      rest -= NS_PER_MS;
    }
    return this.#bootMs + ms + Math.floor((this.#bootRestNs + rest) / NS_PER_MS);
  }
}
