// /v1/releases: create, list, read, history, and the lifecycle commands (If-Match: <version>).
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { type Database, schema } from "@indigo/db";
import type { CohortRule, ReleaseCommand, ReleaseState } from "@indigo/release";
import { and, asc, desc, eq, inArray, type SQL } from "drizzle-orm";
import { validateRules } from "../../../agent/src/rules/rules-file.ts";
import type { ReleaseCommands } from "../commands.ts";
import { ProblemError } from "../problem.ts";
import { rampNextStepAt } from "../ramp-schedule.ts";
import {
  CreateReleaseSchema,
  HistoryEntrySchema,
  ProblemSchema,
  ReasonSchema,
  ReleaseIdParam,
  ReleaseSchema,
} from "../schemas.ts";

export const problems = (...codes: number[]) =>
  Object.fromEntries(
    codes.map((code) => [
      code,
      { description: "problem", content: { "application/problem+json": { schema: ProblemSchema } } },
    ]),
  );

const AUTH_PROBLEMS = [400, 401, 403, 404];

type ReleaseView = z.infer<typeof ReleaseSchema>;
type HoldRow = typeof schema.rampHolds.$inferSelect;

/** What the analysis last found holding the ramps of `ids` (ramp_holds), by release. */
async function rampHoldsOf(db: Database, ids: readonly string[]): Promise<Map<string, HoldRow>> {
  if (ids.length === 0) return new Map();
  const h = schema.rampHolds;
  const rows = await db
    .select()
    .from(h)
    .where(inArray(h.releaseId, [...ids]));
  return new Map(rows.map((r) => [r.releaseId, r]));
}

/** Shown only while a next step is due at all: a row of a release that stopped goes at the next pass. */
function holdView(nextStepAt: Date | null, hold: HoldRow | undefined): ReleaseView["rampHold"] {
  if (!nextStepAt || !hold) return null;
  return {
    kind: hold.kind as "traffic" | "evidence",
    reason: hold.reason,
    since: hold.since.toISOString(),
    checkedAt: hold.checkedAt.toISOString(),
  };
}

export function releaseView(s: ReleaseState, hold?: HoldRow): ReleaseView {
  const nextStepAt = rampNextStepAt({
    state: s.status,
    ramp: s.ramp,
    rampStep: s.rampStep,
    updatedAt: s.updatedAt,
  });
  return {
    id: s.id,
    name: s.name,
    state: s.status,
    version: s.version,
    dye: s.dye,
    cohort: { ...s.cohort },
    services: s.services.map((x) => ({ ...x })),
    ramp: s.ramp.map((x) => ({ ...x })),
    rampStep: s.rampStep,
    rampNextStepAt: nextStepAt?.toISOString() ?? null,
    rampHold: holdView(nextStepAt, hold),
    analysis: s.analysis ? { ...s.analysis } : null,
    reason: s.reason,
    createdAt: s.createdAt.toISOString(),
    updatedAt: s.updatedAt.toISOString(),
  };
}

type Row = typeof schema.releases.$inferSelect;
function rowView(r: Row, hold: HoldRow | undefined): ReleaseView {
  const nextStepAt = rampNextStepAt({
    state: r.state,
    ramp: r.ramp as ReleaseView["ramp"],
    rampStep: r.rampStep,
    updatedAt: r.updatedAt,
  });
  return {
    id: r.id,
    name: r.name,
    state: r.state as ReleaseView["state"],
    version: r.version,
    dye: r.dye,
    cohort: r.cohort as ReleaseView["cohort"],
    services: r.services as ReleaseView["services"],
    ramp: r.ramp as ReleaseView["ramp"],
    rampStep: r.rampStep,
    rampNextStepAt: nextStepAt?.toISOString() ?? null,
    rampHold: holdView(nextStepAt, hold),
    analysis: r.analysis as ReleaseView["analysis"],
    reason: r.stateReason,
    createdAt: r.createdAt.toISOString(),
    updatedAt: r.updatedAt.toISOString(),
  };
}

/** The rule compiler's verdict on a cohort: a 400 naming the unsupported part. */
export function checkCohort(cohort: z.infer<typeof ReleaseSchema>["cohort"]): CohortRule {
  try {
    validateRules([{ dye: 1, ...cohort }]);
  } catch (error) {
    const message = (error as Error).message.replace(/^rule 0: /, "");
    const field = Object.keys(cohort).length === 1 ? `cohort.${Object.keys(cohort)[0]}` : "cohort";
    throw new ProblemError("validation", 400, `cohort: ${message}`, { errors: [{ field, message }] });
  }
  return cohort;
}

