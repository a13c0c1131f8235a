// An app over a world's sandbox with some of its dependencies replaced (a database or a broker reached
// through a relay the test controls), and a caller that sends the operator's token and If-Match: 1.
import type { OpenAPIHono } from "@hono/zod-openapi";
import type { Admin, Producer } from "@indigo/bus";
import type { Database } from "@indigo/db";
import { createApp } from "../app.ts";
import { ReleaseCommands } from "../commands.ts";
import type { HealthProbe } from "../health.ts";
import { SamplingController } from "../sampling.ts";
import type { World } from "./world.ts";

export interface ApiWith {
  readonly app: OpenAPIHono;
  readonly commands: ReleaseCommands;
  readonly call: (method: string, path: string) => Promise<Response>;
}

export function apiWith(
  world: World,
  deps: {
    readonly db: Database;
    readonly admin: Admin;
    /** Connected. */
    readonly producer: Producer;
    readonly health?: HealthProbe;
    readonly requestTimeoutMs: number;
    readonly dyeReuseAfterMs?: number;
  },
): ApiWith {
  const commands = new ReleaseCommands({
    sampling: () => new SamplingController({ budgetPerS: 50_000 }).rates(),
    db: deps.db,
    admin: deps.admin,
    producer: deps.producer,
    topics: { release: world.sb.topics.release, control: world.controlTopic },
    projectorGroup: world.projectorGroup,
    ...(deps.dyeReuseAfterMs !== undefined ? { dyeReuseAfterMs: deps.dyeReuseAfterMs } : {}),
  });
  const app = createApp({
    health: deps.health ?? (async () => ({ ok: true, checks: {} })),
    api: { db: deps.db, commands },
    requestTimeoutMs: deps.requestTimeoutMs,
    addressOf: () => "127.0.0.1",
    log: () => {},
  });
  const call = (method: string, path: string) =>
    Promise.resolve(
      app.request(path, {
        method,
        headers: { authorization: `Bearer ${world.tokens.operator}`, "if-match": "1" },
      }),
    );
  return { app, commands, call };
}
