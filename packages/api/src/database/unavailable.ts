// Tells a database that did not answer from a request that went wrong. The first is a 503 a client or a
// load balancer can retry elsewhere or later; before, it was a 500 "failed inside the API", and a token
// lookup that could not reach the database read as any other failure.

// Node's and postgres.js' own codes for a connection that could not be made or was lost.
const CONNECTION_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EPIPE",
  "CONNECT_TIMEOUT",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
]);

// SQLSTATEs of a server that cannot serve now, whatever the request.
const SERVER_STATES = new Map([
  ["57P01", "the server is shutting down"],
  ["57P02", "the server crashed"],
  ["57P03", "the server is starting or shutting down"],
  ["53300", "the server has no connection left"],
  ["57014", "a statement ran past the statement timeout"],
  ["25P03", "a transaction sat idle past its timeout"],
]);

/** Why the database did not answer, when that is what `error` (or a cause of it) says; undefined otherwise. */
export function databaseUnavailable(error: unknown): string | undefined {
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code !== "string") continue;
    if (CONNECTION_CODES.has(code)) return `${code}: ${e.message}`;
    const state = SERVER_STATES.get(code);
    if (state) return `${state} (${code}: ${e.message})`;
    if (code.startsWith("08")) return `connection failure (${code}: ${e.message})`;
  }
  return undefined;
}
