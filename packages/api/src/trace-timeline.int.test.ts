// A trace's timeline reaches past a service that forwards nothing: client → A (trace id in the bytes) →
// B (thread-per-request, forwards nothing: its onward request is dyed by inheritance, anonymous) → C.
// The anonymous hops are found by connection and thread; another request on B's thread and a neighbour
// thread's request stay out. Again with B on an IPv6 socket that took IPv4 (Java, Go and node servers listen
// on `::`): its events say ::ffff:a.b.c.d where A's and C's say a.b.c.d, and the walk must still join them.
// And with A calling B through a virtual IP (a Kubernetes Service: DNAT): A's socket names the VIP as its
// peer, B's names B; only A's own end (address and ephemeral port) is the same on both sides.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { dyeBatch, type Ev } from "@indigo/projector/testing";
import { DetectionSource } from "@indigo/proto";
import { createWorld, sampleRelease, type World } from "./testing/world.ts";

let w: World;
beforeAll(async () => {
  w = await createWorld("trace");
}, 60_000);
afterAll(() => w.close(), 60_000);

type Address = [number, number, number, number];
type Hop = Ev & { label: string; local: readonly number[]; remote: readonly number[] };
const v4Mapped = (a: readonly number[]) => [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...a];
const addressText = (a: readonly number[]) => a.slice(-4).join(".");

// Each case on a subnet of its own: the walk joins by address, so equal addresses would join the cases.
// `view`: how the node reports the event.
for (const [name, subnet, view] of [
  ["IPv4 sockets", 1, (e: Hop): Hop => e],
  [
    "B's sockets IPv6, their ends v4-mapped",
    2,
    (e: Hop): Hop => (e.comm === "java" ? { ...e, local: v4Mapped(e.local), remote: v4Mapped(e.remote) } : e),
  ],
  [
    "A calls B through a virtual IP",
    3,
    (e: Hop): Hop => (e.label === "A → B" ? { ...e, remote: [10, 96, 3, 10], dport: 80 } : e),
  ],
] as const) {
  test(`GET /v1/traces/{id} stitches the inherited, anonymous hops to the trace (${name})`, async () => {
    await stitches(`node-${subnet}`, `t-trace-${subnet}`, subnet, view);
  }, 90_000);
}

async function stitches(agentId: string, traceId: string, subnet: number, view: (e: Hop) => Hop) {
  const created = await w.call("POST", "/v1/releases", { body: sampleRelease() });
  const { id, dye } = (await created.json()) as { id: string; dye: number };
  const { PAYLOAD, TCP_OPTION, INHERIT } = DetectionSource;
  const d = { dye, releaseId: id };
  const CLIENT: Address = [10, 9, subnet, 1];
  const A: Address = [10, 9, subnet, 2];
  const B: Address = [10, 9, subnet, 3];
  const C: Address = [10, 9, subnet, 4];
  const planned: Hop[] = [
    {
      label: "client → A",
      seq: 1,
      atMs: 1000,
      ...d,
      source: PAYLOAD,
      comm: "node",
      pid: 100,
      tid: 100,
      local: CLIENT,
      sport: 40001,
      remote: A,
      dport: 8081,
      traceId,
    },
    {
      label: "A ← client",
      seq: 2,
      atMs: 1001,
      ...d,
      source: TCP_OPTION,
      direction: "ingress",
      comm: "hop_a",
      pid: 200,
      tid: 201,
      local: A,
      sport: 8081,
      remote: CLIENT,
      dport: 40001,
    },
    {
      label: "A → B",
      seq: 3,
      atMs: 1002,
      ...d,
      source: PAYLOAD,
      comm: "hop_a",
      pid: 200,
      tid: 205,
      local: A,
      sport: 50001,
      remote: B,
      dport: 8082,
      traceId,
    },
    {
      label: "B ← A",
      seq: 4,
      atMs: 1003,
      ...d,
      source: TCP_OPTION,
      direction: "ingress",
      comm: "java",
      pid: 300,
      tid: 301,
      local: B,
      sport: 8082,
      remote: A,
      dport: 50001,
    },
    {
      label: "B → C",
      seq: 5,
      atMs: 1004,
      ...d,
      source: INHERIT,
      comm: "java",
      pid: 300,
      tid: 301,
      local: B,
      sport: 51001,
      remote: C,
      dport: 8083,
    },
    {
      label: "other thread B → C",
      seq: 6,
      atMs: 1004,
      ...d,
      source: INHERIT,
      comm: "java",
      pid: 300,
      tid: 302,
      local: B,
      sport: 51002,
      remote: C,
      dport: 8083,
    },
    {
      label: "C ← B",
      seq: 7,
      atMs: 1005,
      ...d,
      source: TCP_OPTION,
      direction: "ingress",
      comm: "python3",
      pid: 400,
      tid: 401,
      local: C,
      sport: 8083,
      remote: B,
      dport: 51001,
    },
    {
      label: "C → B response",
      seq: 8,
      atMs: 1006,
      ...d,
      kind: "response",
      source: TCP_OPTION,
      comm: "python3",
      pid: 400,
      tid: 401,
      local: C,
      sport: 8083,
      remote: B,
      dport: 51001,
      status: 200,
    },
    {
      label: "B ← A, next request",
      seq: 9,
      atMs: 1010,
      ...d,
      source: TCP_OPTION,
      direction: "ingress",
      comm: "java",
      pid: 300,
      tid: 301,
      local: B,
      sport: 8082,
      remote: A,
      dport: 50009,
    },
    {
      label: "B → C, next request",
      seq: 10,
      atMs: 1011,
      ...d,
      source: INHERIT,
      comm: "java",
      pid: 300,
      tid: 301,
      local: B,
      sport: 51001,
      remote: C,
      dport: 8083,
    },
  ];
  const events = planned.map(view);
  const producer = w.sb.kafka.producer();
  await producer.connect();
  await producer.send({
    topic: w.sb.topics.dye,
    messages: [
      {
        key: agentId,
        value: dyeBatch(
          agentId,
          events.map((e) => ({ ...e, saddr: e.local, daddr: e.remote })),
        ),
      },
    ],
  });
  await producer.disconnect();
  await w.projector.caughtUp(30_000);

  const response = await w.call("GET", `/v1/traces/${traceId}`, { role: "viewer" });
  expect(response.status).toBe(200);
  const body = (await response.json()) as {
    hops: { local: string; peer: string; direction: string; kind: string; source: string; tid: number }[];
  };
  const expected = events.filter((e) =>
    ["client → A", "A ← client", "A → B", "B ← A", "B → C", "C ← B", "C → B response"].includes(e.label),
  );
  expect(body.hops.map((h) => `${h.direction} ${h.kind} ${h.local} → ${h.peer} tid ${h.tid}`)).toEqual(
    expected.map(
      (e) =>
        `${e.direction ?? "egress"} ${e.kind ?? "request"} ${addressText(e.local)}:${e.sport} → ${addressText(e.remote)}:${e.dport} tid ${e.tid}`,
    ),
  );
  expect((await w.call("GET", "/v1/traces/t-never-seen", { role: "viewer" })).status).toBe(404);
}
