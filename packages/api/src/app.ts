// The HTTP surface. For now: /healthz. Routes are grouped by resource as the API grows.
import { Hono } from "hono";
import type { HealthProbe } from "./health.ts";

export interface AppDeps {
  readonly health: HealthProbe;
}

export function createApp(deps: AppDeps): Hono {
  const app = new Hono();
  app.get("/healthz", async (c) => {
    const report = await deps.health();
    return c.json(report, report.ok ? 200 : 503);
  });
  return app;
}
