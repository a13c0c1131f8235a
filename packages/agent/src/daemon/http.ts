// /healthz and /metrics on a loopback port (INDIGO_AGENT_PORT, default 7401).
import { renderMetrics } from "./metrics.ts";
import type { DaemonSnapshot } from "./snapshot.ts";

export const DEFAULT_AGENT_PORT = 7401;

export interface Health {
  readonly status: 200 | 503;
  readonly body: {
    ok: boolean;
    mode: string;
    agent_id: string;
    reasons: string[];
    /** degraded mode only: why the eBPF engine could not start, and its class */
    reason?: string;
    cause?: string;
    kafka_connected: boolean;
    spooled_events: number;
  };
}

export const health = (s: DaemonSnapshot): Health => {
  const reasons: string[] = [];
  // Degraded mode is a state the agent chose, not a failure: it is up and marks what L3/L4 rules can
  // express, so /healthz stays 200 and says so (mode "degraded" + reason); monitoring alerts on the mode.
  if (!s.engineAttached && s.mode !== "degraded") reasons.push("the eBPF engine is not attached");
  if (!s.kafkaConnected)
    reasons.push(`Kafka unreachable, spooling${s.kafkaError ? `: ${s.kafkaError}` : ""}`);
  else if (s.spooling) reasons.push(`replaying the spool (${s.spooledEvents} events)`);
  if (s.spoolWriteError)
    reasons.push(`the spool's disk refuses writes, events are dropped: ${s.spoolWriteError}`);
  return {
    status: reasons.length === 0 ? 200 : 503,
    body: {
      ok: reasons.length === 0,
      mode: s.mode,
      agent_id: s.agentId,
      reasons,
      kafka_connected: s.kafkaConnected,
      spooled_events: s.spooledEvents,
      ...(s.degraded ? { reason: s.degraded.reason, cause: s.degraded.cause } : {}),
    },
  };
};

export const serveHttp = (port: number, snapshot: () => DaemonSnapshot): ReturnType<typeof Bun.serve> =>
  Bun.serve({
    hostname: "127.0.0.1",
    port,
    fetch(req) {
      const path = new URL(req.url).pathname;
      if (path === "/healthz") {
        const h = health(snapshot());
        return Response.json(h.body, { status: h.status });
      }
      if (path === "/metrics") {
        return new Response(renderMetrics(snapshot()), {
          headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
        });
      }
      return new Response("not found\n", { status: 404 });
    },
  });
