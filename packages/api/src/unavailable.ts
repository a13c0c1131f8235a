// Tells a dependency that did not answer from a request that went wrong. The first is a 503 a client or a
// load balancer can retry elsewhere or later; before, it was a 500 "failed inside the API", and a token
// lookup that could not reach the database read as any other failure. Which dependency matters to whoever
// is paged: kafkajs' connection errors carry the same codes (ECONNREFUSED) as the database driver's, and
// were first reported as the database's.

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

// kafkajs errors that mean the broker could not be reached or did not answer in time; others (a retriable
// protocol error such as a leader moving) say so with `retriable`.
const KAFKA_UNREACHABLE = new Set([
  "KafkaJSConnectionError",
  "KafkaJSConnectionClosedError",
  "KafkaJSRequestTimeoutError",
  "KafkaJSBrokerNotFound",
  "KafkaJSMetadataNotLoaded",
  "KafkaJSNumberOfRetriesExceeded",
  "KafkaJSTimeout",
]);

// The one kafkajs failure that is a plain Error: a request on a broker whose connect has not completed
// (broker/index.js). An API that serves while it still connects (main.ts) meets it on every command.
const KAFKAJS_NOT_CONNECTED = "Broker not connected";
const fromKafkajs = (e: Error) => e.name.startsWith("KafkaJS") || e.message === KAFKAJS_NOT_CONNECTED;

export interface Unavailable {
  readonly dependency: "the database" | "Kafka";
  readonly reason: string;
}

const errorsOf = function* (error: unknown): Generator<Error> {
  for (let e: unknown = error; e instanceof Error; e = e.cause) yield e;
};

function kafkaUnavailable(error: unknown): string | undefined {
  for (const e of errorsOf(error)) {
    if (!fromKafkajs(e)) continue;
    if (
      KAFKA_UNREACHABLE.has(e.name) ||
      e.message === KAFKAJS_NOT_CONNECTED ||
      (e as { retriable?: unknown }).retriable === true
    )
      return `${e.name}: ${e.message}`;
  }
  return undefined;
}

function databaseUnavailable(error: unknown): string | undefined {
  for (const e of errorsOf(error)) {
    const code = (e as { code?: unknown }).code;
    if (typeof code !== "string") continue;
    if (CONNECTION_CODES.has(code)) return `${code}: ${e.message}`;
    const state = SERVER_STATES.get(code);
    if (state) return `${state} (${code}: ${e.message})`;
    if (code.startsWith("08")) return `connection failure (${code}: ${e.message})`;
  }
  return undefined;
}

/** Which dependency did not answer and why, when that is what `error` (or a cause of it) says. */
export function unavailable(error: unknown): Unavailable | undefined {
  // Kafka first: its connection errors carry Node's codes too.
  if ([...errorsOf(error)].some(fromKafkajs)) {
    const reason = kafkaUnavailable(error);
    return reason ? { dependency: "Kafka", reason } : undefined;
  }
  const reason = databaseUnavailable(error);
  return reason ? { dependency: "the database", reason } : undefined;
}
