// A trace's timeline reaches past a service that forwards nothing: client → A (trace id in the bytes) →
// B (thread-per-request, forwards nothing: its onward request is dyed by inheritance, anonymous) → C.
// The anonymous hops are found by connection and thread; another request on B's thread and a neighbour
// thread's request stay out. Again with B on an IPv6 socket that took IPv4 (Java, Go and node servers listen
// on `::`): its events say ::ffff:a.b.c.d where A's and C's say a.b.c.d, and the walk must still join them.
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
const v4Mapped = (a: readonly number[]) => [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...a];

// Each case on a subnet of its own: the walk joins by address, so equal addresses would join the cases.
for (const [name, subnet, onB] of [
  ["IPv4 sockets", 1, (a: Address): readonly number[] => a],
  ["B's sockets IPv6, their ends v4-mapped", 2, v4Mapped],
] as const) {
  test(`GET /v1/traces/{id} stitches the inherited, anonymous hops to the trace (${name})`, async () => {
    await stitches(`node-${subnet}`, `t-trace-${subnet}`, subnet, onB);
  }, 90_000);
}

async function stitches(
  agentId: string,
  traceId: string,
  subnet: number,
  onB: (a: Address) => readonly number[],
) {
  const created = await w.call("POST", "/v1/releases", { body: sampleRelease() });
  const { id, dye } = (await created.json()) as { id: string; dye: number };
  const { PAYLOAD, TCP_OPTION, INHERIT } = DetectionSource;
  const d = { dye, releaseId: id };
  const CLIENT: Address = [10, 9, subnet, 1];
  const A: Address = [10, 9, subnet, 2];
  const B: Address = [10, 9, subnet, 3];
  const C: Address = [10, 9, subnet, 4];
  const events: (Ev & { label: string; local: Address; remote: Address })[] = [
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
  const producer = w.sb.kafka.producer();
  await producer.connect();
  await producer.send({
    topic: w.sb.topics.dye,
    messages: [
      {
        key: agentId,
        // What B's own sockets report goes through onB; the addresses expected below are the plain ones.
        value: dyeBatch(
          agentId,
          events.map((e) => ({
            ...e,
            saddr: e.comm === "java" ? onB(e.local) : e.local,
            daddr: e.comm === "java" ? onB(e.remote) : e.remote,
          })),
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
        `${e.direction ?? "egress"} ${e.kind ?? "request"} ${e.local.join(".")}:${e.sport} → ${e.remote.join(".")}:${e.dport} tid ${e.tid}`,
    ),
  );
  expect((await w.call("GET", "/v1/traces/t-never-seen", { role: "viewer" })).status).toBe(404);
}
