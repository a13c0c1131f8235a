// Contract tests of the read side fed by real events through the real projector: coverage (overall, per
// hop, by source, windowed), a trace's timeline, the agents.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { BOOT_NS, dyeBatch } from "@indigo/projector/testing";
import { AgentMode, AgentStatusSchema, create, DetectionSource, toBinary } from "@indigo/proto";
import { createWorld, sampleRelease, type World } from "../testing/world.ts";

let w: World;
let releaseId = "";
let dye = 0;

beforeAll(async () => {
  w = await createWorld("observe");
  const created = (await (await w.call("POST", "/v1/releases", { body: sampleRelease() })).json()) as {
    id: string;
    dye: number;
  };
  releaseId = created.id;
  dye = created.dye;
  expect((await w.call("POST", `/v1/releases/${releaseId}/start`, { ifMatch: 1 })).status).toBe(200);
  const producer = w.sb.kafka.producer();
  await producer.connect();
  const dyed = { dye, releaseId };
  await producer.send({
    topic: w.sb.topics.dye,
    messages: [
      {
        key: "agent-1",
        value: dyeBatch("agent-1", [
          {
            seq: 1,
            atMs: 1000,
            ...dyed,
            source: DetectionSource.PAYLOAD,
            comm: "gateway",
            sport: 40000,
            dport: 8080,
            traceId: "t-1",
          },
          {
            seq: 2,
            atMs: 1100,
            ...dyed,
            source: DetectionSource.TCP_OPTION,
            comm: "checkout",
            sport: 40001,
            dport: 9090,
            traceId: "t-1",
          },
          { seq: 3, atMs: 1150, comm: "checkout", sport: 40002, dport: 9090, traceId: "t-2" },
          {
            seq: 4,
            atMs: 1200,
            ...dyed,
            source: DetectionSource.PAYLOAD,
            comm: "gateway",
            sport: 40003,
            dport: 8080,
            traceId: "t-2",
          },
          {
            seq: 5,
            atMs: 1300,
            ...dyed,
            kind: "response",
            status: 503,
            source: DetectionSource.INHERIT,
            comm: "checkout",
            sport: 9090,
            dport: 40001,
            traceId: "t-1",
          },
          {
            seq: 6,
            atMs: 1400,
            ...dyed,
            kind: "response",
            status: 200,
            source: DetectionSource.INHERIT,
            comm: "checkout",
            sport: 9090,
            dport: 40001,
            traceId: "t-2",
          },
        ]),
      },
    ],
  });
  await producer.send({
    topic: w.sb.topics.agent,
    messages: [
      {
        key: "agent-1",
        value: Buffer.from(
          toBinary(
            AgentStatusSchema,
            create(AgentStatusSchema, {
              agentId: "agent-1",
              node: "node-1",
              timeUnixNano: BOOT_NS + 2_000_000_000n,
              mode: AgentMode.FULL,
              kernelVersion: "6.18.0",
              eventRatePerS: 1234.5,
              ringbufReserveFailures: 7n,
            }),
          ),
        ),
      },
      {
        key: "agent-2",
        value: Buffer.from(
          toBinary(
            AgentStatusSchema,
            create(AgentStatusSchema, {
              agentId: "agent-2",
              node: "node-2",
              timeUnixNano: BigInt(Date.now()) * 1_000_000n,
              mode: AgentMode.FULL,
              kernelVersion: "6.18.0",
            }),
          ),
        ),
      },
    ],
  });
  await producer.disconnect();
  await w.projector.caughtUp(20_000);
}, 60_000);
afterAll(async () => {
  await w?.close();
}, 30_000);

describe("GET /v1/releases/{id}/coverage", () => {
  test("overall and per hop: expected, dyed, ratio, by detection source; gray responses and errors", async () => {
    const res = await w.call("GET", `/v1/releases/${releaseId}/coverage`, { role: "viewer" });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      releaseId,
      from: null,
      to: null,
      overall: { expected: 4, dyed: 3, ratio: 0.75, bySource: { payload: 2, tcp_option: 1, none: 1 } },
      hops: [
        {
          caller: "checkout",
          callee: "10.0.0.2:9090",
          expected: 2,
          dyed: 1,
          ratio: 0.5,
          bySource: { tcp_option: 1, none: 1 },
        },
        {
          caller: "gateway",
          callee: "10.0.0.2:8080",
          expected: 2,
          dyed: 2,
          ratio: 1,
          bySource: { payload: 2 },
        },
      ],
      responses: [{ callee: "10.0.0.1:9090", responses: 2, errors: 1, errorRate: 0.5 }],
    });
  });

  test("a window holds only its buckets; an empty window has ratio null", async () => {
    const inside = await w.call(
      "GET",
      `/v1/releases/${releaseId}/coverage?from=2026-01-01T00:00:00Z&to=2026-01-01T00:00:10Z`,
      { role: "viewer" },
    );
    expect(((await inside.json()) as { overall: { expected: number } }).overall.expected).toBe(4);
    const after = await w.call("GET", `/v1/releases/${releaseId}/coverage?from=2026-01-01T00:00:10Z`, {
      role: "viewer",
    });
    expect(await after.json()).toMatchObject({ overall: { expected: 0, dyed: 0, ratio: null }, hops: [] });
  });
});

