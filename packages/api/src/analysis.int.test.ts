// Analysis end to end on the real broker and database: dye events showing a hop below the coverage floor
// make the release roll back by itself, with the failing hop and figures in its history; a ramped release
// advances only once its window holds enough to judge, and not while it may lack events.
import { expect, test } from "bun:test";
import { schema } from "@indigo/db";
import { BOOT_NS, dyeBatch, type Ev } from "@indigo/projector/testing";
import {
  AgentControlSchema,
  AgentMode,
  AgentStatusSchema,
  create,
  DetectionSource,
  fromBinary,
  toBinary,
} from "@indigo/proto";
import { eq } from "drizzle-orm";
import { Analyzer } from "./analysis.ts";
import { ProjectorProgress } from "./evidence.ts";
import { logEnd } from "./projection.ts";
import { readTopic } from "./testing/topic.ts";
import { useWorld } from "./testing/use-world.ts";
import { sampleRelease } from "./testing/world.ts";

const w = useWorld("analysis");

/** Produces one agent's batch of dye events and waits until the projection holds it. */
async function project(agent: string, events: Ev[]): Promise<void> {
  const producer = w.sb.kafka.producer();
  await producer.connect();
  await producer.send({ topic: w.sb.topics.dye, messages: [{ key: agent, value: dyeBatch(agent, events) }] });
  await producer.disconnect();
  await w.projector.caughtUp(20_000);
}

/** The ramp_holds rows of a release. */
const holdRows = (id: string) =>
  w.sb.database.db.select().from(schema.rampHolds).where(eq(schema.rampHolds.releaseId, id));

/** Rolls back what earlier tests left running: a new cohort must not overlap a running one. */
async function endRunning(): Promise<void> {
  const running = (await (await w.call("GET", "/v1/releases?state=running")).json()) as {
    releases: { id: string; version: number }[];
  };
  for (const r of running.releases)
    expect((await w.call("POST", `/v1/releases/${r.id}/rollback`, { ifMatch: r.version })).status).toBe(200);
}

test("a hop below the floor rolls the release back by itself; a healthy release stays", async () => {
  const analysis = { coverageFloor: 0.9, errorRateCeiling: 0.5, windowSeconds: 600, minRequests: 4 };
  let startedAt = 0;
  const make = async (name: string) => {
    const res = await w.call("POST", "/v1/releases", { body: sampleRelease({ name, analysis }) });
    const r = (await res.json()) as { id: string; dye: number };
    const started = await w.call("POST", `/v1/releases/${r.id}/start`, { ifMatch: 1 });
    expect(started.status).toBe(200);
    startedAt = Date.parse(((await started.json()) as { updatedAt: string }).updatedAt);
    return r;
  };
  const bad = await make("leaky");
  const good = await make("tight");
  // 20 s after the starts (past the analysis' grace), judged at 30 s
  const atMs = Number(BigInt(startedAt + 20_000) - BOOT_NS / 1_000_000n);
  const events = [];
  let seq = 0;
  for (let i = 0; i < 4; i++) {
    for (const [r, dyedAtSecondHop] of [
      [bad, i < 2],
      [good, true],
    ] as const) {
      const traceId = `t-${r.id}-${i}`;
      const dyed = { dye: r.dye, releaseId: r.id, source: DetectionSource.PAYLOAD };
      events.push({ seq: ++seq, atMs, ...dyed, comm: "gateway", sport: 41000 + seq, dport: 8080, traceId });
      events.push(
        dyedAtSecondHop
          ? {
              seq: ++seq,
              atMs,
              ...dyed,
              source: DetectionSource.INHERIT,
              comm: "checkout",
              sport: 41000 + seq,
              dport: 9090,
              traceId,
            }
          : { seq: ++seq, atMs, comm: "checkout", sport: 41000 + seq, dport: 9090, traceId },
      );
    }
  }
  await project("agent-a", events);

  const analyzer = new Analyzer({
    db: w.sb.database.db,
    commands: w.commands,
    now: () => new Date(startedAt + 30_000),
  });
  expect(await analyzer.tick()).toEqual({ rolledBack: [bad.id], advanced: [], held: [] });

  const read = await w.call("GET", `/v1/releases/${bad.id}`, { role: "viewer" });
  expect(await read.json()).toMatchObject({ state: "rolled_back", version: 3 });
  const history = (await (
    await w.call("GET", `/v1/releases/${bad.id}/history`, { role: "viewer" })
  ).json()) as {
    events: { kind: string; actor: string; event: { rolledBack: Record<string, unknown> } }[];
  };
  const last = history.events.at(-1);
  expect(last?.kind).toBe("rolledBack");
  expect(last?.actor).toBe("analysis");
  expect(last?.event.rolledBack).toMatchObject({
    automatic: true,
    hop: "checkout → 10.0.0.2:9090",
    coverage: 0.5,
  });
  expect(String(last?.event.rolledBack.reason)).toContain("coverage 50.00 % (2/4)");
  expect(await (await w.call("GET", `/v1/releases/${good.id}`, { role: "viewer" })).json()).toMatchObject({
    state: "running",
  });

  const control = await readTopic(w.sb.kafka, w.controlTopic);
  const latest = fromBinary(AgentControlSchema, control[control.length - 1]?.value ?? Buffer.alloc(0));
  expect(latest.rules.map((r) => r.releaseId)).toEqual([good.id]);

  // for alerts: /metrics counts the analysis' rollback (an operator's would not count) and the states
  const metrics = await (await w.call("GET", "/metrics")).text();
  expect(metrics).toContain("indigo_releases_rolled_back_automatically_total 1\n");
  expect(metrics).toContain('indigo_releases{state="rolled_back"} 1\n');
  expect(metrics).toContain('indigo_releases{state="running"} 1\n');
}, 60_000);

