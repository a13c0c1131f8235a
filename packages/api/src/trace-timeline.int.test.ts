// A trace's timeline reaches past a service that forwards nothing: client → A (trace id in the bytes) →
// B (thread-per-request, forwards nothing: its onward request is dyed by inheritance, anonymous) → C.
// The anonymous hops are found by connection and thread; another request on B's thread and a neighbour
// thread's request stay out.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { dyeBatch, type Ev } from "@indigo/projector/testing";
import { DetectionSource } from "@indigo/proto";
import { createWorld, sampleRelease, type World } from "./testing/world.ts";

let w: World;
beforeAll(async () => {
  w = await createWorld("trace");
}, 60_000);
afterAll(() => w.close(), 60_000);

test("GET /v1/traces/{id} stitches the inherited, anonymous hops to the trace", async () => {
  const created = await w.call("POST", "/v1/releases", { body: sampleRelease() });
  const { id, dye } = (await created.json()) as { id: string; dye: number };
  const { PAYLOAD, TCP_OPTION, INHERIT } = DetectionSource;
  const d = { dye, releaseId: id };
  const CLIENT: Ev["saddr"] = [10, 9, 0, 1];
  const A: Ev["saddr"] = [10, 9, 0, 2];
  const B: Ev["saddr"] = [10, 9, 0, 3];
  const C: Ev["saddr"] = [10, 9, 0, 4];
  const events: (Ev & { label: string })[] = [
    {
      label: "client → A",
      seq: 1,
      atMs: 1000,
      ...d,
      source: PAYLOAD,
      comm: "node",
      pid: 100,
      tid: 100,
      saddr: CLIENT,
      sport: 40001,
      daddr: A,
      dport: 8081,
      traceId: "t-trace-1",
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
      saddr: A,
      sport: 8081,
      daddr: CLIENT,
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
      saddr: A,
      sport: 50001,
      daddr: B,
      dport: 8082,
      traceId: "t-trace-1",
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
      saddr: B,
      sport: 8082,
      daddr: A,
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
      saddr: B,
      sport: 51001,
      daddr: C,
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
      saddr: B,
      sport: 51002,
      daddr: C,
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
      saddr: C,
      sport: 8083,
      daddr: B,
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
      saddr: C,
      sport: 8083,
      daddr: B,
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
      saddr: B,
      sport: 8082,
      daddr: A,
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
      saddr: B,
      sport: 51001,
      daddr: C,
      dport: 8083,
    },
  ];
  const producer = w.sb.kafka.producer();
  await producer.connect();
  await producer.send({
    topic: w.sb.topics.dye,
    messages: [{ key: "node-1", value: dyeBatch("node-1", events) }],
  });
  await producer.disconnect();
  await w.projector.caughtUp(30_000);

  const response = await w.call("GET", "/v1/traces/t-trace-1", { role: "viewer" });
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
        `${e.direction ?? "egress"} ${e.kind ?? "request"} ${e.saddr!.join(".")}:${e.sport} → ${e.daddr!.join(".")}:${e.dport} tid ${e.tid}`,
    ),
  );
  expect((await w.call("GET", "/v1/traces/t-never-seen", { role: "viewer" })).status).toBe(404);
}, 90_000);
