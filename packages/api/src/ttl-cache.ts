// Answers that change only when the projector writes, asked for many times a second (dashboards polling the
// same coverage window): fresh for `ttlMs`; after that the previous answer is still served while one refresh
// runs (so no request waits behind it), and an answer older than 2 × ttlMs is never served. One computation
// in flight per key; oldest entries evicted first.
export class TtlCache<V> {
  readonly #entries = new Map<string, { at: number; value: Promise<V>; refreshing?: boolean }>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries = 1000,
  ) {}

  get(key: string, compute: () => Promise<V>): Promise<V> {
    const now = Date.now();
    const hit = this.#entries.get(key);
    if (hit && now - hit.at < this.ttlMs) return hit.value;
    if (hit && now - hit.at < 2 * this.ttlMs) {
      if (!hit.refreshing) {
        hit.refreshing = true;
        const next = compute();
        next.then(
          () => this.#entries.set(key, { at: Date.now(), value: next }),
          () => {
            hit.refreshing = false;
          },
        );
      }
      return hit.value;
    }
    const value = compute();
    this.#entries.delete(key);
    this.#entries.set(key, { at: now, value });
    // A failed computation is not remembered.
    value.catch(() => this.#entries.delete(key));
    while (this.#entries.size > this.maxEntries) {
      const oldest = this.#entries.keys().next().value;
      if (oldest === undefined) break;
      this.#entries.delete(oldest);
    }
    return value;
  }
}

/**
 * Coverage counts buckets *starting* in [from, to): rounding both up to a bucket boundary selects the same
 * buckets, and makes "the last 5 minutes" asked at different instants of one bucket the same cache key.
 */
export function alignUp(at: Date | undefined, bucketMs: number): number | undefined {
  return at === undefined ? undefined : Math.ceil(at.getTime() / bucketMs) * bucketMs;
}