/**
 * Starts a release of a 5 % cohort ramped to 50 % with no pause, whose analysis judges from 4 requests; ends
 * the running ones first (a percent cohort shares trace ids with every other cohort).
 */
async function startRamped(
  name: string,
  progress?: ProjectorProgress,
): Promise<{
  r: { id: string; dye: number };
  startedAt: number;
  analyzer: Analyzer;
  logged: string[];
  clock: { now: number };
}> {
  await endRunning();
  const created = await w.call("POST", "/v1/releases", {
    body: sampleRelease({
      name,
      cohort: { percent: 5 },
      ramp: [
        { percent: 5, pauseSeconds: 0 },
        { percent: 50, pauseSeconds: 0 },
      ],
      analysis: { coverageFloor: 0.9, errorRateCeiling: 0.5, windowSeconds: 600, minRequests: 4 },
    }),
  });
  const r = (await created.json()) as { id: string; dye: number };
  expect(created.status).toBe(201);
  const started = await w.call("POST", `/v1/releases/${r.id}/start`, { ifMatch: 1 });
  const startedAt = Date.parse(((await started.json()) as { updatedAt: string }).updatedAt);
  // judged 30 s after the start: past the grace
  const clock = { now: startedAt + 30_000 };
  const logged: string[] = [];
  const analyzer = new Analyzer({
    db: w.sb.database.db,
    commands: w.commands,
    log: (l) => logged.push(l),
    now: () => new Date(clock.now),
    ...(progress ? { progress } : {}),
  });
  return { r, startedAt, analyzer, logged, clock };
}

