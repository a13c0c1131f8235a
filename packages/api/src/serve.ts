// The API on a port. Bun closes a connection whose request has not been answered within its idle timeout
// (10 s by default) without a response: a request waiting on a database that does not answer got a dropped
// connection at 10 s instead of its 503 at the request deadline. The idle timeout is set past the deadline.
import type { OpenAPIHono } from "@hono/zod-openapi";

const BUN_IDLE_MAX_S = 255;

export function idleTimeoutFor(requestTimeoutMs: number): number {
  return Math.min(BUN_IDLE_MAX_S, Math.ceil(requestTimeoutMs / 1000) + 10);
}

export function serveApi(
  app: OpenAPIHono,
  opts: { readonly hostname: string; readonly port: number; readonly requestTimeoutMs: number },
): ReturnType<typeof Bun.serve> {
  return Bun.serve({
    hostname: opts.hostname,
    port: opts.port,
    idleTimeout: idleTimeoutFor(opts.requestTimeoutMs),
    fetch: (request, server) => app.fetch(request, { server }),
  });
}
