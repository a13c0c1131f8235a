// An API test's world on the real servers: a projector sandbox (fresh database and topics), a control topic
// of its own, an in-process projector so reads see writes, the app wired to them, and one token per role.

import type { OpenAPIHono } from "@hono/zod-openapi";
import { type Producer, waitForTopics } from "@indigo/bus";
import { openDatabase } from "@indigo/db";
import { type RunningProjector, ServiceIdentity, startProjector } from "@indigo/projector";
import { createSandbox, type Sandbox } from "@indigo/projector/testing";
import { createApp } from "../app.ts";
import { createToken, type Role } from "../auth/tokens.ts";
import { ReleaseCommands } from "../commands.ts";
import { renderProjectorMetrics } from "../projector-metrics.ts";
import { releaseLogReader } from "../release-log.ts";
import { SamplingController } from "../sampling.ts";

export interface World {
  readonly sb: Sandbox;
  readonly app: OpenAPIHono;
  readonly commands: ReleaseCommands;
  readonly controlTopic: string;
  readonly projector: RunningProjector;
  readonly projectorGroup: string;
  readonly sampling: SamplingController;
  readonly tokens: Record<Role, string>;
  readonly call: (method: string, path: string, init?: CallInit) => Promise<Response>;
  readonly close: () => Promise<void>;
}

export interface CallInit {
  readonly token?: string | null;
  readonly role?: Role;
  readonly body?: unknown;
  readonly rawBody?: string;
  readonly ifMatch?: string | number;
  readonly headers?: Record<string, string>;
}

export async function createWorld(label: string): Promise<World> {
  const sb = await createSandbox(`api_${label}`);
  const controlTopic = `t.${sb.id}.control`;
  await sb.admin.createTopics({ waitForLeaders: true, topics: [{ topic: controlTopic, numPartitions: 1 }] });
  await waitForTopics(sb.admin, [controlTopic]);
  const group = `g_${sb.id}`;
  // The projector gets a pool of its own, as the separate process it is in production.
  const projectorDb = openDatabase(sb.databaseUrl, 4);
  const projector: RunningProjector = await startProjector({
    kafka: sb.kafka,
    db: projectorDb.db,
    group,
    topics: sb.topics,
    identity: new ServiceIdentity([]),
    bucketMs: 10_000,
    log: () => {},
  });
  const producer: Producer = sb.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const sampling = new SamplingController({ budgetPerS: 50_000 });
  const commands = new ReleaseCommands({
    sampling: () => sampling.rates(),
    db: sb.database.db,
    admin: sb.admin,
    producer,
    topics: { release: sb.topics.release, control: controlTopic },
    projectorGroup: group,
    readLog: releaseLogReader(sb.kafka, sb.topics.release, 10_000),
  });
  const app = createApp({
    health: async () => ({ ok: true, checks: {} }),
    api: { db: sb.database.db, commands },
    moreMetrics: () =>
      renderProjectorMetrics({
        db: sb.database.db,
        admin: sb.admin,
        group,
        topics: [sb.topics.dye, sb.topics.agent, sb.topics.release],
      }),
    addressOf: () => "127.0.0.1",
    log: () => {},
  });
  const tokens = {
    viewer: (await createToken(sb.database.db, "vera-viewer", "viewer")).token,
    operator: (await createToken(sb.database.db, "olga-operator", "operator")).token,
    admin: (await createToken(sb.database.db, "ada-admin", "admin")).token,
  };
  const call = (method: string, path: string, init: CallInit = {}) => {
    const headers: Record<string, string> = { ...init.headers };
    const token = init.token === undefined ? tokens[init.role ?? "operator"] : init.token;
    if (token !== null) headers.authorization = `Bearer ${token}`;
    if (init.ifMatch !== undefined) headers["if-match"] = String(init.ifMatch);
    let body: string | undefined = init.rawBody;
    if (init.body !== undefined) body = JSON.stringify(init.body);
    if (body !== undefined && headers["content-type"] === undefined)
      headers["content-type"] = "application/json";
    return Promise.resolve(app.request(path, { method, headers, ...(body !== undefined ? { body } : {}) }));
  };
  return {
    sb,
    app,
    commands,
    controlTopic,
    projector,
    projectorGroup: group,
    sampling,
    tokens,
    call,
    close: async () => {
      await producer.disconnect();
      await projector.stop();
      await projectorDb.close();
      await sb.admin.deleteTopics({ topics: [controlTopic] }).catch(() => {});
      await sb.close();
    },
  };
}

let samples = 0;
/** A release definition; each call's cohort is a trace-id pattern of its own (t1-…, t2-…), so any number of
 * them can run at once (overlapping cohorts cannot: running-set.ts). */
export const sampleRelease = (over: Record<string, unknown> = {}) => ({
  name: "checkout-v2",
  cohort: { traceIdPattern: `^t${++samples}-[a-f0-9]{8}$` },
  services: [
    { name: "checkout", baseline: "checkout:8080", gray: "checkout-v2:8080" },
    { name: "payment", baseline: "payment:8080" },
  ],
  ...over,
});

/** The commands of another API instance over the world's sandbox (as production builds them in main.ts). */
export function otherInstance(w: World, producer: Producer): ReleaseCommands {
  return new ReleaseCommands({
    db: w.sb.database.db,
    admin: w.sb.admin,
    producer,
    topics: { release: w.sb.topics.release, control: w.controlTopic },
    projectorGroup: w.projectorGroup,
    readLog: releaseLogReader(w.sb.kafka, w.sb.topics.release, 10_000),
  });
}
