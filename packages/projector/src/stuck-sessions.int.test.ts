// The reaper ends a projector session whose client stopped in the middle of a statement — a COPY whose data
// never comes, the backend "active" and reading from the client; or a result the client stopped reading, the
// backend "active" and writing to it; or one idle in its transaction — once it has waited longer than the
// limit; a session that waited less and one of another application stay.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { sql as q } from "drizzle-orm";
import postgres from "postgres";
import { freezableProxy } from "../../api/src/testing/freezable-proxy.ts";
import { PROJECTOR_APPLICATION, reapStuckSessions } from "./stuck-sessions.ts";
import { createSandbox, type Sandbox } from "./testing/sandbox.ts";

let sb: Sandbox;
beforeAll(async () => {
  sb = await createSandbox("stuck", { dye: 1, agent: 1, release: 1 });
  await sb.database.db.execute(q`create table stuck_probe (i integer)`);
}, 60_000);
afterAll(() => sb.close(), 60_000);

const open = (app: string) =>
  postgres(sb.databaseUrl, { max: 1, onnotice: () => {}, connection: { application_name: app } });

async function pidOf(sql: postgres.Sql): Promise<number> {
  const [row] = await sql<{ pid: number }[]>`select pg_backend_pid() as pid`;
  return row!.pid;
}

/** Starts a COPY and never sends its data. */
async function copyWithoutData(sql: postgres.Sql): Promise<void> {
  const query = sql.unsafe("copy stuck_probe from stdin");
  query.catch(() => {}); // ended by the reaper (or by sql.end below)
  const stream = await query.writable();
  stream.on("error", () => {});
}

async function alive(pids: number[]): Promise<number[]> {
  const rows = await sb.database.db.execute<{ pid: number }>(
    q`select pid from pg_stat_activity where pid in (${q.join(
      pids.map((p) => q`${p}`),
      q`, `,
    )})`,
  );
  return [...rows].map((r) => Number(r.pid)).sort((a, b) => a - b);
}

test("a session stopped in the middle of a statement past the limit is ended; the others are not", async () => {
  const stuck = open(PROJECTOR_APPLICATION);
  const other = open("someone-else");
  const idle = open(PROJECTOR_APPLICATION);
  try {
    const pids = { stuck: await pidOf(stuck), other: await pidOf(other), idle: await pidOf(idle) };
    await copyWithoutData(stuck);
    await copyWithoutData(other);
    await Bun.sleep(300);
    expect(await reapStuckSessions(sb.database.db, 5_000)).toEqual([]); // none has waited that long
    await Bun.sleep(900);
    // idle in its transaction for less than the limit
    let inTx: () => void = () => {};
    const idleTx = idle.begin(async (tx) => {
      await tx`select 1`;
      inTx();
      await Bun.sleep(1_500);
    });
    await new Promise<void>((resolve) => {
      inTx = resolve;
    });
    expect(await reapStuckSessions(sb.database.db, 1_000)).toEqual([pids.stuck]);
    await idleTx;
    await Bun.sleep(100);
    expect(await alive([pids.stuck, pids.other, pids.idle])).toEqual(
      [pids.other, pids.idle].sort((a, b) => a - b),
    );
  } finally {
    await Promise.all([stuck, other, idle].map((sql) => sql.end({ timeout: 1 }).catch(() => {})));
  }
}, 30_000);

test("a session idle in its transaction past the limit is ended (the server's own timeout kept one 90 s)", async () => {
  // no server-side idle timeout on this session: only the reaper can end it
  const idle = postgres(sb.databaseUrl, {
    max: 1,
    onnotice: () => {},
    connection: { application_name: PROJECTOR_APPLICATION, idle_in_transaction_session_timeout: 0 },
  });
  try {
    const pid = await pidOf(idle);
    let inTx: () => void = () => {};
    const held = idle.begin(async (tx) => {
      await tx`select 1`;
      inTx();
      await Bun.sleep(5_000);
    });
    held.catch(() => {}); // ended by the reaper
    await new Promise<void>((resolve) => {
      inTx = resolve;
    });
    expect(await reapStuckSessions(sb.database.db, 1_000)).toEqual([]); // idle for less than the limit
    await Bun.sleep(1_300);
    expect(await reapStuckSessions(sb.database.db, 1_000)).toEqual([pid]);
    await Bun.sleep(100);
    expect(await alive([pid])).toEqual([]);
  } finally {
    await idle.end({ timeout: 1 }).catch(() => {});
  }
}, 30_000);

test("a session whose client stopped reading a result is ended past the limit (statement_timeout does not)", async () => {
  const server = new URL(sb.databaseUrl);
  const proxy = await freezableProxy(server.hostname, Number(server.port));
  const through = new URL(sb.databaseUrl);
  through.port = String(proxy.port);
  const reader = postgres(through.toString(), {
    max: 1,
    onnotice: () => {},
    connection: { application_name: PROJECTOR_APPLICATION, statement_timeout: 500 },
  });
  try {
    const pid = await pidOf(reader);
    // far more than the socket buffers hold; the relay stops reading, as a stopped process does
    const big = reader.unsafe("select repeat('x', 1000) as x from generate_series(1, 300000)");
    big.catch(() => {});
    const waiting = async () =>
      [
        ...(await sb.database.db.execute<{ wait_event: string | null }>(
          q`select wait_event from pg_stat_activity where pid = ${pid}`,
        )),
      ][0]?.wait_event;
    // once the query runs (sent through the relay), the relay stops reading
    for (let i = 0; i < 50 && (await waiting()) === "ClientRead"; i++) await Bun.sleep(10);
    proxy.freeze();
    for (let i = 0; i < 50 && (await waiting()) !== "ClientWrite"; i++) await Bun.sleep(100);
    expect(await waiting()).toBe("ClientWrite");
    await Bun.sleep(1_500); // three times its statement timeout
    expect(await waiting()).toBe("ClientWrite");
    expect(await reapStuckSessions(sb.database.db, 1_000)).toEqual([pid]);
    await Bun.sleep(100);
    expect(await alive([pid])).toEqual([]);
  } finally {
    await reader.end({ timeout: 1 }).catch(() => {});
    await proxy.close().catch(() => {});
  }
}, 30_000);