test("a ramped release with an analysis is held while its window has nothing to judge, and advances once it has", async () => {
  const { r, startedAt, analyzer, logged, clock } = await startRamped("ramped");

  // Its step's pause is over at once, but no request of its cohort has been seen: held, and said once.
  const reason = "no hop had 4 expected requests in the last 600 s, nothing to judge the gray version on";
  expect(await analyzer.tick()).toEqual({ rolledBack: [], advanced: [], held: [r.id] });
  clock.now += 5_000;
  expect(await analyzer.tick()).toEqual({ rolledBack: [], advanced: [], held: [r.id] });
  expect(logged).toEqual([`ramp of ${r.id} held at 5 %: ${reason}`]);
  // recorded for whoever reads the release: held since the first pass that found it, checked by the last
  expect(await (await w.call("GET", `/v1/releases/${r.id}`)).json()).toMatchObject({
    rampHold: {
      kind: "traffic",
      reason,
      since: new Date(startedAt + 30_000).toISOString(),
      checkedAt: new Date(startedAt + 35_000).toISOString(),
    },
  });
  expect(analyzer.metrics()).toContain("indigo_analysis_ramps_held 1\n");

  // 4 dyed requests on one hop, 20 s after the start: enough to judge, all dyed: it advances.
  const atMs = Number(BigInt(startedAt + 20_000) - BOOT_NS / 1_000_000n);
  const dyed = { dye: r.dye, releaseId: r.id, source: DetectionSource.PAYLOAD };
  const events = [1, 2, 3, 4].map((seq) => ({
    seq,
    atMs,
    ...dyed,
    comm: "gateway",
    sport: 42000 + seq,
    dport: 8080,
    traceId: `t-ramp-${seq}`,
  }));
  await project("agent-r", events);
  expect(await analyzer.tick()).toEqual({ rolledBack: [], advanced: [r.id], held: [] });
  expect(analyzer.metrics()).toContain("indigo_analysis_ramps_held 0\n");
  expect(await (await w.call("GET", `/v1/releases/${r.id}`)).json()).toMatchObject({
    rampStep: 1,
    rampHold: null,
  });
  expect(await holdRows(r.id)).toEqual([]);
}, 60_000);

test("misses in the grace after a start are not judged (the agents apply new rules seconds apart); later ones are", async () => {
  await endRunning();
  const analysis = { coverageFloor: 0.9, errorRateCeiling: 0.5, windowSeconds: 600, minRequests: 4 };
  const created = await w.call("POST", "/v1/releases", { body: sampleRelease({ name: "skewed", analysis }) });
  const r = (await created.json()) as { id: string; dye: number };
  const started = await w.call("POST", `/v1/releases/${r.id}/start`, { ifMatch: 1 });
  const startedAt = Date.parse(((await started.json()) as { updatedAt: string }).updatedAt);
  const atMs = (ms: number) => Number(BigInt(ms) - BOOT_NS / 1_000_000n);
  // Each trace dyed at its first hop and missed at the second: coverage 0 % there.
  let seq = 0;
  const missed = (at: number, tag: string) =>
    [0, 1, 2, 3].flatMap((i) => [
      {
        seq: ++seq,
        atMs: atMs(at),
        dye: r.dye,
        releaseId: r.id,
        source: DetectionSource.PAYLOAD,
        comm: "gateway",
        sport: 43000 + seq,
        dport: 8080,
        traceId: `t-${tag}-${i}`,
      },
      {
        seq: ++seq,
        atMs: atMs(at),
        comm: "checkout",
        sport: 43000 + seq,
        dport: 9090,
        traceId: `t-${tag}-${i}`,
      },
    ]);
  const analyzerAt = (ms: number) =>
    new Analyzer({ db: w.sb.database.db, commands: w.commands, graceMs: 10_000, now: () => new Date(ms) });

  await project("agent-s", missed(startedAt + 1_000, "early"));
  expect(await analyzerAt(startedAt + 30_000).tick()).toEqual({ rolledBack: [], advanced: [], held: [] });
  // the same misses 25 s after the start (a bucket starting past the grace) are judged
  await project("agent-s", missed(startedAt + 25_000, "late"));
  expect(await analyzerAt(startedAt + 40_000).tick()).toEqual({ rolledBack: [r.id], advanced: [], held: [] });
  const after = (await (await w.call("GET", `/v1/releases/${r.id}`)).json()) as { reason: string };
  expect(after.reason).toContain("coverage 0.00 % (0/4)");
}, 60_000);

/** Projects one status of `agent`, taken at `atMs` (epoch ms), with `spooled` events in its spool. */
async function reportStatus(agent: string, atMs: number, spooled: bigint): Promise<void> {
  const status = create(AgentStatusSchema, {
    agentId: agent,
    node: "node-7",
    timeUnixNano: BigInt(atMs) * 1_000_000n,
    mode: AgentMode.FULL,
    spooledEvents: spooled,
  });
  const producer = w.sb.kafka.producer();
  await producer.connect();
  await producer.send({
    topic: w.sb.topics.agent,
    messages: [{ key: agent, value: Buffer.from(toBinary(AgentStatusSchema, status)) }],
  });
  await producer.disconnect();
  await w.projector.caughtUp(20_000);
}

