// RFC 9457 problem details: every 4xx/5xx the API answers is `application/problem+json` with a `type` URI
// (documented in the README), a title, the status, a detail saying what is wrong, and — for validation —
// the offending fields.
import type { Context } from "hono";

export interface FieldError {
  readonly field: string;
  readonly message: string;
}

export interface Problem {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly detail: string;
  readonly instance?: string;
  readonly errors?: readonly FieldError[];
  readonly [extension: string]: unknown;
}

export const PROBLEM_TYPES = {
  validation: ["validation", "Invalid request"],
  malformed: ["malformed-request", "Malformed request"],
  unauthorized: ["unauthorized", "Missing or invalid bearer token"],
  forbidden: ["forbidden", "Role not allowed"],
  notFound: ["not-found", "Not found"],
  conflict: ["version-conflict", "Version conflict"],
  illegal: ["illegal-transition", "Illegal state transition"],
  exists: ["already-exists", "Already exists"],
  cohortOverlap: ["cohort-overlap", "Cohort overlaps a running release"],
  tooManyRunning: ["too-many-running", "Too many running releases"],
  preconditionRequired: ["if-match-required", "If-Match required"],
  tooLarge: ["payload-too-large", "Request body too large"],
  unsupportedMedia: ["unsupported-media-type", "Unsupported media type"],
  methodNotAllowed: ["method-not-allowed", "Method not allowed"],
  unavailable: ["unavailable", "Service unavailable"],
  internal: ["internal", "Internal error"],
} as const satisfies Record<string, readonly [string, string]>;

export type ProblemKind = keyof typeof PROBLEM_TYPES;

export const problemTypeUri = (slug: string): string => `/problems/${slug}`;

/** Thrown by handlers and middleware; the app's error handler turns it into the response. */
export class ProblemError extends Error {
  readonly problem: Problem;
  readonly headers: Readonly<Record<string, string>>;
  constructor(
    kind: ProblemKind,
    status: number,
    detail: string,
    extra: Record<string, unknown> = {},
    headers: Record<string, string> = {},
  ) {
    super(detail);
    const [slug, title] = PROBLEM_TYPES[kind];
    this.problem = { type: problemTypeUri(slug), title, status, detail, ...extra };
    this.headers = headers;
  }
}

export function problemResponse(
  c: Context,
  problem: Problem,
  headers: Readonly<Record<string, string>> = {},
): Response {
  return new Response(JSON.stringify({ ...problem, instance: problem.instance ?? c.req.path }), {
    status: problem.status,
    headers: { "content-type": "application/problem+json", ...headers },
  });
}
