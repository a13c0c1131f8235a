// Executes release commands: lock the release (a Postgres advisory lock, so API instances serialise on it),
// wait until the projection holds the whole release log, rebuild the aggregate from `release_events`,
// `decide`, append the events to indigo.release.v1 (key = release id, idempotent producer, acks=all), wait
// (bounded) until the projection shows them, then publish the agents' desired state when rules changed.
import type { Admin, Producer } from "@indigo/bus";
import { type Database, schema } from "@indigo/db";
import {
  AgentControlSchema,
  fromJson,
  type JsonValue,
  type ReleaseEvent,
  ReleaseEventSchema,
  type SamplingRate,
  toBinary,
} from "@indigo/proto";
import {
  decide,
  evolve,
  type Rejection,
  type ReleaseCommand,
  type ReleaseDefinition,
  type ReleaseState,
} from "@indigo/release";
import { asc, eq, gt, notInArray, or, sql } from "drizzle-orm";
import { buildControl, nextGeneration, type RuleSource, runningReleases } from "./control.ts";
import { ProblemError } from "./problem.ts";
import { logEnd, type ProjectionWatch, waitProjected } from "./projection.ts";
import type { ReadReleaseLog } from "./release-log.ts";
import { latest, rulesChangedAt } from "./rules-changed.ts";
import { overlapProblem, overlapsWith, tooManyRunning } from "./running-set.ts";

export interface CommandTopics {
  readonly release: string;
  readonly control: string;
}

export interface CommandOptions {
  readonly db: Database;
  readonly admin: Admin;
  /** Connected, `idempotent: true` (acks=all is implied and sent explicitly). */
  readonly producer: Producer;
  readonly topics: CommandTopics;
  readonly projectorGroup: string;
  /** Bound on each wait for the projection (default 5000 ms). */
  readonly waitMs?: number;
  /** How long a dye stays unused after its release ended (default 60 s; INDIGO_DYE_REUSE_AFTER_MS). */
  readonly dyeReuseAfterMs?: number;
  /** Per-agent sampling rates (the sampling controller's latest), each published under the agent's key. */
  readonly sampling?: () => ReadonlyMap<string, readonly SamplingRate[]>;
  /**
   * The release log folded (release-log.ts), for when the projection is behind it: pause and rollback then
   * decide on the log, and the agents' rules are published from it. Without it they are a 503 meanwhile.
   */
  readonly readLog?: ReadReleaseLog;
}

export interface CommandResult {
  readonly state: ReleaseState;
  /** False when the projection did not show the write within the bound (the write itself succeeded). */
  readonly projected: boolean;
  /** False when the command changed which rules apply and publishing them to the agents failed: it stays
   * pending and publishPending() retries it (the API's background loop). */
  readonly controlPublished: boolean;
}

type Tx = Parameters<Parameters<Database["transaction"]>[0]>[0];

// Commands that take a release's rules away from the agents: with the projector down they still work, on the
// release log itself (what an operator reaches for in an incident). Starting or widening a release waits for
// the projection: admitting it needs every running release's cohort.
const STOPS = new Set<ReleaseCommand["type"]>(["PauseRelease", "RollbackRelease"]);

const CHANGES_RULES = new Set<ReleaseCommand["type"]>([
  "StartRelease",
  "PauseRelease",
  "ResumeRelease",
  "AdvanceRamp",
  "PromoteRelease",
  "RollbackRelease",
]);

export function rejectionProblem(r: Rejection): ProblemError {
  switch (r.kind) {
    case "not_found":
      return new ProblemError("notFound", 404, r.reason);
    case "already_exists":
      return new ProblemError("exists", 409, r.reason);
    case "version_conflict":
      return new ProblemError("conflict", 409, r.reason, { currentVersion: r.actual });
    case "illegal_transition":
      return new ProblemError("illegal", 409, r.reason, { state: r.from, command: r.command });
    case "invalid":
      return new ProblemError("validation", 400, `${r.field}: ${r.reason}`, {
        errors: [{ field: r.field, message: r.reason }],
      });
    default: {
      const never: never = r;
      throw new Error(`unknown rejection ${JSON.stringify(never)}`);
    }
  }
}

/** Runs tasks of one key one after another, in call order (in process; Postgres locks serialise instances). */
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const before = this.tails.get(key) ?? Promise.resolve();
    const result = before.then(task, task);
    const tail = result.catch(() => {});
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }
}

export class ReleaseCommands {
  private readonly watch: ProjectionWatch;
  // Commands queue here before they take a pooled connection, so waiting for a busy release holds none.
  private readonly local = new KeyedMutex();
  private readonly waitMs: number;
  private controlPending = true;

  constructor(private readonly opts: CommandOptions) {
    this.watch = { db: opts.db, admin: opts.admin, group: opts.projectorGroup, topic: opts.topics.release };
    this.waitMs = opts.waitMs ?? 5000;
  }

