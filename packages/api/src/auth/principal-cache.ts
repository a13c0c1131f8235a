// Verified tokens, remembered briefly: every API request carries a token, and looking it up in `api_tokens`
// cost a Postgres round trip per request (the largest share of a cached coverage read). A token found valid
// is trusted for `ttlMs` (INDIGO_TOKEN_CACHE_MS, default 5 s), so a token revoked in the database
// (`revoked_at`) stops working within that time (at once in the process that revoked it: forget). Unknown or revoked tokens are never remembered: a token
// created a moment ago works at once. Concurrent requests with one token share a single lookup.
import type { Principal } from "./tokens.ts";

export class PrincipalCache {
  readonly #entries = new Map<string, { at: number; principal: Promise<Principal | null> }>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries = 10_000,
  ) {}

  /** `key` is the token's SHA-256 (the raw token is not kept); `lookup` asks the database. */
  get(key: string, lookup: () => Promise<Principal | null>): Promise<Principal | null> {
    if (!(this.ttlMs > 0)) return lookup();
    const now = Date.now();
    const hit = this.#entries.get(key);
    if (hit && now - hit.at < this.ttlMs) return hit.principal;
    const principal = lookup();
    this.#entries.delete(key);
    this.#entries.set(key, { at: now, principal });
    const forget = () => {
      if (this.#entries.get(key)?.principal === principal) this.#entries.delete(key);
    };
    principal.then((p) => p ?? forget(), forget);
    while (this.#entries.size > this.maxEntries) {
      const oldest = this.#entries.keys().next().value;
      if (oldest === undefined) break;
      this.#entries.delete(oldest);
    }
    return principal;
  }

  /** A token revoked through this process: refused here at once, not after the rest of its time. */
  forget(key: string): void {
    this.#entries.delete(key);
  }
}
