// Entry point of the API process: wires Postgres and Kafka, listens on 127.0.0.1:INDIGO_API_PORT.
import { createKafka, keepConnecting, TOPICS } from "@indigo/bus";
import { openDatabase } from "@indigo/db";
import { Analyzer } from "./analysis.ts";
import { createApp } from "./app.ts";
import { ReleaseCommands } from "./commands.ts";
import { apiDatabaseConfigFromEnv } from "./database/config.ts";
import { ProjectorProgress } from "./evidence.ts";
import { healthProbe } from "./health.ts";
import { logEnd } from "./projection.ts";
import { renderProjectorMetrics } from "./projector-metrics.ts";
import { releaseLogReader } from "./release-log.ts";
import { SamplingController } from "./sampling.ts";
import { samplingTick } from "./sampling-tick.ts";
import { serveApi } from "./serve.ts";
import { apiSettingsFromEnv } from "./settings.ts";
import { unavailable } from "./unavailable.ts";

const settings = apiSettingsFromEnv();
const dbConfig = apiDatabaseConfigFromEnv();
const database = openDatabase(undefined, 10, dbConfig.session, { connectTimeoutS: dbConfig.connectTimeoutS });
const kafka = createKafka("indigo-api");
const admin = kafka.admin();
const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
// Reads need only Postgres: the API serves at once, and commands are 503s naming Kafka until it is reachable.
const kafkaConnection = keepConnecting(() => Promise.all([admin.connect(), producer.connect()]), {
  reset: () => Promise.allSettled([admin.disconnect(), producer.disconnect()]),
  onFailure: (error, retryInMs) =>
    console.error(`api: kafka not reachable yet (${error}); trying again in ${retryInMs} ms`),
});

const { projectorGroup } = settings;
const sampling = new SamplingController({ budgetPerS: settings.samplingBudgetPerS });
const commands = new ReleaseCommands({
  sampling: () => sampling.rates(),
  db: database.db,
  admin,
  producer,
  topics: { release: TOPICS.release, control: TOPICS.control },
  projectorGroup,
  dyeReuseAfterMs: settings.dyeReuseAfterMs,
  readLog: releaseLogReader(kafka, TOPICS.release, 10_000),
});
const app = createApp({
  health: healthProbe(database.db, admin, dbConfig.healthTimeoutMs, () =>
    kafkaConnection.connected() ? undefined : (kafkaConnection.lastError() ?? "connecting"),
  ),
  requestTimeoutMs: dbConfig.requestTimeoutMs,
  api: { db: database.db, commands },
  agentStaleMs: settings.agentStaleMs,
  moreMetrics: async () =>
    analyzer.metrics() +
    (await renderProjectorMetrics({
      db: database.db,
      admin,
      group: projectorGroup,
      topics: [TOPICS.dye, TOPICS.agent, TOPICS.release],
    })),
});

const server = serveApi(app, {
  hostname: settings.host,
  port: settings.port,
  requestTimeoutMs: dbConfig.requestTimeoutMs,
});
console.error(`api: listening on http://${server.hostname}:${server.port}`);

// Background loops: analysis (automatic rollback, ramp steps) and the sampling controller, one pass at a time.
const log = (line: string) => console.error(`api: ${line}`);
const analyzer = new Analyzer({
  db: database.db,
  commands,
  log,
  graceMs: settings.analysisGraceMs,
  agentStaleMs: settings.agentStaleMs,
  progress: new ProjectorProgress({
    db: database.db,
    group: projectorGroup,
    topics: [TOPICS.dye, TOPICS.agent],
    logEnd: (topic) => logEnd({ db: database.db, admin, group: projectorGroup, topic }),
  }),
});
const every = (ms: number, run: () => Promise<unknown>): ReturnType<typeof setInterval> | undefined => {
  if (ms === 0) return undefined; // 0 disables a loop (e.g. on all but one of several API instances)
  let busy = false;
  return setInterval(() => {
    if (busy) return;
    busy = true;
    run()
      .catch((error: unknown) => {
        const down = unavailable(error);
        log(
          `background pass failed: ${down ? `${down.dependency} did not answer: ${down.reason}` : String(error)}`,
        );
      })
      .finally(() => {
        busy = false;
      });
  }, ms);
};
const loops = [
  every(settings.analysisPeriodMs, () => analyzer.tick()),
  // The agents' desired state after a failed publication, and once at start: see publishPending.
  every(settings.controlRetryMs, () => commands.publishPending()),
  // Polled faster than agents report (every 5 s): a pass without a new status changes nothing (one small
  // SELECT), and a burst's status is acted on within a second of landing instead of up to 5 s later.
  every(settings.samplingPeriodMs, () =>
    samplingTick(database.db, sampling, () => commands.publishControl()),
  ),
];

async function shutdown(): Promise<void> {
  for (const loop of loops) clearInterval(loop);
  kafkaConnection.stop();
  await server.stop();
  await Promise.allSettled([producer.disconnect(), admin.disconnect(), database.close()]);
  process.exit(0);
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
