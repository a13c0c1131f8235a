// A table of bad requests: each gets the right 4xx as RFC 9457 problem+json, and none of them changes the
// database or appends to the release or control topics.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { schema } from "@indigo/db";
import { asc, sql } from "drizzle-orm";
import type { CallInit } from "./testing/world.ts";
import { createWorld, sampleRelease, type World } from "./testing/world.ts";

let w: World;
let draftId = "";
let runningId = "";

beforeAll(async () => {
  w = await createWorld("badinput");
  const draft = await w.call("POST", "/v1/releases", { body: sampleRelease() });
  draftId = ((await draft.json()) as { id: string }).id;
  const running = await w.call("POST", "/v1/releases", { body: sampleRelease({ name: "running" }) });
  runningId = ((await running.json()) as { id: string }).id;
  expect((await w.call("POST", `/v1/releases/${runningId}/start`, { ifMatch: 1 })).status).toBe(200);
}, 60_000);
afterAll(async () => {
  await w?.close();
}, 30_000);

async function snapshot() {
  const db = w.sb.database.db;
  const releases = await db.select().from(schema.releases).orderBy(asc(schema.releases.id));
  const events = await db.select({ n: sql<number>`count(*)::int` }).from(schema.releaseEvents);
  const tokens = await db.select({ n: sql<number>`count(*)::int` }).from(schema.apiTokens);
  const ends = async (topic: string) =>
    (await w.sb.admin.fetchTopicOffsets(topic)).map((o) => `${o.partition}:${o.high}`).join(",");
  return {
    releases,
    events: events[0]?.n,
    tokens: tokens[0]?.n,
    releaseTopic: await ends(w.sb.topics.release),
    controlTopic: await ends(w.controlTopic),
  };
}

const create = (body: unknown, extra: Partial<CallInit> = {}): [string, string, CallInit] => [
  "POST",
  "/v1/releases",
  { body, ...extra },
];
const withCohort = (cohort: unknown) => create(sampleRelease({ cohort }));
const cmd = (verb: string, init: CallInit = {}, id?: string): [string, string, CallInit] => [
  "POST",
  `/v1/releases/${id ?? "DRAFT"}/${verb}`,
  init,
];