const VERSION = /^(?:W\/)?"?([1-9][0-9]{0,9})"?$/;

/** If-Match: <version> (a bare or quoted integer); 428 when absent, 400 when not a version. */
export function expectedVersion(header: string | undefined): number {
  if (header === undefined || header.trim() === "") {
    throw new ProblemError(
      "preconditionRequired",
      428,
      "commands need If-Match: <version> (the release's current version, from GET or the last write)",
    );
  }
  const m = VERSION.exec(header.trim());
  if (!m?.[1]) {
    throw new ProblemError(
      "validation",
      400,
      `If-Match must be a release version (a positive integer), got ${JSON.stringify(header.slice(0, 40))}`,
      {
        errors: [{ field: "If-Match", message: "a positive integer version" }],
      },
    );
  }
  return Number(m[1]);
}

const COMMANDS = {
  start: (): ReleaseCommand => ({ type: "StartRelease", data: {} }),
  pause: (reason: string): ReleaseCommand => ({ type: "PauseRelease", data: { reason } }),
  resume: (): ReleaseCommand => ({ type: "ResumeRelease", data: {} }),
  advance: (): ReleaseCommand => ({ type: "AdvanceRamp", data: {} }),
  promote: (): ReleaseCommand => ({ type: "PromoteRelease", data: {} }),
  rollback: (reason: string): ReleaseCommand => ({ type: "RollbackRelease", data: { reason } }),
} as const;

const SUMMARY: Record<keyof typeof COMMANDS, string> = {
  start: "Start a draft release: its rules go to every agent",
  pause: "Pause a running release: its rules are withdrawn",
  resume: "Resume a paused release",
  advance: "Advance a running release's ramp to its next step",
  promote: "Promote a running or paused release (finished)",
  rollback: "Roll back a draft, running or paused release (finished)",
};

