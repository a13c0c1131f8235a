// What the dye did: coverage per release and hop, one trace's timeline, the agents.
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { type Database, msSetting, schema } from "@indigo/db";
import { and, asc, eq, gte, lt, ne, type SQL, sql } from "drizzle-orm";
import { agentCondition, generationTime } from "../agent-condition.ts";
import { ProblemError } from "../problem.ts";
import { rulesChangedAt } from "../rules-changed.ts";
import { AgentSchema, CoverageQuery, CoverageSchema, ReleaseIdParam, TraceSchema } from "../schemas.ts";
import { traceTimeline } from "../trace-timeline.ts";
import { alignUp, TtlCache } from "../ttl-cache.ts";
import { type CoverageBody, coverageBody, coverageResponse, notModified } from "./coverage-body.ts";
import { problems } from "./releases.ts";

interface Counts {
  expected: number;
  dyed: number;
  ratio: number | null;
  bySource: Record<string, number>;
}

const empty = (): Counts => ({ expected: 0, dyed: 0, ratio: null, bySource: {} });

function add(into: Counts, source: string, expected: number, dyed: number): void {
  into.expected += expected;
  into.dyed += dyed;
  into.bySource[source] = (into.bySource[source] ?? 0) + expected;
}

const ratio = (c: Counts): Counts => ({ ...c, ratio: c.expected > 0 ? c.dyed / c.expected : null });

export interface CoverageRow {
  readonly caller: string;
  readonly callee: string;
  readonly source: string;
  readonly expected: number;
  readonly dyed: number;
  readonly responses: number;
  readonly errors: number;
}

/** Pure: coverage rows (summed over the window) → overall, per hop, and gray responses per callee. */
export function summarizeCoverage(rows: readonly CoverageRow[]) {
  const overall = empty();
  const hops = new Map<string, { caller: string; callee: string } & Counts>();
  const responses = new Map<string, { callee: string; responses: number; errors: number }>();
  for (const r of rows) {
    if (r.caller === "*") {
      const entry = responses.get(r.callee) ?? { callee: r.callee, responses: 0, errors: 0 };
      entry.responses += r.responses;
      entry.errors += r.errors;
      responses.set(r.callee, entry);
      continue;
    }
    const key = `${r.caller}\u0000${r.callee}`;
    const hop = hops.get(key) ?? { caller: r.caller, callee: r.callee, ...empty() };
    add(hop, r.source, r.expected, r.dyed);
    hops.set(key, hop);
    add(overall, r.source, r.expected, r.dyed);
  }
  return {
    overall: ratio(overall),
    hops: [...hops.values()]
      .map((h) => ({ ...h, ratio: h.expected > 0 ? h.dyed / h.expected : null }))
      .sort((a, b) => a.caller.localeCompare(b.caller) || a.callee.localeCompare(b.callee)),
    responses: [...responses.values()]
      .map((r) => ({ ...r, errorRate: r.responses > 0 ? r.errors / r.responses : null }))
      .sort((a, b) => a.callee.localeCompare(b.callee)),
  };
}

export async function coverageRows(
  db: Database,
  releaseId: string,
  from?: Date,
  to?: Date,
): Promise<CoverageRow[]> {
  if (!from && !to) {
    // Since the release began: the projector keeps these sums, no need to add up every bucket.
    const t = schema.coverageTotals;
    return db
      .select({
        caller: t.caller,
        callee: t.callee,
        source: t.source,
        expected: t.expected,
        dyed: t.dyed,
        responses: t.responses,
        errors: t.errors,
      })
      .from(t)
      .where(eq(t.releaseId, releaseId));
  }
  const c = schema.coverage;
  const where: SQL[] = [eq(c.releaseId, releaseId)];
  if (from) where.push(gte(c.bucketStart, from));
  if (to) where.push(lt(c.bucketStart, to));
  return db
    .select({
      caller: c.caller,
      callee: c.callee,
      source: c.source,
      expected: sql<number>`sum(${c.expected})::float8`.mapWith(Number),
      dyed: sql<number>`sum(${c.dyed})::float8`.mapWith(Number),
      responses: sql<number>`sum(${c.responses})::float8`.mapWith(Number),
      errors: sql<number>`sum(${c.errors})::float8`.mapWith(Number),
    })
    .from(c)
    .where(and(...where))
    .groupBy(c.caller, c.callee, c.source);
}

