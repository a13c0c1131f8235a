// Prometheus text metrics of the API: requests by method, route and status, and their total latency.
import type { MiddlewareHandler } from "hono";
import { routePath } from "hono/route";

export class Metrics {
  private readonly requests = new Map<string, { count: number; seconds: number }>();

  middleware(): MiddlewareHandler {
    const requests = this.requests;
    return async function metricsMiddleware(c, next) {
      const started = performance.now();
      try {
        await next();
      } finally {
        const route = c.res.status === 404 ? "unmatched" : routePath(c);
        const key = `method="${c.req.method}",route="${route}",status="${c.res.status}"`;
        const entry = requests.get(key) ?? { count: 0, seconds: 0 };
        entry.count += 1;
        entry.seconds += (performance.now() - started) / 1000;
        requests.set(key, entry);
      }
    };
  }

  render(): string {
    const lines = [
      "# HELP indigo_api_requests_total HTTP requests answered.",
      "# TYPE indigo_api_requests_total counter",
    ];
    for (const [labels, e] of this.requests) lines.push(`indigo_api_requests_total{${labels}} ${e.count}`);
    lines.push(
      "# HELP indigo_api_request_seconds_total Time spent answering them.",
      "# TYPE indigo_api_request_seconds_total counter",
    );
    for (const [labels, e] of this.requests)
      lines.push(`indigo_api_request_seconds_total{${labels}} ${e.seconds.toFixed(6)}`);
    return `${lines.join("\n")}\n`;
  }
}
