// `bun packages/projector/src/main.ts [run | rebuild [--follow]]`
//   run      consume the topics into the projections until SIGTERM/SIGINT
//   rebuild  drop the projections, replay the topics from the beginning, exit when caught up
//            (--follow: keep running afterwards)
import { createKafka } from "@indigo/bus";
import { openDatabase } from "@indigo/db";
import { configFromEnv } from "./config.ts";
import { startProjector } from "./projector.ts";
import { assertGroupIdle, dropProjections } from "./rebuild.ts";
import { reapStuckSessions } from "./stuck-sessions.ts";

const [command = "run", ...flags] = process.argv.slice(2);
const config = configFromEnv();
const kafka = createKafka("indigo-projector");
const { session, pool, ...options } = config;
const REAP_EVERY_MS = 5_000;
const database = openDatabase(undefined, 10, session, pool);

async function main(): Promise<void> {
  if (command !== "run" && command !== "rebuild")
    throw new Error(`unknown command ${command}: use run or rebuild`);
  if (command === "rebuild") {
    const admin = kafka.admin();
    await admin.connect();
    try {
      await assertGroupIdle(admin, options.group);
    } finally {
      await admin.disconnect();
    }
    await dropProjections(database.db, options.group);
    console.error("projector: projections dropped; replaying from the beginning");
  }
  const projector = await startProjector({ kafka, db: database.db, ...options });
  const reaper = setInterval(() => {
    reapStuckSessions(database.db, session.statement_timeout)
      .then((pids) => {
        for (const pid of pids)
          console.error(
            `projector: ended backend ${pid}: its client stopped in the middle of a statement, past the statement timeout`,
          );
      })
      .catch(() => {}); // the database is away: the batches' own retries say so
  }, REAP_EVERY_MS);
  const shutdown = async () => {
    clearInterval(reaper);
    await projector.stop();
    await database.close();
    process.exit(0);
  };
  process.on("SIGTERM", shutdown);
  process.on("SIGINT", shutdown);
  console.error(`projector: consuming as group ${options.group}`);
  if (command === "rebuild" && !flags.includes("--follow")) {
    await projector.caughtUp(60 * 60 * 1000);
    console.error("projector: rebuild caught up");
    await shutdown();
  }
}

main().catch(async (error: unknown) => {
  console.error(`projector: error: ${error instanceof Error ? error.message : String(error)}`);
  await database.close();
  process.exit(1);
});
