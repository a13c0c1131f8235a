// Contract tests of the release routes on the real broker and database: create, read, history, the
// lifecycle commands with If-Match, the state × command table over HTTP, concurrency, control publishing.
import { describe, expect, test } from "bun:test";
import { AgentControlSchema, fromBinary } from "@indigo/proto";
import { ProblemError } from "../problem.ts";
import { readTopic } from "../testing/topic.ts";
import { useWorld } from "../testing/use-world.ts";
import { otherInstance, sampleRelease } from "../testing/world.ts";

const w = useWorld("releases");

interface ReleaseBody {
  id: string;
  version: number;
  state: string;
  dye: number;
  name: string;
  reason: string;
  rampStep: number;
}

async function create(over: Record<string, unknown> = {}): Promise<ReleaseBody> {
  const res = await w.call("POST", "/v1/releases", { body: sampleRelease(over) });
  expect(res.status).toBe(201);
  return (await res.json()) as ReleaseBody;
}

async function command(id: string, verb: string, version: number, body?: unknown) {
  const res = await w.call("POST", `/v1/releases/${id}/${verb}`, {
    ifMatch: version,
    ...(body ? { body } : {}),
  });
  return { status: res.status, body: (await res.json()) as ReleaseBody & { type?: string; detail?: string } };
}

describe("POST /v1/releases", () => {
  test("201 with id, version, dye and state; the read and the history see it at once", async () => {
    const res = await w.call("POST", "/v1/releases", { body: sampleRelease({ name: "pay-v2 🚀 ünïcode" }) });
    expect(res.status).toBe(201);
    const body = (await res.json()) as ReleaseBody & { release: ReleaseBody };
    expect(body).toMatchObject({ version: 1, state: "draft" });
    expect(body.id).toMatch(/^rel_[0-9a-f]{32}$/);
    expect(body.dye).toBeGreaterThan(0);
    expect(res.headers.get("location")).toBe(`/v1/releases/${body.id}`);
    expect(res.headers.get("etag")).toBe('"1"');
    expect(res.headers.get("indigo-projected")).toBe("true");

    const read = await w.call("GET", `/v1/releases/${body.id}`, { role: "viewer" });
    expect(read.status).toBe(200);
    expect(await read.json()).toMatchObject({
      id: body.id,
      name: "pay-v2 🚀 ünïcode",
      state: "draft",
      version: 1,
      cohort: { traceIdPattern: expect.stringMatching(/^\^t\d+-\[a-f0-9\]\{8\}\$$/) },
      services: [
        { name: "checkout", baseline: "checkout:8080", gray: "checkout-v2:8080" },
        { name: "payment", baseline: "payment:8080" },
      ],
      ramp: [],
      analysis: null,
    });
    const history = await w.call("GET", `/v1/releases/${body.id}/history`, { role: "viewer" });
    expect(await history.json()).toMatchObject({
      releaseId: body.id,
      events: [{ version: 1, kind: "created", actor: "olga-operator" }],
    });
    const list = (await (await w.call("GET", "/v1/releases?state=draft", { role: "viewer" })).json()) as {
      releases: ReleaseBody[];
    };
    expect(list.releases.map((r) => r.id)).toContain(body.id);
  });

  test("dyes are unique among live releases, and not handed on within a minute of a release's end", async () => {
    const a = await create();
    const b = await create();
    expect(a.dye).not.toBe(b.dye);
    const live = (await (await w.call("GET", "/v1/releases", { role: "viewer" })).json()) as {
      releases: ReleaseBody[];
    };
    const liveDyes = live.releases
      .filter((r) => !["promoted", "rolled_back"].includes(r.state))
      .map((r) => r.dye);
    expect(new Set(liveDyes).size).toBe(liveDyes.length);
    expect((await command(a.id, "rollback", 1, { reason: "not needed" })).status).toBe(200);
    const c = await create();
    expect(c.dye).not.toBe(a.dye); // dye-reuse.int.test.ts: and after the time, it is
  });

  test("a bad trace-id pattern is a 400 naming the unsupported part", async () => {
    const res = await w.call("POST", "/v1/releases", {
      body: sampleRelease({ cohort: { traceIdPattern: "^t-(a|b)[0-9]+" } }),
    });
    expect(res.status).toBe(400);
    expect(res.headers.get("content-type")).toBe("application/problem+json");
    const p = (await res.json()) as { detail: string; errors: { field: string }[] };
    expect(p.detail).toContain('unsupported "(" at position 3');
    expect(p.errors[0]?.field).toBe("cohort.traceIdPattern");
  });
});