const progressOf = (group: string) =>
  new ProjectorProgress({
    db: w.sb.database.db,
    group,
    topics: [w.sb.topics.dye, w.sb.topics.agent],
    logEnd: (topic) => logEnd({ db: w.sb.database.db, admin: w.sb.admin, group, topic }),
  });

test("a ramp due to advance is held while an agent holds events in its spool or went quiet, or the projector is behind", async () => {
  const { r, startedAt, analyzer, logged } = await startRamped("evidence", progressOf(w.projectorGroup));
  // enough to judge, all dyed: without the spool and the first pass it would advance
  const atMs = Number(BigInt(startedAt + 20_000) - BOOT_NS / 1_000_000n);
  const dyed = { dye: r.dye, releaseId: r.id, source: DetectionSource.PAYLOAD };
  await project(
    "agent-e",
    [1, 2, 3, 4].map((seq) => ({
      seq,
      atMs,
      ...dyed,
      comm: "gateway",
      sport: 44000 + seq,
      dport: 8080,
      traceId: `t-ev-${seq}`,
    })),
  );
  await reportStatus("agent-spool", startedAt + 25_000, 120n);
  // and one whose last status is 90 s old at the pass (stale after 30 s), well within the 600 s window
  await reportStatus("agent-quiet", startedAt - 60_000, 0n);

  expect(await analyzer.tick()).toEqual({ rolledBack: [], advanced: [], held: [r.id] });
  expect(await analyzer.tick()).toEqual({ rolledBack: [], advanced: [], held: [r.id] });
  expect(logged).toEqual([
    `ramp of ${r.id} held at 5 %: the window may lack events: agent agent-quiet (node node-7) has not reported since ${new Date(startedAt - 60_000).toISOString()}, within the window: its events may not have reached Kafka; agent agent-spool (node node-7) holds 120 events in its spool, not in Kafka yet (status of ${new Date(startedAt + 25_000).toISOString()}); the projector's progress is measured from the next pass on`,
  ]);
  expect(analyzer.metrics()).toContain("indigo_analysis_evidence_incomplete 1\n");
  const view = (await (await w.call("GET", `/v1/releases?state=running`)).json()) as {
    releases: { id: string; rampHold: { kind: string; reason: string } | null }[];
  };
  const hold = view.releases.find((x) => x.id === r.id)?.rampHold;
  expect(hold?.kind).toBe("evidence");
  expect(hold?.reason).toStartWith(
    "the window may lack events: agent agent-quiet (node node-7) has not reported since",
  );

  // The spool is empty again, the quiet agent reports, and the projector (caught up) holds what the log held
  // a pass ago.
  await reportStatus("agent-spool", startedAt + 28_000, 0n);
  await reportStatus("agent-quiet", startedAt + 28_000, 0n);
  expect(await analyzer.tick()).toEqual({ rolledBack: [], advanced: [r.id], held: [] });
  expect(await holdRows(r.id)).toEqual([]);
  expect(analyzer.metrics()).toContain("indigo_analysis_evidence_incomplete 0\n");
  expect(analyzer.metrics()).toContain("indigo_analysis_ramps_held 0\n");
  expect(logged).toHaveLength(1);

  // A group that applied nothing is behind by every message the log held at its previous check.
  const none = progressOf("g_applied_nothing");
  expect(await none.gaps()).toEqual(["the projector's progress is measured from the next pass on"]);
  const behind = await none.gaps();
  const ends = await logEnd({ db: w.sb.database.db, admin: w.sb.admin, group: "-", topic: w.sb.topics.dye });
  const dyeGaps = [...ends].filter(([, end]) => end > 0n);
  expect(dyeGaps.length).toBeGreaterThan(0);
  for (const [partition, end] of dyeGaps)
    expect(behind).toContain(
      `the projector has not applied ${end} messages of ${w.sb.topics.dye} partition ${partition} that were in the log at the last pass`,
    );
  // and the projector's own group is behind by nothing
  const own = progressOf(w.projectorGroup);
  await own.gaps();
  expect(await own.gaps()).toEqual([]);
}, 60_000);
