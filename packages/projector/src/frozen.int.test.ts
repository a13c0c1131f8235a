// A projector instance frozen in the middle of its dye transactions (SIGSTOP here; a hung process or a paused
// VM in production) holds the dye lock that every dye transaction of every instance takes in turn, and its
// partitions' offset row locks. Its partitions move to the other instance after Kafka's session timeout; the
// server ends its sessions idle in a transaction after the idle timeout, and the other instance ends those
// stopped in the middle of a statement (waiting for the rest of it) after the statement timeout
// (stuck-sessions.ts). The other instance goes on and ends with a clean rebuild's tables. Without those it
// waited for as long as the frozen one stayed.
import { afterAll, beforeAll, expect, test } from "bun:test";
import postgres from "postgres";
import { DYE_LOCK } from "./apply-dye.ts";
import { waitCaughtUp } from "./projector.ts";
import { spawnProjector } from "./testing/child.ts";
import { cleanSnapshot } from "./testing/project.ts";
import { createSandbox, type Sandbox } from "./testing/sandbox.ts";
import { snapshot } from "./testing/snapshot.ts";
import { produceAgentBatches, tracesAcrossAgents } from "./testing/stream.ts";

const AGENTS = 6;
const BATCHES_PER_AGENT = 30;
const EVENTS_PER_BATCH = 400;
const BUCKET_MS = 1000;
const IDLE_TX_TIMEOUT_MS = 2000;
const STATEMENT_TIMEOUT_MS = 3000;

let sb: Sandbox;
let reference: Awaited<ReturnType<typeof snapshot>>;

const batchEvents = tracesAcrossAgents({
  eventsPerBatch: EVENTS_PER_BATCH,
  hopsPerTrace: 3,
  cohortEvery: 4,
  missEvery: 7,
  dye: 5,
  releaseId: "r5",
  tracePrefix: "F",
});

beforeAll(async () => {
  sb = await createSandbox("frozen", { dye: 3, agent: 1, release: 1 });
  await produceAgentBatches(sb, AGENTS, BATCHES_PER_AGENT, batchEvents);
  reference = await cleanSnapshot(sb, BUCKET_MS);
}, 240_000);
afterAll(() => sb.close(), 60_000);

test("an instance frozen while it holds the dye lock does not stall the other: its session ends, the other takes over", async () => {
  const group = `frozen_${sb.id}`;
  const env = {
    INDIGO_PROJECTOR_IDLE_TX_TIMEOUT_MS: String(IDLE_TX_TIMEOUT_MS),
    INDIGO_PROJECTOR_STATEMENT_TIMEOUT_MS: String(STATEMENT_TIMEOUT_MS),
  };
  const watcher = postgres(sb.databaseUrl, { max: 1, onnotice: () => {} });
  const lockHolders = async () =>
    (
      await watcher<{ pid: number }[]>`
        select pid from pg_locks
        where locktype = 'advisory' and granted
          and classid = ${Number(DYE_LOCK >> 32n)} and objid = ${Number(DYE_LOCK & 0xffff_ffffn)}`
    ).map((r) => r.pid);
  const frozen = spawnProjector(sb, group, BUCKET_MS, sb.databaseUrl, env);
  let other: ReturnType<typeof spawnProjector> | undefined;
  try {
    // Stop it while it holds the lock; a stop that came just after its commit is undone and tried again.
    // Its other batches' transactions stop wherever they are: between two statements (idle in
    // transaction), or in the middle of one, whose backend then waits for the rest (the other's reaper).
    let holder: number | undefined;
    for (let tries = 0; holder === undefined && tries < 2000; tries++) {
      if ((await lockHolders()).length === 0) {
        await Bun.sleep(2);
        continue;
      }
      frozen.kill("SIGSTOP");
      const [still] = await lockHolders();
      if (still !== undefined) holder = still;
      else frozen.kill("SIGCONT");
    }
    expect(holder).toBeDefined();

    other = spawnProjector(sb, group, BUCKET_MS, sb.databaseUrl, env, "pipe");
    let otherLog = "";
    void (async () => {
      for await (const chunk of other.stderr as ReadableStream<Uint8Array>)
        otherLog = (otherLog + new TextDecoder().decode(chunk)).slice(-20_000);
    })();
    await waitCaughtUp(
      sb.admin,
      sb.database.db,
      group,
      [sb.topics.dye, sb.topics.agent, sb.topics.release],
      90_000,
    ).catch(async (error: unknown) => {
      // What held the other instance up: the sessions of the sandbox's database, and what it said.
      const sessions = await watcher`
        select pid, state, wait_event_type, wait_event, application_name, now() - query_start as running,
               left(query, 100) as query
        from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()`;
      throw new Error(
        `${error instanceof Error ? error.message : String(error)}\nthe other instance ${other?.exitCode === null ? "runs" : `exited ${other?.exitCode}`}; frozen holder ${holder}; sessions:\n${sessions.map((r) => JSON.stringify(r)).join("\n")}\nthe other instance's log (end):\n${otherLog.split("\n").slice(-40).join("\n")}`,
      );
    });
    // The frozen instance's session was ended by the server, its transaction rolled back.
    const [alive] = await watcher<
      { n: number }[]
    >`select count(*)::int as n from pg_stat_activity where pid = ${holder!}`;
    expect(alive?.n).toBe(0);
  } finally {
    frozen.kill("SIGKILL");
    other?.kill("SIGTERM");
    await Promise.all([frozen.exited, other?.exited]);
    await watcher.end();
  }
  expect(await snapshot(sb.database.db)).toEqual(reference);
}, 180_000);
