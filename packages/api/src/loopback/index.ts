// Answers only clients on the loopback interface (/healthz, /metrics are unauthenticated); anyone else gets
// the 404 an unknown route gets, so the endpoints are not even revealed.
import type { Context, MiddlewareHandler } from "hono";
import { getConnInfo } from "hono/bun";
import { ProblemError } from "../problem.ts";

export interface LoopbackOnlyOptions {
  /** The client's address; by default Bun's, from the server the request came through. */
  readonly addressOf?: (c: Context) => string | undefined;
}

const bunAddress = (c: Context): string | undefined => {
  try {
    return getConnInfo(c).remote.address;
  } catch {
    return undefined;
  }
};

export const isLoopback = (address: string | undefined): boolean =>
  address !== undefined &&
  (address.startsWith("127.") || address === "::1" || address.startsWith("::ffff:127."));

export function loopbackOnly(options: LoopbackOnlyOptions = {}): MiddlewareHandler {
  const addressOf = options.addressOf ?? bunAddress;
  return async function loopbackOnlyMiddleware(c, next) {
    if (!isLoopback(addressOf(c)))
      throw new ProblemError("notFound", 404, `no route ${c.req.method} ${c.req.path}`);
    await next();
  };
}
