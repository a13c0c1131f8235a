// A request's deadline: past it the client gets a 503 problem instead of waiting on a dependency (Postgres,
// or Kafka for a command) that does not answer. The work itself is not cancelled (a statement sent cannot be taken back from here; the server's
// statement timeout ends it): a command past its deadline may still commit, so the problem says to read
// the release before trying again, and If-Match makes a blind retry of a command that did land a 409.
import type { MiddlewareHandler } from "hono";
import { ProblemError } from "./problem.ts";
import { within } from "./within.ts";

export function deadline(ms: number): MiddlewareHandler {
  return async function deadlineMiddleware(c, next) {
    const read = c.req.method === "GET" || c.req.method === "HEAD";
    await within(
      ms,
      next(),
      () =>
        new ProblemError(
          "unavailable",
          503,
          read
            ? `no answer within ${ms} ms: the database is slow or not answering`
            : `no answer within ${ms} ms: the database or Kafka is slow or not answering; the command may still take effect, read the release before trying again`,
          {},
          { "retry-after": "2" },
        ),
    );
  };
}