test("coverage answers carry an ETag and an Age; If-None-Match with it gets a 304 without a body", async () => {
  const path = `/v1/releases/${releaseId}/coverage?from=2026-01-01T00:00:00Z`;
  const first = await w.call("GET", path, { role: "viewer" });
  const etag = first.headers.get("etag");
  expect(etag).toMatch(/^".+"$/);
  expect(Number(first.headers.get("age"))).toBeGreaterThanOrEqual(0);
  const again = await w.call("GET", path, { role: "viewer", headers: { "if-none-match": etag ?? "" } });
  expect(again.status).toBe(304);
  expect(await again.text()).toBe("");
  const other = await w.call("GET", path, { role: "viewer", headers: { "if-none-match": '"other"' } });
  expect(other.status).toBe(200);
});

test("an unknown release is a 404 problem (failures are not cached)", async () => {
  const res = await w.call("GET", "/v1/releases/rel_0000000000000000000000000000dead/coverage", {
    role: "viewer",
  });
  expect(res.status).toBe(404);
  expect(res.headers.get("content-type")).toBe("application/problem+json");
});

test("series=true adds per-hop coverage per time bucket", async () => {
  const res = await w.call("GET", `/v1/releases/${releaseId}/coverage?series=true`, { role: "viewer" });
  expect(((await res.json()) as { series: unknown[] }).series).toEqual([
    {
      bucketStart: "2026-01-01T00:00:00.000Z",
      caller: "checkout",
      callee: "10.0.0.2:9090",
      expected: 2,
      dyed: 1,
      ratio: 0.5,
    },
    {
      bucketStart: "2026-01-01T00:00:00.000Z",
      caller: "gateway",
      callee: "10.0.0.2:8080",
      expected: 2,
      dyed: 2,
      ratio: 1,
    },
  ]);
});

