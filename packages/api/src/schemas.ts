// The request and response shapes of the REST API (zod, registered as OpenAPI components).
import { z } from "@hono/zod-openapi";

const NO_CONTROL = /^[^\p{Cc}]*$/u;
const ENDPOINT = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]{1,253}):\d{1,5}$/;

export const ReleaseIdParam = z.object({
  id: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,64}$/, "a release id is 1–64 letters, digits, '_', '.' or '-'")
    .openapi({ param: { name: "id", in: "path" }, example: "rel_6f1c…" }),
});

export const CohortSchema = z
  .object({
    traceIdPattern: z.string().max(256).optional().openapi({ example: "^t-[a-f0-9]{8}-[a-f0-9]{4}$" }),
    header: z
      .object({ name: z.string().max(256), value: z.string().max(512) })
      .strict()
      .optional(),
    sni: z.string().max(256).optional().openapi({ example: ".gray.example.com" }),
    percent: z.number().optional().openapi({ example: 1 }),
  })
  .strict()
  .openapi("Cohort", {
    description:
      "Exactly one matcher. traceIdPattern: a literal prefix and fixed-length classes (the kernel's pattern family); header: name/value; sni: TLS server-name suffix; percent: share of trace ids (0 < p ≤ 100, 2 decimals).",
  });

export const ServiceSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/, "1–100 letters, digits, '.', '_' or '-'"),
    baseline: z.string().regex(ENDPOINT, "host:port"),
    gray: z.string().regex(ENDPOINT, "host:port").optional(),
  })
  .strict()
  .openapi("LaneService", { description: "A service of the lane; without gray it falls back to baseline." });

export const RampStepSchema = z
  .object({
    percent: z.number().gt(0).max(100),
    pauseSeconds: z.number().int().min(0).max(86_400),
  })
  .strict()
  .openapi("RampStep");

export const AnalysisSchema = z
  .object({
    coverageFloor: z.number().min(0).max(1),
    errorRateCeiling: z.number().min(0).max(1),
    windowSeconds: z.number().int().min(1).max(86_400),
    minRequests: z.number().int().min(0).max(1_000_000_000),
  })
  .strict()
  .openapi("Analysis");

export const CreateReleaseSchema = z
  .object({
    name: z.string().min(1).max(200).regex(NO_CONTROL, "no control characters"),
    cohort: CohortSchema,
    services: z.array(ServiceSchema).min(1).max(64),
    ramp: z.array(RampStepSchema).max(20).optional(),
    analysis: AnalysisSchema.optional(),
  })
  .strict()
  .openapi("CreateRelease");

export const ReasonSchema = z
  .object({ reason: z.string().max(1000).regex(NO_CONTROL, "no control characters").optional() })
  .strict()
  .openapi("CommandReason");

