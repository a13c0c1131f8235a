// `bun packages/bus/src/cli/ensure-topics.ts [--wait SECONDS]`: ./dev's Kafka health check and topic set-up.
// Exits 1 when the broker stays unreachable or a topic disagrees with the contract.
import { ensureTopics, waitForBroker } from "../ensure-topics.ts";
import { createKafka } from "../kafka.ts";

const waitIndex = process.argv.indexOf("--wait");
const waitSeconds = waitIndex > 0 ? Number(process.argv[waitIndex + 1]) : 30;

const admin = createKafka("indigo-dev-ensure-topics", { quiet: true }).admin();
try {
  await waitForBroker(admin, waitSeconds * 1000);
  const checks = await ensureTopics(admin);
  let bad = false;
  for (const check of checks) {
    if (check.created) console.error(`dev: created topic ${check.topic}`);
    for (const problem of check.problems) {
      bad = true;
      console.error(`dev: error: topic ${check.topic} ${problem}`);
    }
  }
  process.exitCode = bad ? 1 : 0;
} catch (error) {
  console.error(`dev: error: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
} finally {
  await admin.disconnect();
}