  /** Creates a release with a dye unique among live releases (and not just given up: freeDye). */
  create(
    releaseId: string,
    definition: Omit<ReleaseDefinition, "dye">,
    actor: string,
  ): Promise<CommandResult> {
    return this.run("indigo:create", async (tx) => {
      const dye = await this.freeDye(tx);
      return {
        releaseId,
        command: { type: "CreateRelease", data: { ...definition, dye } },
        actor,
        expectedVersion: undefined,
      };
    });
  }

  execute(
    releaseId: string,
    command: Exclude<ReleaseCommand, { type: "CreateRelease" }>,
    actor: string,
    expectedVersion: number,
  ): Promise<CommandResult> {
    return this.run(
      `indigo:release:${releaseId}`,
      async () => ({ releaseId, command, actor, expectedVersion }),
      STOPS.has(command.type),
    );
  }

  private async run(
    lockKey: string,
    prepare: (tx: Tx) => Promise<{
      releaseId: string;
      command: ReleaseCommand;
      actor: string;
      expectedVersion: number | undefined;
    }>,
    onTheLog = false,
  ): Promise<CommandResult> {
    const outcome = await this.local.run(lockKey, () =>
      this.opts.db.transaction(async (tx) => {
        await tx.execute(sql`select pg_advisory_xact_lock(hashtextextended(${lockKey}, 0))`);
        // Every wait and read of the command runs on its transaction's connection: holding one connection per
        // command in flight, never waiting for a second one (a pool of N cannot deadlock on N commands).
        const watch = { ...this.watch, db: tx };
        const log = await this.projectedToLogEnd(watch, onTheLog);
        const { releaseId, command, actor, expectedVersion } = await prepare(tx);
        const state = log ? (log.get(releaseId) ?? null) : await loadRelease(tx, releaseId);
        const decision = decide(command, state, { releaseId, actor, at: new Date(), expectedVersion });
        if (!decision.ok) throw rejectionProblem(decision.rejection);
        const next = decision.events.reduce<ReleaseState | null>((s, e) => evolve(s, e), state);
        if (next === null) throw new Error("decide returned no events");
        if (next.status === "running" && state?.status !== "running")
          await this.admitToRunning(tx, watch, next);
        const target = await this.append(releaseId, decision.events);
        // A projection that was behind before the command will not show it in time either. A stop waits at most
        // a second for its own event: with the projector just dead it would wait out the whole bound, and the
        // answer (and the rules published) come from the decided state anyway.
        const projected = log
          ? false
          : await waitProjected(watch, target, onTheLog ? Math.min(this.waitMs, 1000) : this.waitMs);
        return { state: next, projected, changesRules: CHANGES_RULES.has(command.type) };
      }),
    );
    let controlPublished = true;
    if (outcome.changesRules) {
      // The release's events are in the log: the command took effect, whatever happens to the publication.
      // Failing it here would send the caller to retry a command that landed (a 409) while the agents kept
      // the previous rules until some other command published again.
      try {
        await this.publishControl(outcome.projected ? undefined : outcome.state);
      } catch {
        this.controlPending = true;
        controlPublished = false;
      }
    }
    return { state: outcome.state, projected: outcome.projected, controlPublished };
  }

  /**
   * Publishes the agents' desired state again when a publication failed, or once after the API started (a
   * process that ended between a command's commit and its publication left the agents behind). Throws when
   * it fails again: still pending.
   */
  async publishPending(): Promise<void> {
    if (!this.controlPending) return;
    // Cleared first: a publication failing meanwhile sets it again, and is not lost.
    this.controlPending = false;
    try {
      await this.publishControl();
    } catch (error) {
      this.controlPending = true;
      throw error;
    }
  }

  get controlIsPending(): boolean {
    return this.controlPending;
  }

  /**
   * Waits (bounded) until the projection holds the release log as it ends now (undefined). When it does not:
   * the log folded if `onTheLog` and a reader is set, else a 503.
   */
  private async projectedToLogEnd(
    watch: ProjectionWatch,
    onTheLog = false,
  ): Promise<Map<string, ReleaseState> | undefined> {
    const end = await logEnd(this.watch);
    // Folding the log costs a consumer group of its own (30–75 ms on the dev broker, more on a busy cluster,
    // and a read of the whole topic): the projection is tried first, but a stop waits for it at most a
    // second (an operator rolling back in an incident, the projector down).
    const canFold = onTheLog && this.opts.readLog !== undefined;
    if (await waitProjected(watch, end, canFold ? Math.min(this.waitMs, 1000) : this.waitMs))
      return undefined;
    if (canFold) return this.foldedLog(end);
    throw new ProblemError(
      "unavailable",
      503,
      "the projection is behind the release log; try again shortly",
      {},
      { "retry-after": "1" },
    );
  }

