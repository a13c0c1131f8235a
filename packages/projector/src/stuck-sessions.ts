// Ends the sessions whose client stopped in the middle of a statement. A projector process that stops (hung,
// SIGSTOPped, paused) while its backend is waiting for the rest of a statement — a COPY's data, or the
// messages after an extended-protocol Execute up to its Sync — leaves that backend "active" and reading from
// the client, and there Postgres acts on neither statement_timeout nor idle_in_transaction_session_timeout (a
// cancel is ignored while a command is being read), while the stopped process's kernel still answers
// keepalive probes. The session would hold its partition's offset row lock, and maybe the dye lock, for good,
// and every instance would wait behind it (seen: a cohort lookup waiting 30 s and counting). Every projector
// process therefore ends, on its database, any projector session that has waited that way for longer than
// the statement timeout: what Postgres does to a statement that runs too long. The same holds the other way:
// a backend sending a result larger than the socket buffers to a stopped process waits in ClientWrite, where
// statement_timeout does not end it either (checked: a 300 MB SELECT through a frozen relay stayed there past
// twelve seconds with a 3 s timeout; pg_terminate_backend ended it at once). And a session idle in its
// transaction past the limit: the server's idle_in_transaction_session_timeout should end it, yet one left by
// a SIGSTOPped projector (its last statement the `select 1` behind a COPY) stayed 90 s with a 2 s timeout,
// holding its offset row lock, and the other instance's batch timed out behind it again and again
// (frozen.int.test.ts, printed by its diagnostics; why the server kept it is not known).
import type { Database } from "@indigo/db";
import { sql } from "drizzle-orm";

/** The application_name of a projector process's connections, which the reaper looks for. */
export const PROJECTOR_APPLICATION = "indigo-projector";

/** Terminates the stuck projector backends; returns their pids. */
export async function reapStuckSessions(db: Database, olderThanMs: number): Promise<number[]> {
  // The candidates first, materialized: in one WHERE clause the planner may call pg_terminate_backend
  // before the other conditions have ruled a session out (it ended this very session in a first version).
  const rows = await db.execute<{ pid: number }>(sql`
    with stuck as materialized (
      select pid from pg_stat_activity
      where datname = current_database() and application_name = ${PROJECTOR_APPLICATION}
        and pid <> pg_backend_pid()
        and (
          (state = 'active' and wait_event in ('ClientRead', 'ClientWrite')
            and query_start < now() - make_interval(secs => ${olderThanMs / 1000}))
          or (state in ('idle in transaction', 'idle in transaction (aborted)')
            and state_change < now() - make_interval(secs => ${olderThanMs / 1000}))
        )
    )
    select pid from stuck where pg_terminate_backend(pid)`);
  return [...rows].map((r) => Number(r.pid));
}