describe("lifecycle commands", () => {
  test("start, pause, resume, promote walk the lifecycle; each returns the new version; actors are recorded", async () => {
    const r = await create();
    let v = r.version;
    for (const [verb, state] of [
      ["start", "running"],
      ["pause", "paused"],
      ["resume", "running"],
      ["promote", "promoted"],
    ] as const) {
      const out = await command(r.id, verb, v, verb === "pause" ? { reason: "checking a graph" } : undefined);
      expect(out.status).toBe(200);
      expect(out.body).toMatchObject({ state, version: v + 1 });
      v += 1;
      const read = await w.call("GET", `/v1/releases/${r.id}`, { role: "viewer" });
      expect(await read.json()).toMatchObject({ state, version: v });
    }
    const history = (await (
      await w.call("GET", `/v1/releases/${r.id}/history`, { role: "viewer" })
    ).json()) as {
      events: { kind: string; actor: string }[];
    };
    expect(history.events.map((e) => e.kind)).toEqual([
      "created",
      "started",
      "paused",
      "resumed",
      "promoted",
    ]);
    expect(new Set(history.events.map((e) => e.actor))).toEqual(new Set(["olga-operator"]));
  });

  test("428 without If-Match, 409 with a stale version (with the current one), 404 for an unknown release", async () => {
    const r = await create();
    const missing = await w.call("POST", `/v1/releases/${r.id}/start`);
    expect(missing.status).toBe(428);
    expect(await missing.json()).toMatchObject({ type: "/problems/if-match-required", status: 428 });
    const stale = await command(r.id, "start", 7);
    expect(stale.status).toBe(409);
    expect(stale.body).toMatchObject({ type: "/problems/version-conflict", currentVersion: 1 });
    const unknown = await command("rel_nope", "start", 1);
    expect(unknown.status).toBe(404);
  });

  test("a JSON content type with no body is a command without a reason; a malformed body is still a 400", async () => {
    const r = await create();
    const json = { "content-type": "application/json" };
    const broken = await w.call("POST", `/v1/releases/${r.id}/start`, {
      ifMatch: 1,
      headers: json,
      rawBody: "{",
    });
    expect(broken.status).toBe(400);
    expect(await broken.json()).toMatchObject({ type: "/problems/malformed-request" });
    const empty = await w.call("POST", `/v1/releases/${r.id}/start`, {
      ifMatch: 1,
      headers: json,
      rawBody: "",
    });
    expect(empty.status, await empty.clone().text()).toBe(200);
    expect(await empty.json()).toMatchObject({ state: "running", version: 2, reason: "" });
    // Its run ends here: a running release's cohort would overlap the next tests' cohorts.
    expect((await command(r.id, "rollback", 2)).status).toBe(200);
  });
  test("a percent cohort ramps step by step; past the last step is a 409 saying so", async () => {
    const r = await create({
      cohort: { percent: 1 },
      ramp: [
        { percent: 1, pauseSeconds: 30 },
        { percent: 5, pauseSeconds: 0 },
      ],
    });
    const drafted = (await (await w.call("GET", `/v1/releases/${r.id}`)).json()) as Record<string, unknown>;
    expect(drafted.rampNextStepAt).toBeNull();
    const started = await command(r.id, "start", 1);
    expect(started.status).toBe(200);
    // the next step is due the first step's pause after the start
    const running = (await (await w.call("GET", `/v1/releases/${r.id}`)).json()) as {
      updatedAt: string;
      rampNextStepAt: string | null;
    };
    expect(running.rampNextStepAt).toBe(new Date(Date.parse(running.updatedAt) + 30_000).toISOString());
    expect(started.body).toMatchObject({ rampNextStepAt: running.rampNextStepAt });
    const advanced = await command(r.id, "advance", 2);
    expect(advanced.body).toMatchObject({ rampStep: 1, version: 3, rampNextStepAt: null });
    const past = await command(r.id, "advance", 3);
    expect(past.status).toBe(409);
    expect(past.body.detail).toContain("last ramp step (5 %)");
    // Its run ends here: a running percent cohort shares trace ids with every trace-id cohort started later.
    expect((await command(r.id, "rollback", 3, { reason: "ramp tested" })).status).toBe(200);
  });

  // Every state × every command over HTTP: 200 where the lifecycle allows it, 409 with the reason elsewhere.
  const walks: Record<string, string[]> = {
    draft: [],
    running: ["start"],
    paused: ["start", "pause"],
    promoted: ["start", "promote"],
    rolled_back: ["rollback"],
  };
  const allowed: Record<string, string[]> = {
    draft: ["start", "rollback"],
    running: ["pause", "promote", "rollback"],
    paused: ["resume", "promote", "rollback"],
    promoted: [],
    rolled_back: [],
  };
  const verbs = ["start", "pause", "resume", "advance", "promote", "rollback"];
  for (const [from, walk] of Object.entries(walks)) {
    test(`state machine: from ${from}, every command`, async () => {
      for (const verb of verbs) {
        const r = await create();
        let v = 1;
        for (const step of walk) {
          expect((await command(r.id, step, v)).status).toBe(200);
          v += 1;
        }
        const out = await command(r.id, verb, v);
        const expected = allowed[from]?.includes(verb) ? 200 : 409;
        if (out.status !== expected)
          throw new Error(`${from} × ${verb}: ${out.status} ${JSON.stringify(out.body)}`);
        if (expected === 409) {
          expect(out.body.type).toBe("/problems/illegal-transition");
          expect(out.body.detail).toContain(`release ${r.id}`);
        }
      }
    }, 60_000);
  }

  test("two conflicting commands at once: exactly one wins, the other is a 409", async () => {
    for (const [x, y] of [
      ["start", "rollback"],
      ["start", "start"],
    ] as const) {
      const r = await create();
      const outs = await Promise.all([command(r.id, x, 1), command(r.id, y, 1)]);
      expect(outs.map((o) => o.status).sort()).toEqual([200, 409]);
      const history = (await (
        await w.call("GET", `/v1/releases/${r.id}/history`, { role: "viewer" })
      ).json()) as {
        events: unknown[];
      };
      expect(history.events).toHaveLength(2);
    }
  });
});