  /**
   * A release about to run (start, resume) is refused when the agents already hold as many rules as they can,
   * or when its cohort shares requests with a running one's. Under a lock of its own, and on a projection that holds every release event appended so far: two
   * overlapping releases started at once through two instances see each other.
   */
  private async admitToRunning(tx: Tx, watch: ProjectionWatch, next: ReleaseState): Promise<void> {
    await tx.execute(sql`select pg_advisory_xact_lock(hashtextextended('indigo:running-set', 0))`);
    await this.projectedToLogEnd(watch);
    const running = await runningReleases(tx);
    const full = tooManyRunning(next, running);
    if (full) throw full;
    const overlaps = overlapsWith(next, running);
    if (overlaps.length > 0) throw overlapProblem(next, overlaps);
  }

  private async foldedLog(end: ReadonlyMap<number, bigint>): Promise<Map<string, ReleaseState>> {
    const read = this.opts.readLog;
    if (!read) throw new Error("no release log reader");
    try {
      return await read(end);
    } catch (error) {
      throw new ProblemError(
        "unavailable",
        503,
        `the projection is behind the release log, and reading the log failed: ${error instanceof Error ? error.message : String(error)}`,
        {},
        { "retry-after": "1" },
      );
    }
  }

  private async append(releaseId: string, events: ReleaseEvent[]): Promise<Map<number, bigint>> {
    const [meta] = await this.opts.producer.send({
      topic: this.opts.topics.release,
      acks: -1,
      messages: events.map((e) => ({ key: releaseId, value: Buffer.from(toBinary(ReleaseEventSchema, e)) })),
    });
    if (!meta) throw new Error("the broker acknowledged no partition");
    return new Map([[meta.partition, BigInt(meta.baseOffset ?? meta.offset ?? "0") + BigInt(events.length)]]);
  }

  /**
   * The smallest dye neither held by a live (not promoted, not rolled back) release nor given up by one within
   * dyeReuseAfterMs. A dye handed on at once would meet the ended release's last requests: agents that have
   * not applied the new rules yet still dye its cohort, and the TCP option carries only the number, so the
   * next hop would count them, and route them, as the new release's.
   */
  private async freeDye(tx: Tx): Promise<number> {
    const r = schema.releases;
    const cooling = new Date(Date.now() - (this.opts.dyeReuseAfterMs ?? 60_000));
    const rows = await tx
      .select({ dye: r.dye })
      .from(r)
      .where(or(notInArray(r.state, ["promoted", "rolled_back"]), gt(r.updatedAt, cooling)));
    const taken = new Set(rows.map((row) => row.dye));
    let dye = 1;
    while (taken.has(dye)) dye++;
    return dye;
  }

  /**
   * Publishes the rules of every running release to key "*" (no sampling: every event kept) and, for each
   * agent the sampling controller knows, the same rules with its rates under its own key (an agent's own
   * key wins over "*", so it must be complete). Serialised by a global advisory lock and read under it, so
   * the last publication reflects every command answered so far: from the projection when it holds the whole
   * release log, else from the log itself (with a reader; a projection behind would bring back the rules of a
   * release stopped meanwhile, e.g. at the start-up publication); without a reader, from the projection and
   * `override`, the state of a write the projection did not show in time.
   */
  async publishControl(override?: ReleaseState): Promise<void> {
    await this.local.run("indigo:control", () =>
      this.opts.db.transaction(async (tx) => {
        await tx.execute(sql`select pg_advisory_xact_lock(hashtextextended('indigo:control', 0))`);
        const end = this.opts.readLog ? await logEnd(this.watch) : undefined;
        let running: RuleSource[];
        let changedAt: Date | null;
        if (end && !(await waitProjected({ ...this.watch, db: tx }, end, 0))) {
          const folded = [...(await this.foldedLog(end)).values()];
          running = folded.filter((r) => r.status === "running");
          changedAt = latest(folded.filter((r) => r.status !== "draft").map((r) => r.updatedAt));
        } else {
          running = await runningReleases(tx);
          changedAt = await rulesChangedAt(tx);
        }
        if (override && !end) {
          running = running.filter((r) => r.id !== override.id);
          if (override.status === "running") running.push(override);
        }
        const generation = nextGeneration(new Date(), latest([changedAt, override?.updatedAt]));
        const at = new Date();
        const targets: [string, readonly SamplingRate[]][] = [
          ["*", []],
          ...(this.opts.sampling?.() ?? new Map()),
        ];
        await this.opts.producer.send({
          topic: this.opts.topics.control,
          acks: -1,
          messages: targets.map(([target, sampling]) => ({
            key: target,
            value: Buffer.from(
              toBinary(AgentControlSchema, buildControl(running, sampling, generation, at, target)),
            ),
          })),
        });
      }),
    );
  }
}

/** The aggregate rebuilt from its projected history (null when it does not exist). */
export async function loadRelease(db: Database | Tx, releaseId: string): Promise<ReleaseState | null> {
  const e = schema.releaseEvents;
  const rows = await db
    .select({ data: e.data })
    .from(e)
    .where(eq(e.releaseId, releaseId))
    .orderBy(asc(e.version));
  return rows.reduce<ReleaseState | null>(
    (s, r) => evolve(s, fromJson(ReleaseEventSchema, r.data as JsonValue)),
    null,
  );
}
