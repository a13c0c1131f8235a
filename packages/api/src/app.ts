// The HTTP surface, built from injected dependencies so tests call `app.request()` without a port.
// Middleware order: metrics → body limit → loopback-only (/healthz, /metrics) → deadline and bearer auth
// (/v1/*) → routes. Every error, thrown anywhere, leaves through `onError` as RFC 9457 problem+json; a
// database or broker that does not answer is a 503, and nothing but a fault of the API itself answers 500.
import { OpenAPIHono } from "@hono/zod-openapi";
import type { Database } from "@indigo/db";
import type { Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import type { ZodError } from "zod";
import { bearerAuth, principalCacheFromEnv } from "./auth/index.ts";
import type { ReleaseCommands } from "./commands.ts";
import { deadline } from "./deadline.ts";
import { renderFleetMetrics } from "./fleet-metrics.ts";
import type { HealthProbe } from "./health.ts";
import { loopbackOnly } from "./loopback/index.ts";
import { Metrics } from "./metrics.ts";
import { ProblemError, problemResponse } from "./problem.ts";
import { dashboardRoutes } from "./routes/dashboard.ts";
import { docsRoutes } from "./routes/docs.ts";
import { observeRoutes } from "./routes/observe.ts";
import { releaseRoutes } from "./routes/releases.ts";
import { tokenRoutes } from "./routes/tokens.ts";
import { unavailable } from "./unavailable.ts";

export interface AppDeps {
  readonly health: HealthProbe;
  /** The database and command side; without them only /healthz, /metrics and the docs are served. */
  readonly api?: { readonly db: Database; readonly commands: ReleaseCommands };
  readonly metrics?: Metrics;
  /** More Prometheus text for /metrics, e.g. the projector's lag (renderProjectorMetrics). */
  readonly moreMetrics?: () => Promise<string>;
  /** The client's address (loopback check); defaults to Bun's connection info. */
  readonly addressOf?: (c: Context) => string | undefined;
  /** An agent not heard from for longer is reported `stale` by GET /v1/agents (default 30 s: six of its
   * default 5 s status periods). */
  readonly agentStaleMs?: number;
  /** A /v1 request not answered by then is a 503 (default 20 s; apiDatabaseConfigFromEnv). */
  readonly requestTimeoutMs?: number;
  /** Largest request body in bytes (default 64 KiB). */
  readonly maxBodyBytes?: number;
  readonly log?: (line: string) => void;
}

function validationProblem(error: ZodError, target: string): ProblemError {
  const errors = error.issues.slice(0, 50).map((i) => ({
    field: i.path.length > 0 ? i.path.map(String).join(".") : target,
    message: i.message,
  }));
  const detail = errors.map((e) => `${e.field}: ${e.message}`).join("; ");
  return new ProblemError("validation", 400, `invalid ${target === "json" ? "body" : target}: ${detail}`, {
    errors,
  });
}

const HTTP_KINDS: Record<number, Parameters<typeof problemFor>[0]> = {
  400: "malformed",
  413: "tooLarge",
  415: "unsupportedMedia",
};

function problemFor(kind: "malformed" | "tooLarge" | "unsupportedMedia", status: number, detail: string) {
  return new ProblemError(kind, status, detail);
}

/** 1 while the agents' desired state failed to publish and is retried (ReleaseCommands.publishPending): the
 * agents run on older rules until it is 0 again. */
const controlMetrics = (pending: boolean): string =>
  "# HELP indigo_api_control_publish_pending 1 while publishing the agents' rules failed and is being retried.\n" +
  "# TYPE indigo_api_control_publish_pending gauge\n" +
  `indigo_api_control_publish_pending ${pending ? 1 : 0}\n`;

export function createApp(deps: AppDeps): OpenAPIHono {
  const log = deps.log ?? ((line: string) => console.error(`api: ${line}`));
  const metrics = deps.metrics ?? new Metrics();
  const maxBody = deps.maxBodyBytes ?? 64 * 1024;
  const app = new OpenAPIHono({
    defaultHook: (result) => {
      if (!result.success) throw validationProblem(result.error as ZodError, result.target);
    },
  });

  app.onError((error, c) => {
    if (error instanceof ProblemError) return problemResponse(c, error.problem, error.headers);
    if (error instanceof HTTPException) {
      const kind = HTTP_KINDS[error.status];
      if (kind) {
        const p = problemFor(kind, error.status, error.message || "bad request").problem;
        return problemResponse(c, p);
      }
      return problemResponse(c, {
        type: "about:blank",
        title: error.message || "HTTP error",
        status: error.status,
        detail: error.message || `HTTP ${error.status}`,
      });
    }
    const down = unavailable(error);
    if (down) {
      log(`${down.dependency} unavailable on ${c.req.method} ${c.req.path}: ${down.reason}`);
      const command = c.req.method !== "GET" && c.req.method !== "HEAD";
      const detail = `${down.dependency} did not answer: ${down.reason}${command ? "; read the release before trying the command again" : ""}`;
      return problemResponse(c, new ProblemError("unavailable", 503, detail).problem, { "retry-after": "2" });
    }
    log(
      `internal error on ${c.req.method} ${c.req.path}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
    );
    return problemResponse(
      c,
      new ProblemError("internal", 500, "the request failed inside the API; it is logged").problem,
    );
  });
  app.notFound((c) =>
    problemResponse(c, new ProblemError("notFound", 404, `no route ${c.req.method} ${c.req.path}`).problem),
  );

  app.use("*", metrics.middleware());
  app.use(
    "*",
    bodyLimit({
      maxSize: maxBody,
      onError: () => {
        throw new ProblemError("tooLarge", 413, `request bodies are limited to ${maxBody} bytes`);
      },
    }),
  );
  const local = loopbackOnly(deps.addressOf ? { addressOf: deps.addressOf } : {});
  app.use("/healthz", local);
  app.use("/metrics", local);

  app.get("/healthz", async (c) => {
    const report = await deps.health();
    return c.json(report, report.ok ? 200 : 503);
  });
  app.get("/metrics", async (c) => {
    const more = deps.moreMetrics ? await deps.moreMetrics() : "";
    const control = deps.api ? controlMetrics(deps.api.commands.controlIsPending) : "";
    const fleet = deps.api ? await renderFleetMetrics(deps.api.db, deps.agentStaleMs ?? 30_000) : "";
    return c.text(metrics.render() + control + fleet + more, 200, {
      "content-type": "text/plain; version=0.0.4",
    });
  });
  docsRoutes(app);
  dashboardRoutes(app);

  if (deps.api) {
    app.use("/v1/*", deadline(deps.requestTimeoutMs ?? 20_000));
    const principals = principalCacheFromEnv();
    app.use("/v1/*", bearerAuth({ db: deps.api.db, cache: principals }));
    releaseRoutes(app, deps.api.db, deps.api.commands);
    observeRoutes(app, deps.api.db, deps.agentStaleMs ?? 30_000);
    tokenRoutes(app, deps.api.db, principals, log);
  }
  return app;
}