export function releaseRoutes(app: OpenAPIHono, db: Database, commands: ReleaseCommands): void {
  app.openapi(
    createRoute({
      method: "post",
      path: "/v1/releases",
      tags: ["releases"],
      summary: "Create a release (draft); its dye is allocated unique among live releases",
      request: {
        body: { required: true, content: { "application/json": { schema: CreateReleaseSchema } } },
      },
      responses: {
        201: {
          description: "created",
          content: {
            "application/json": {
              schema: z.object({
                id: z.string(),
                version: z.number(),
                dye: z.number(),
                state: z.string(),
                release: ReleaseSchema,
              }),
            },
          },
        },
        ...problems(...AUTH_PROBLEMS, 409, 413, 415, 503),
      },
    }),
    async (c) => {
      const body = c.req.valid("json");
      const cohort = checkCohort(body.cohort);
      const id = `rel_${crypto.randomUUID().replaceAll("-", "")}`;
      const { state, projected } = await commands.create(
        id,
        {
          name: body.name,
          cohort,
          services: body.services,
          ramp: body.ramp ?? [],
          analysis: body.analysis ?? null,
        },
        c.get("principal").name,
      );
      c.header("location", `/v1/releases/${id}`);
      c.header("etag", `"${state.version}"`);
      c.header("indigo-projected", String(projected));
      return c.json(
        { id, version: state.version, dye: state.dye, state: state.status, release: releaseView(state) },
        201,
      );
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/v1/releases",
      tags: ["releases"],
      summary: "List releases, newest first",
      request: {
        query: z.object({
          state: z.enum(["draft", "running", "paused", "promoted", "rolled_back"]).optional(),
          limit: z.coerce.number().int().min(1).max(1000).optional(),
        }),
      },
      responses: {
        200: {
          description: "releases",
          content: { "application/json": { schema: z.object({ releases: z.array(ReleaseSchema) }) } },
        },
        ...problems(...AUTH_PROBLEMS),
      },
    }),
    async (c) => {
      const q = c.req.valid("query");
      const r = schema.releases;
      const where: SQL[] = q.state ? [eq(r.state, q.state)] : [];
      const rows = await db
        .select()
        .from(r)
        .where(and(...where))
        .orderBy(desc(r.createdAt), asc(r.id))
        .limit(q.limit ?? 200);
      const holds = await rampHoldsOf(
        db,
        rows.map((row) => row.id),
      );
      return c.json({ releases: rows.map((row) => rowView(row, holds.get(row.id))) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/v1/releases/{id}",
      tags: ["releases"],
      summary: "One release; ETag is its version. ?min_version=N waits (≤ 5 s) until the projection has it",
      request: {
        params: ReleaseIdParam,
        query: z.object({ min_version: z.coerce.number().int().min(1).max(1_000_000_000).optional() }),
      },
      responses: {
        200: { description: "the release", content: { "application/json": { schema: ReleaseSchema } } },
        ...problems(...AUTH_PROBLEMS),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const { min_version: minVersion } = c.req.valid("query");
      const deadline = Date.now() + 5000;
      for (;;) {
        const [row] = await db.select().from(schema.releases).where(eq(schema.releases.id, id));
        if (row && (minVersion === undefined || row.version >= minVersion)) {
          c.header("etag", `"${row.version}"`);
          return c.json(rowView(row, (await rampHoldsOf(db, [row.id])).get(row.id)), 200);
        }
        if (minVersion === undefined || Date.now() > deadline) {
          if (!row) throw new ProblemError("notFound", 404, `release ${id} does not exist`);
          throw new ProblemError(
            "notFound",
            404,
            `release ${id} is at version ${row.version}, not yet ${minVersion}`,
          );
        }
        await Bun.sleep(20);
      }
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/v1/releases/{id}/history",
      tags: ["releases"],
      summary: "Every event of a release, in version order, with its actor",
      request: { params: ReleaseIdParam },
      responses: {
        200: {
          description: "history",
          content: {
            "application/json": {
              schema: z.object({ releaseId: z.string(), events: z.array(HistoryEntrySchema) }),
            },
          },
        },
        ...problems(...AUTH_PROBLEMS),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const e = schema.releaseEvents;
      const rows = await db.select().from(e).where(eq(e.releaseId, id)).orderBy(asc(e.version));
      if (rows.length === 0) throw new ProblemError("notFound", 404, `release ${id} does not exist`);
      return c.json(
        {
          releaseId: id,
          events: rows.map((r) => ({
            version: r.version,
            kind: r.kind,
            actor: r.actor,
            at: r.at.toISOString(),
            event: r.data,
          })),
        },
        200,
      );
    },
  );

  // The commands' body is optional, and `curl -X POST -H 'content-type: application/json' …/start` (or a client
  // that always sets the type) sends the JSON type with nothing after it: no body, not malformed JSON (a 400).
  app.use("/v1/releases/:id/:verb", async (c, next) => {
    if (c.req.method === "POST" && (await c.req.text()) === "") c.req.raw.headers.delete("content-type");
    await next();
  });
  for (const verb of Object.keys(COMMANDS) as (keyof typeof COMMANDS)[]) {
    app.openapi(
      createRoute({
        method: "post",
        path: `/v1/releases/{id}/${verb}`,
        tags: ["commands"],
        summary: SUMMARY[verb],
        request: {
          params: ReleaseIdParam,
          headers: z.object({
            "if-match": z
              .string()
              .optional()
              .openapi({ description: "the release version the command applies to", example: "2" }),
          }),
          body: { required: false, content: { "application/json": { schema: ReasonSchema } } },
        },
        responses: {
          200: {
            description: "the release after the command",
            content: { "application/json": { schema: ReleaseSchema } },
          },
          ...problems(...AUTH_PROBLEMS, 409, 413, 428, 503),
        },
      }),
      async (c) => {
        const { id } = c.req.valid("param");
        const version = expectedVersion(c.req.header("if-match"));
        const body = c.req.valid("json") as z.infer<typeof ReasonSchema> | undefined;
        const command = COMMANDS[verb](body?.reason ?? "") as Exclude<
          ReleaseCommand,
          { type: "CreateRelease" }
        >;
        const { state, projected, controlPublished } = await commands.execute(
          id,
          command,
          c.get("principal").name,
          version,
        );
        c.header("etag", `"${state.version}"`);
        c.header("indigo-projected", String(projected));
        c.header("indigo-control-published", String(controlPublished));
        return c.json(releaseView(state, (await rampHoldsOf(db, [state.id])).get(state.id)), 200);
      },
    );
  }
}