// [name, request, expected status, expected problem type, a fragment the detail must contain]
const cases: [string, [string, string, CallInit], number, string, string?][] = [
  ["malformed JSON", create(undefined, { rawBody: '{"name": ' }), 400, "malformed-request"],
  [
    "no content type",
    create(undefined, { rawBody: "{}", headers: { "content-type": "" } }),
    415,
    "unsupported-media-type",
  ],
  [
    "text/plain body",
    create(undefined, { rawBody: "{}", headers: { "content-type": "text/plain" } }),
    415,
    "unsupported-media-type",
  ],
  ["empty object", create({}), 400, "validation", "name"],
  ["JSON array as body", create([1, 2]), 400, "validation"],
  ["JSON null as body", create(null), 400, "validation"],
  ["name is a number", create(sampleRelease({ name: 42 })), 400, "validation", "name"],
  ["name is empty", create(sampleRelease({ name: "" })), 400, "validation", "name"],
  ["name too long", create(sampleRelease({ name: "n".repeat(201) })), 400, "validation", "name"],
  ["name with a NUL", create(sampleRelease({ name: "a\u0000b" })), 400, "validation", "control"],
  ["unknown top-level field", create(sampleRelease({ admin: true })), 400, "validation"],
  ["cohort missing", create({ name: "x", services: sampleRelease().services }), 400, "validation", "cohort"],
  ["cohort empty", withCohort({}), 400, "validation", "exactly one"],
  [
    "cohort with two matchers",
    withCohort({ sni: ".a.example", percent: 5 }),
    400,
    "validation",
    "exactly one",
  ],
  ["cohort unknown matcher", withCohort({ regex: "a.*" }), 400, "validation"],
  [
    "pattern with *",
    withCohort({ traceIdPattern: "^t-.*" }),
    400,
    "validation",
    'unsupported "*" at position 4',
  ],
  ["pattern with alternation", withCohort({ traceIdPattern: "^a|b" }), 400, "validation", 'unsupported "|"'],
  [
    "pattern with lookahead",
    withCohort({ traceIdPattern: "^(?=t)x" }),
    400,
    "validation",
    'unsupported "(?="',
  ],
  [
    "pattern with a range count",
    withCohort({ traceIdPattern: "^t[0-9]{2,4}" }),
    400,
    "validation",
    "fixed counts",
  ],
  ["pattern with unicode", withCohort({ traceIdPattern: "^t-é{3}" }), 400, "validation", "printable ASCII"],
  [
    "pattern that looks like SQL",
    withCohort({ traceIdPattern: "x'; DROP TABLE releases; --" }),
    400,
    "validation",
    "unsupported",
  ],
  ["pattern too long", withCohort({ traceIdPattern: "a".repeat(300) }), 400, "validation"],
  ["pattern is a number", withCohort({ traceIdPattern: 7 }), 400, "validation"],
  [
    "header name with a space",
    withCohort({ header: { name: "x lane", value: "g" } }),
    400,
    "validation",
    "HTTP token",
  ],
  [
    "header value with a newline",
    withCohort({ header: { name: "x-lane", value: "a\r\nb" } }),
    400,
    "validation",
  ],
  ["sni wildcard", withCohort({ sni: "*.example.com" }), 400, "validation", "sni"],
  ["percent 0", withCohort({ percent: 0 }), 400, "validation", "percent"],
  ["percent above 100", withCohort({ percent: 150 }), 400, "validation", "percent"],
  ["percent as a string", withCohort({ percent: "5" }), 400, "validation"],
  ["services empty", create(sampleRelease({ services: [] })), 400, "validation", "services"],
  ["services not an array", create(sampleRelease({ services: "checkout" })), 400, "validation", "services"],
  [
    "baseline without a port",
    create(sampleRelease({ services: [{ name: "a", baseline: "a" }] })),
    400,
    "validation",
    "baseline",
  ],
  [
    "service name like SQL",
    create(sampleRelease({ services: [{ name: "x' OR 1=1 --", baseline: "a:1" }] })),
    400,
    "validation",
  ],
  [
    "a service twice",
    create(
      sampleRelease({
        services: [
          { name: "a", baseline: "a:1" },
          { name: "a", baseline: "a:2" },
        ],
      }),
    ),
    400,
    "validation",
    "twice",
  ],
  [
    "ramp on a pattern cohort",
    create(sampleRelease({ ramp: [{ percent: 1, pauseSeconds: 1 }] })),
    400,
    "validation",
    "percent cohort",
  ],
  [
    "ramp decreasing",
    create(
      sampleRelease({
        cohort: { percent: 5 },
        ramp: [
          { percent: 5, pauseSeconds: 1 },
          { percent: 2, pauseSeconds: 1 },
        ],
      }),
    ),
    400,
    "validation",
    "increase",
  ],
  [
    "analysis floor above 1",
    create(
      sampleRelease({
        analysis: { coverageFloor: 2, errorRateCeiling: 0.1, windowSeconds: 60, minRequests: 1 },
      }),
    ),
    400,
    "validation",
    "coverageFloor",
  ],
  [
    "a body over the size limit",
    create(sampleRelease({ name: "x".repeat(100_000) })),
    413,
    "payload-too-large",
  ],
  ["no token", create(sampleRelease(), { token: null }), 401, "unauthorized"],
  [
    "Basic instead of Bearer",
    create(sampleRelease(), { token: null, headers: { authorization: "Basic YTpi" } }),
    401,
    "unauthorized",
  ],
  ["an unknown token", create(sampleRelease(), { token: "indigo_not-a-real-token" }), 401, "unauthorized"],
  ["a token like SQL", create(sampleRelease(), { token: "' OR '1'='1" }), 401, "unauthorized"],
  ["a viewer creating", create(sampleRelease(), { role: "viewer" }), 403, "forbidden", "needs operator"],
  [
    "an operator issuing tokens",
    ["POST", "/v1/tokens", { body: { name: "x", role: "admin" } }],
    403,
    "forbidden",
    "needs admin",
  ],
  [
    "an admin issuing a token with a bad role",
    ["POST", "/v1/tokens", { role: "admin", body: { name: "x", role: "root" } }],
    400,
    "validation",
    "role",
  ],
  ["a command without If-Match", cmd("start"), 428, "if-match-required"],
  ["If-Match not a number", cmd("start", { ifMatch: "abc" }), 400, "validation", "If-Match"],
  ["If-Match zero", cmd("start", { ifMatch: "0" }), 400, "validation", "If-Match"],
  ["If-Match negative", cmd("start", { ifMatch: "-1" }), 400, "validation", "If-Match"],
  ["If-Match stale", cmd("start", { ifMatch: 99 }), 409, "version-conflict", "not 99"],
  [
    "an illegal transition",
    cmd("pause", { ifMatch: 1 }),
    409,
    "illegal-transition",
    "it has not been started",
  ],
  [
    "pause reason not a string",
    cmd("pause", { ifMatch: 2, body: { reason: 5 } }, "RUNNING"),
    400,
    "validation",
    "reason",
  ],
  [
    "pause reason too long",
    cmd("pause", { ifMatch: 2, body: { reason: "r".repeat(1001) } }, "RUNNING"),
    400,
    "validation",
    "reason",
  ],
  [
    "a command on an unknown release",
    cmd("start", { ifMatch: 1 }, "rel_unknown"),
    404,
    "not-found",
    "does not exist",
  ],
  ["an id like SQL", cmd("start", { ifMatch: 1 }, "x'%20OR%20'1'%3D'1"), 400, "validation", "id"],
  ["an id too long", cmd("start", { ifMatch: 1 }, "r".repeat(100)), 400, "validation", "id"],
  ["an unknown command", cmd("explode", { ifMatch: 1 }), 404, "not-found"],
  ["GET an unknown release", ["GET", "/v1/releases/rel_unknown", { role: "viewer" }], 404, "not-found"],
  [
    "GET min_version not a number",
    ["GET", "/v1/releases/DRAFT?min_version=abc", { role: "viewer" }],
    400,
    "validation",
  ],
  [
    "history of an unknown release",
    ["GET", "/v1/releases/rel_unknown/history", { role: "viewer" }],
    404,
    "not-found",
  ],
  [
    "list with an unknown state",
    ["GET", "/v1/releases?state=bogus", { role: "viewer" }],
    400,
    "validation",
    "state",
  ],
  ["list with limit 0", ["GET", "/v1/releases?limit=0", { role: "viewer" }], 400, "validation", "limit"],
  [
    "coverage from not a date",
    ["GET", "/v1/releases/DRAFT/coverage?from=yesterday", { role: "viewer" }],
    400,
    "validation",
    "from",
  ],
  [
    "coverage from after to",
    [
      "GET",
      "/v1/releases/DRAFT/coverage?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
      { role: "viewer" },
    ],
    400,
    "validation",
    "before",
  ],
  [
    "coverage of an unknown release",
    ["GET", "/v1/releases/rel_unknown/coverage", { role: "viewer" }],
    404,
    "not-found",
  ],
  ["a trace never seen", ["GET", "/v1/traces/t-00000000", { role: "viewer" }], 404, "not-found"],
  ["a trace id with unicode", ["GET", "/v1/traces/%E2%9C%93", { role: "viewer" }], 400, "validation"],
  ["an unknown route", ["GET", "/v2/releases", { role: "viewer" }], 404, "not-found"],
  ["an unknown method", ["DELETE", "/v1/releases", { role: "admin" }], 404, "not-found"],
];