export const ReleaseSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    state: z.enum(["draft", "running", "paused", "promoted", "rolled_back"]),
    version: z.number().int(),
    dye: z.number().int(),
    cohort: CohortSchema,
    services: z.array(ServiceSchema),
    ramp: z.array(RampStepSchema),
    rampStep: z.number().int(),
    rampNextStepAt: z.string().nullable().openapi({
      description:
        "running with a ramp step after this one: when it is due (last start, resume or step + this step's pauseSeconds). The analysis advances it then, or holds it (rampHold says why)",
    }),
    rampHold: z
      .object({
        kind: z.enum(["traffic", "evidence"]),
        reason: z.string(),
        since: z.string(),
        checkedAt: z.string(),
      })
      .nullable()
      .openapi({
        description:
          "while the next step is due: why the analysis holds it — traffic (no hop had minRequests cohort requests in its window) or evidence (the window may lack events: an agent's spool, an agent gone quiet, the projector's lag) — since when, and the pass that last found it (an old checkedAt: no analysis pass runs). null: not held at the last pass",
      }),
    analysis: AnalysisSchema.nullable(),
    reason: z.string(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi("Release");

export const HistoryEntrySchema = z
  .object({
    version: z.number().int(),
    kind: z.string(),
    actor: z.string(),
    at: z.string(),
    event: z.unknown().openapi({ description: "The ReleaseEvent in protobuf JSON" }),
  })
  .openapi("HistoryEntry");

const Counts = {
  expected: z.number(),
  dyed: z.number(),
  ratio: z.number().nullable().openapi({ description: "dyed / expected; null when nothing was expected" }),
  bySource: z.record(z.string(), z.number()),
};

export const CoverageSchema = z
  .object({
    releaseId: z.string(),
    from: z.string().nullable(),
    to: z.string().nullable(),
    overall: z.object(Counts),
    hops: z.array(z.object({ caller: z.string(), callee: z.string(), ...Counts })),
    responses: z.array(
      z.object({
        callee: z.string(),
        responses: z.number(),
        errors: z.number(),
        errorRate: z.number().nullable(),
      }),
    ),
    series: z
      .array(
        z.object({
          bucketStart: z.string(),
          caller: z.string(),
          callee: z.string(),
          expected: z.number(),
          dyed: z.number(),
          ratio: z.number().nullable(),
        }),
      )
      .optional(),
  })
  .openapi("Coverage");

export const CoverageQuery = z.object({
  from: z.iso.datetime({ offset: true }).optional().openapi({ example: "2026-11-25T00:00:00Z" }),
  to: z.iso.datetime({ offset: true }).optional(),
  series: z
    .enum(["true", "false"])
    .optional()
    .openapi({ description: "also return per-hop coverage per time bucket (for charts)" }),
});

export const TraceSchema = z
  .object({
    traceId: z.string(),
    hops: z.array(
      z.object({
        at: z.string(),
        tsNs: z.string(),
        agentId: z.string(),
        service: z.string(),
        local: z.string(),
        peer: z.string(),
        pid: z.number(),
        tid: z.number(),
        kind: z.string(),
        direction: z.string(),
        dye: z.number(),
        source: z.string(),
        method: z.string(),
        path: z.string(),
        status: z.number(),
      }),
    ),
  })
  .openapi("Trace");

export const AgentSchema = z
  .object({
    agentId: z.string(),
    node: z.string(),
    mode: z.string(),
    degradedReason: z.string(),
    kernelVersion: z.string(),
    lastSeenAt: z.string(),
    /** not heard from for longer than INDIGO_AGENT_STALE_MS (default 30 s) */
    stale: z.boolean(),
    stopped: z.boolean().openapi({
      description:
        "its last status said it stopped cleanly (its events handed to Kafka or its spool); such an agent is not stale",
    }),
    eventRatePerS: z.number(),
    ringbufReserveFailures: z.number(),
    spoolDroppedEvents: z.number(),
    /** two agents report under this id, or its sequence restarted: what showed it ("" when not within 10 min) */
    idConflict: z.string(),
    idConflictAt: z.string().nullable(),
    rulesAppliedAt: z
      .string()
      .nullable()
      .openapi({ description: "when the rules in force on this agent were published (null: none yet)" }),
    rulesBehind: z.boolean().openapi({
      description:
        "its last status, sent more than 5 s after the rules last changed (a start, pause, resume, step or end of a release), still showed rules published before that change",
    }),
    programs: z.array(z.unknown()),
    sampling: z.array(z.unknown()),
  })
  .openapi("Agent");

export const ProblemSchema = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    instance: z.string().optional(),
    errors: z.array(z.object({ field: z.string(), message: z.string() })).optional(),
  })
  .openapi("Problem");

export const CreateTokenSchema = z
  .object({
    name: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9@._-]{0,99}$/, "1–100 letters, digits, '@', '.', '_' or '-'"),
    role: z.enum(["viewer", "operator", "admin"]),
  })
  .strict()
  .openapi("CreateToken");
