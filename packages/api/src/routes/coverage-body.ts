// A coverage answer is the same bytes for every reader of one release and window until it is recomputed, so
// it is serialised once per computation, not once per request: JSON.stringify of ~100 hops was most of what a
// cached read still cost. Only the echo of the request's own `from`/`to` differs between readers; it is
// spliced in front. The ETag names the exact bytes (computation × echo), so a poller can revalidate for a 304.

/** One computation's answer, serialised: the JSON members after `releaseId, from, to` (no braces). */
export interface CoverageBody {
  readonly members: string;
  /** Hash of `members`, base 36. */
  readonly tag: string;
  /** When the rows were read (ms since the epoch), for the `Age` header. */
  readonly at: number;
}

export function coverageBody(fields: Record<string, unknown>, at: number): CoverageBody {
  const members = JSON.stringify(fields).slice(1, -1);
  return { members, tag: Bun.hash(members).toString(36), at };
}

/** The response body and its ETag for one request. */
export function coverageResponse(
  cached: CoverageBody,
  releaseId: string,
  from: string | null,
  to: string | null,
): { readonly body: string; readonly etag: string } {
  const head = JSON.stringify({ releaseId, from, to }).slice(0, -1);
  const body = cached.members === "" ? `${head}}` : `${head},${cached.members}}`;
  return { body, etag: `"${cached.tag}.${Bun.hash(head).toString(36)}"` };
}

/** If-None-Match (a list, or `*`) names this ETag; weak comparison, as RFC 9110 asks for GET. */
export function notModified(ifNoneMatch: string | undefined, etag: string): boolean {
  if (ifNoneMatch === undefined) return false;
  if (ifNoneMatch.trim() === "*") return true;
  return ifNoneMatch.split(",").some((t) => t.trim().replace(/^W\//, "") === etag);
}