export async function coverageSeries(db: Database, releaseId: string, from?: Date, to?: Date) {
  const c = schema.coverage;
  const where: SQL[] = [eq(c.releaseId, releaseId), ne(c.caller, "*")];
  if (from) where.push(gte(c.bucketStart, from));
  if (to) where.push(lt(c.bucketStart, to));
  const rows = await db
    .select({
      bucketStart: c.bucketStart,
      caller: c.caller,
      callee: c.callee,
      expected: sql<number>`sum(${c.expected})::float8`.mapWith(Number),
      dyed: sql<number>`sum(${c.dyed})::float8`.mapWith(Number),
    })
    .from(c)
    .where(and(...where))
    .groupBy(c.bucketStart, c.caller, c.callee)
    .orderBy(asc(c.bucketStart), asc(c.caller), asc(c.callee))
    .limit(20_000);
  return rows.map((r) => ({
    bucketStart: r.bucketStart.toISOString(),
    caller: r.caller,
    callee: r.callee,
    expected: r.expected,
    dyed: r.dyed,
    ratio: r.expected > 0 ? r.dyed / r.expected : null,
  }));
}

interface StatusJson {
  eventRatePerS?: number;
  /** uint64 in protobuf JSON: a string */
  appliedControlGeneration?: string;
  ringbufReserveFailures?: string | number;
  spoolDroppedEvents?: string | number;
  programs?: unknown[];
  sampling?: unknown[];
  /** present (true) only on an agent's last status before a clean stop */
  stopped?: boolean;
}

// The projector adds to coverage continuously; a dashboard polling a window many times a second gets an answer
// at most INDIGO_COVERAGE_CACHE_MS old (default 1 s; see TtlCache for the stale-while-refresh rule) instead of
// re-summing the window each time. `Age` says how old the rows behind an answer are.
const BUCKET_MS = msSetting(process.env, "INDIGO_COVERAGE_BUCKET_MS", 10_000, 1);

