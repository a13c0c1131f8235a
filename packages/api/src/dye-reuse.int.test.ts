// A dye given up by an ended release is handed on only after INDIGO_DYE_REUSE_AFTER_MS: agents that have not
// applied the new rules yet still dye the ended release's cohort, and the TCP option carries only the number.
// A world of its own, so which dyes are free is known: 1 is the first.
import { afterAll, beforeAll, expect, test } from "bun:test";
import type { Producer } from "@indigo/bus";
import { type ApiWith, apiWith } from "./testing/api-with.ts";
import { createWorld, sampleRelease, type World } from "./testing/world.ts";

const REUSE_AFTER_MS = 1500;
let w: World;
let producer: Producer;
let api: ApiWith;
beforeAll(async () => {
  w = await createWorld("dye_reuse");
  producer = w.sb.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  api = apiWith(w, {
    db: w.sb.database.db,
    admin: w.sb.admin,
    producer,
    requestTimeoutMs: 20_000,
    dyeReuseAfterMs: REUSE_AFTER_MS,
  });
}, 60_000);
afterAll(async () => {
  await producer?.disconnect();
  await w?.close();
}, 30_000);

const create = async (name: string): Promise<{ id: string; dye: number }> => {
  const res = await api.app.request("/v1/releases", {
    method: "POST",
    headers: { authorization: `Bearer ${w.tokens.operator}`, "content-type": "application/json" },
    body: JSON.stringify(sampleRelease({ name })),
  });
  expect(res.status).toBe(201);
  return (await res.json()) as { id: string; dye: number };
};

test("an ended release's dye is not handed on until the reuse time has passed, then it is", async () => {
  const a = await create("first");
  expect(a.dye).toBe(1);
  const rolledBack = await api.app.request(`/v1/releases/${a.id}/rollback`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${w.tokens.operator}`,
      "if-match": "1",
      "content-type": "application/json",
    },
    body: JSON.stringify({ reason: "ended" }),
  });
  expect(rolledBack.status).toBe(200);
  const endedAt = Date.now();
  const b = await create("right-after");
  expect(b.dye).toBe(2);
  await Bun.sleep(Math.max(0, REUSE_AFTER_MS + 100 - (Date.now() - endedAt)));
  const c = await create("later");
  expect(c.dye).toBe(1);
}, 30_000);
