// Entry point of the API process: wires Postgres and Kafka, listens on 127.0.0.1:INDIGO_API_PORT.
import { createKafka } from "@indigo/bus";
import { openDatabase } from "@indigo/db";
import { createApp } from "./app.ts";
import { healthProbe } from "./health.ts";

const port = Number(process.env.INDIGO_API_PORT ?? 7400);
const database = openDatabase();
const admin = createKafka("indigo-api").admin();
await admin
  .connect()
  .catch((error: unknown) => console.error(`api: kafka not reachable yet: ${String(error)}`));

const server = Bun.serve({
  hostname: "127.0.0.1",
  port,
  fetch: createApp({ health: healthProbe(database.db, admin) }).fetch,
});
console.error(`api: listening on http://127.0.0.1:${server.port}`);

async function shutdown(): Promise<void> {
  await server.stop();
  await Promise.allSettled([admin.disconnect(), database.close()]);
  process.exit(0);
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