export function observeRoutes(app: OpenAPIHono, db: Database, agentStaleMs: number): void {
  const coverageCache = new TtlCache<CoverageBody>(
    msSetting(process.env, "INDIGO_COVERAGE_CACHE_MS", 1000, 0),
  );
  app.openapi(
    createRoute({
      method: "get",
      path: "/v1/releases/{id}/coverage",
      tags: ["observe"],
      summary: "Dye coverage of a release: overall and per hop (expected, dyed, ratio, by detection source)",
      description:
        "Window: buckets starting in [from, to). `bySource` counts expected requests by how the dye was found (`none` = missed). `series=true` adds per-hop coverage per time bucket. Answers may be up to INDIGO_COVERAGE_CACHE_MS (default 1 s) old, twice that while a refresh runs; `Age` tells. `ETag` / `If-None-Match` give a 304 when nothing changed.",
      request: { params: ReleaseIdParam, query: CoverageQuery },
      responses: {
        200: { description: "coverage", content: { "application/json": { schema: CoverageSchema } } },
        304: { description: "unchanged since the ETag given in If-None-Match" },
        ...problems(400, 401, 403, 404),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const q = c.req.valid("query");
      const from = q.from ? new Date(q.from) : undefined;
      const to = q.to ? new Date(q.to) : undefined;
      if (from && to && from >= to) {
        throw new ProblemError("validation", 400, "from must be before to", {
          errors: [{ field: "from", message: "must be before to" }],
        });
      }
      const withSeries = q.series === "true";
      const key = `${id}|${alignUp(from, BUCKET_MS)}|${alignUp(to, BUCKET_MS)}|${withSeries}`;
      // A missing release is thrown, not cached: the cache forgets failures, so it cannot hide a release
      // created a moment later.
      const cached = await coverageCache.get(key, async () => {
        const at = Date.now();
        const [release] = await db
          .select({ id: schema.releases.id })
          .from(schema.releases)
          .where(eq(schema.releases.id, id));
        if (!release) throw new ProblemError("notFound", 404, `release ${id} does not exist`);
        const summary = summarizeCoverage(await coverageRows(db, id, from, to));
        const series = withSeries ? { series: await coverageSeries(db, id, from, to) } : {};
        return coverageBody({ ...summary, ...series }, at);
      });
      const { body, etag } = coverageResponse(
        cached,
        id,
        from?.toISOString() ?? null,
        to?.toISOString() ?? null,
      );
      const headers = {
        etag,
        age: String(Math.max(0, Math.floor((Date.now() - cached.at) / 1000))),
      };
      if (notModified(c.req.header("if-none-match"), etag)) return c.body(null, 304, headers);
      return c.body(body, 200, { ...headers, "content-type": "application/json" });
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/v1/traces/{traceId}",
      tags: ["observe"],
      summary: "A dyed trace's timeline: every hop and layer it was seen at, in kernel time order",
      request: {
        params: z.object({
          traceId: z
            .string()
            .regex(/^[\x21-\x7e]{1,128}$/, "1–128 printable ASCII characters")
            .openapi({ param: { name: "traceId", in: "path" } }),
        }),
      },
      responses: {
        200: { description: "timeline", content: { "application/json": { schema: TraceSchema } } },
        ...problems(400, 401, 403, 404),
      },
    }),
    async (c) => {
      const { traceId } = c.req.valid("param");
      const rows = await traceTimeline(db, traceId);
      if (rows.length === 0) throw new ProblemError("notFound", 404, `no dyed trace ${traceId} was seen`);
      return c.json(
        {
          traceId,
          hops: rows.map((r) => ({
            at: r.at.toISOString(),
            tsNs: String(r.tsNs),
            agentId: r.agentId,
            service: r.service,
            local: r.local,
            peer: r.peer,
            pid: r.pid,
            tid: r.tid,
            kind: r.kind,
            direction: r.direction,
            dye: r.dye,
            source: r.source,
            method: r.method,
            path: r.path,
            status: r.status,
          })),
        },
        200,
      );
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/v1/agents",
      tags: ["observe"],
      summary: "Agents: mode, kernel, programs, event rate, drops, sampling",
      responses: {
        200: {
          description: "agents",
          content: { "application/json": { schema: z.object({ agents: z.array(AgentSchema) }) } },
        },
        ...problems(401, 403),
      },
    }),
    async (c) => {
      const a = schema.agents;
      const [rows, changedAt] = await Promise.all([
        db.select().from(a).orderBy(asc(a.agentId)),
        rulesChangedAt(db),
      ]);
      const now = Date.now();
      return c.json(
        {
          agents: rows.map((r) => {
            const s = r.status as StatusJson;
            const appliedGeneration = BigInt(s.appliedControlGeneration ?? 0);
            const condition = agentCondition(
              { ...r, appliedGeneration, stopped: s.stopped === true },
              now,
              agentStaleMs,
              changedAt,
            );
            return {
              agentId: r.agentId,
              node: r.node,
              mode: r.mode,
              degradedReason: r.degradedReason,
              kernelVersion: r.kernelVersion,
              lastSeenAt: r.lastSeenAt.toISOString(),
              // A node whose agent went quiet dyes and reports nothing: its hops drop out of coverage
              // rather than showing as misses, so say so where the agents are listed.
              stale: condition.stale,
              stopped: condition.stopped,
              eventRatePerS: Number(s.eventRatePerS ?? 0),
              ringbufReserveFailures: Number(s.ringbufReserveFailures ?? 0),
              spoolDroppedEvents: Number(s.spoolDroppedEvents ?? 0),
              idConflict: condition.idConflict,
              idConflictAt: r.idConflictAt?.toISOString() ?? null,
              rulesAppliedAt: generationTime(appliedGeneration)?.toISOString() ?? null,
              rulesBehind: condition.rulesBehind,
              programs: s.programs ?? [],
              sampling: s.sampling ?? [],
            };
          }),
        },
        200,
      );
    },
  );
}