test(`${cases.length} bad inputs → the right 4xx problem+json each; nothing written`, async () => {
  expect(cases.length).toBeGreaterThanOrEqual(40);
  const before = await snapshot();
  const failures: string[] = [];
  for (const [name, [method, rawPath, init], status, type, fragment] of cases) {
    const path = rawPath.replace("/DRAFT", `/${draftId}`).replace("/RUNNING", `/${runningId}`);
    const res = await w.call(method, path, init);
    const text = await res.text();
    let body: { type?: string; title?: string; status?: number; detail?: string } = {};
    try {
      body = JSON.parse(text);
    } catch {}
    const problems: string[] = [];
    if (res.status !== status) problems.push(`status ${res.status}, want ${status}`);
    if (res.headers.get("content-type") !== "application/problem+json") problems.push("not problem+json");
    if (body.type !== `/problems/${type}`) problems.push(`type ${body.type}, want /problems/${type}`);
    if (body.status !== res.status || !body.title || !body.detail) problems.push("incomplete problem");
    if (fragment && !body.detail?.includes(fragment))
      problems.push(`detail lacks ${JSON.stringify(fragment)}`);
    if (problems.length > 0) failures.push(`${name}: ${problems.join(", ")} — ${text.slice(0, 300)}`);
  }
  expect(failures).toEqual([]);
  expect(await snapshot()).toEqual(before);
}, 60_000);