describe("GET /v1/traces/{traceId} and /v1/agents", () => {
  test("a trace's hops in time order with their sources", async () => {
    const res = await w.call("GET", "/v1/traces/t-1", { role: "viewer" });
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      hops: { service: string; source: string; kind: string; status: number }[];
    };
    expect(body.hops.map((h) => [h.service, h.kind, h.source, h.status])).toEqual([
      ["gateway", "request", "payload", 0],
      ["checkout", "request", "tcp_option", 0],
      ["10.0.0.1:9090", "response", "inherit", 503],
    ]);
  });

  test("agents with mode, kernel, event rate and drops; one not heard from for 30 s is stale", async () => {
    const res = await w.call("GET", "/v1/agents", { role: "viewer" });
    expect(await res.json()).toMatchObject({
      agents: [
        {
          agentId: "agent-1",
          node: "node-1",
          mode: "full",
          kernelVersion: "6.18.0",
          eventRatePerS: 1234.5,
          ringbufReserveFailures: 7,
          stale: true, // its last status is from the events' epoch, long ago
        },
        { agentId: "agent-2", node: "node-2", stale: false, idConflict: "" },
      ],
    });
  });

  test("two agents under one id: their statuses alternate, last_seq goes back, and the agent says so", async () => {
    const now = BigInt(Date.now()) * 1_000_000n;
    const status = (node: string, lastSeq: bigint, afterS: bigint) => ({
      key: "agent-twin",
      value: Buffer.from(
        toBinary(
          AgentStatusSchema,
          create(AgentStatusSchema, {
            agentId: "agent-twin",
            node,
            timeUnixNano: now + afterS * 1_000_000_000n,
            mode: AgentMode.FULL,
            lastSeq,
          }),
        ),
      ),
    });
    const producer = w.sb.kafka.producer();
    await producer.connect();
    await producer.send({
      topic: w.sb.topics.agent,
      messages: [status("node-a", 5000n, 0n), status("node-a", 5100n, 5n)],
    });
    await w.projector.caughtUp(20_000);
    const twin = async () =>
      (
        (await (await w.call("GET", "/v1/agents", { role: "viewer" })).json()) as {
          agents: { agentId: string; idConflict: string; idConflictAt: string | null }[];
        }
      ).agents.find((a) => a.agentId === "agent-twin");
    expect(await twin()).toMatchObject({ idConflict: "", idConflictAt: null });
    // a second machine with the same hostname starts reporting
    await producer.send({
      topic: w.sb.topics.agent,
      messages: [status("node-a", 40n, 6n), status("node-a", 5200n, 10n)],
    });
    await producer.disconnect();
    await w.projector.caughtUp(20_000);
    const marked = await twin();
    expect(marked?.idConflict).toStartWith(
      "last_seq went back from 5100 (node node-a) to 40 (node node-a): two agents report under this id",
    );
    expect(marked?.idConflictAt).toBe(new Date(Number((now + 6_000_000_000n) / 1_000_000n)).toISOString());
  });

  test("an agent that reported, well after the rules changed, rules published before: rules behind", async () => {
    const { updatedAt } = (await (await w.call("GET", `/v1/releases/${releaseId}`)).json()) as {
      updatedAt: string;
    };
    const changed = BigInt(Date.parse(updatedAt));
    const now = BigInt(Date.now());
    const status = (agentId: string, appliedMs: bigint) => ({
      key: agentId,
      value: Buffer.from(
        toBinary(
          AgentStatusSchema,
          create(AgentStatusSchema, {
            agentId,
            node: agentId,
            // sent well after the change, as a live agent's next status would be
            timeUnixNano: (now > changed + 10_000n ? now : changed + 10_000n) * 1_000_000n,
            mode: AgentMode.FULL,
            appliedControlGeneration: appliedMs * 1000n,
          }),
        ),
      ),
    });
    const producer = w.sb.kafka.producer();
    await producer.connect();
    await producer.send({
      topic: w.sb.topics.agent,
      messages: [status("agent-old-rules", changed - 60_000n), status("agent-new-rules", changed + 50n)],
    });
    await producer.disconnect();
    await w.projector.caughtUp(20_000);
    const { agents } = (await (await w.call("GET", "/v1/agents", { role: "viewer" })).json()) as {
      agents: { agentId: string; rulesBehind: boolean; rulesAppliedAt: string | null }[];
    };
    const of = (id: string) => agents.find((a) => a.agentId === id);
    expect(of("agent-old-rules")).toMatchObject({
      rulesBehind: true,
      rulesAppliedAt: new Date(Number(changed - 60_000n)).toISOString(),
    });
    expect(of("agent-new-rules")).toMatchObject({ rulesBehind: false });
    // /metrics counts the same agents
    const text = await (await w.call("GET", "/metrics")).text();
    expect(text).toContain(
      `indigo_agents{condition="rules_behind"} ${agents.filter((a) => a.rulesBehind).length}\n`,
    );
  });

  test("/metrics counts the agents by condition, for alerts only the central view can raise", async () => {
    // an agent that stopped cleanly an hour ago (a node scaled in) is stopped, not stale
    const producer = w.sb.kafka.producer();
    await producer.connect();
    const stopped = create(AgentStatusSchema, {
      agentId: "agent-stopped",
      node: "node-gone",
      timeUnixNano: (BigInt(Date.now()) - 3_600_000n) * 1_000_000n,
      mode: AgentMode.FULL,
      stopped: true,
    });
    await producer.send({
      topic: w.sb.topics.agent,
      messages: [{ key: "agent-stopped", value: Buffer.from(toBinary(AgentStatusSchema, stopped)) }],
    });
    await producer.disconnect();
    await w.projector.caughtUp(20_000);
    const { agents } = (await (await w.call("GET", "/v1/agents", { role: "viewer" })).json()) as {
      agents: { agentId: string; stale: boolean; stopped: boolean }[];
    };
    expect(agents.find((a) => a.agentId === "agent-stopped")).toMatchObject({ stale: false, stopped: true });
    expect(agents.find((a) => a.agentId === "agent-1")).toMatchObject({ stale: true, stopped: false });
    const text = await (await w.call("GET", "/metrics")).text();
    // agent-1 is stale; agent-2, agent-twin and the two of the rules test report, and agent-twin has an id
    // conflict
    expect(text).toContain('indigo_agents{condition="reporting"} 4\n');
    expect(text).toContain('indigo_agents{condition="stale"} 1\n');
    expect(text).toContain('indigo_agents{condition="stopped"} 1\n');
    expect(text).toContain('indigo_agents{condition="degraded"} 0\n');
    expect(text).toContain('indigo_agents{condition="id_conflict"} 1\n');
  });
});