describe("two API instances", () => {
  test("conflicting commands through two instances at once: the advisory lock lets exactly one win", async () => {
    const producer = w.sb.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const other = otherInstance(w, producer);
    try {
      for (let i = 0; i < 3; i++) {
        const r = await create();
        const outs = await Promise.allSettled([
          w.commands.execute(r.id, { type: "StartRelease", data: {} }, "a", 1),
          other.execute(r.id, { type: "RollbackRelease", data: { reason: "b" } }, "b", 1),
        ]);
        expect(outs.filter((o) => o.status === "fulfilled")).toHaveLength(1);
        const lost = outs.find((o) => o.status === "rejected");
        expect(lost?.status === "rejected" && lost.reason).toBeInstanceOf(ProblemError);
        expect(lost?.status === "rejected" && (lost.reason as ProblemError).problem.status).toBe(409);
      }
    } finally {
      await producer.disconnect();
    }
  }, 60_000);
});

/** Rolls back every running release of this world: at most 16 run at once, and the tests above leave some. */
async function endRunning(): Promise<void> {
  const res = await w.call("GET", "/v1/releases?state=running", { role: "viewer" });
  const { releases } = (await res.json()) as { releases: ReleaseBody[] };
  for (const r of releases)
    expect((await command(r.id, "rollback", r.version, { reason: "room" })).status).toBe(200);
}

describe("load", () => {
  test("more commands at once than the pool has connections: every one answers, none deadlocks", async () => {
    await endRunning();
    const releases = await Promise.all(Array.from({ length: 12 }, (_, i) => create({ name: `bulk-${i}` })));
    expect(new Set(releases.map((r) => r.dye)).size).toBe(12);
    const outs = await Promise.all(releases.map((r) => command(r.id, "start", 1)));
    expect(outs.map((o) => o.status)).toEqual(Array(12).fill(200));
    await endRunning();
  }, 60_000);
});

describe("control publishing", () => {
  test("every start, pause, resume, promote and rollback publishes the running releases' rules to key *", async () => {
    const r = await create({ cohort: { header: { name: "x-lane", value: "gray" } } });
    const before = (await readTopic(w.sb.kafka, w.controlTopic)).length;
    await command(r.id, "start", 1);
    let msgs = await readTopic(w.sb.kafka, w.controlTopic);
    expect(msgs.length).toBe(before + 1);
    const last = msgs.at(-1)!;
    expect(last.key).toBe("*");
    const control = fromBinary(AgentControlSchema, last.value!);
    const rule = control.rules.find((x) => x.releaseId === r.id);
    expect(rule?.dye).toBe(r.dye);
    expect(rule?.cohort?.match).toEqual({
      case: "header",
      value: expect.objectContaining({ name: "x-lane", value: "gray" }),
    });
    await command(r.id, "pause", 2);
    msgs = await readTopic(w.sb.kafka, w.controlTopic);
    const lastPaused = msgs[msgs.length - 1];
    const paused = fromBinary(AgentControlSchema, lastPaused?.value ?? Buffer.alloc(0));
    expect(paused.rules.find((x) => x.releaseId === r.id)).toBeUndefined();
    expect(paused.generation).toBeGreaterThan(control.generation);
  });
});

describe("OpenAPI", () => {
  test("/openapi.json is OpenAPI 3.1 generated from the routes, and lists every route", async () => {
    const doc = (await (await w.call("GET", "/openapi.json", { token: null })).json()) as {
      openapi: string;
      paths: Record<string, Record<string, unknown>>;
    };
    expect(doc.openapi).toBe("3.1.0");
    for (const path of [
      "/v1/releases",
      "/v1/releases/{id}",
      "/v1/releases/{id}/history",
      "/v1/releases/{id}/start",
      "/v1/releases/{id}/pause",
      "/v1/releases/{id}/resume",
      "/v1/releases/{id}/promote",
      "/v1/releases/{id}/rollback",
      "/v1/releases/{id}/coverage",
      "/v1/traces/{traceId}",
      "/v1/agents",
      "/v1/tokens",
    ]) {
      expect(Object.keys(doc.paths)).toContain(path);
    }
  });
});
