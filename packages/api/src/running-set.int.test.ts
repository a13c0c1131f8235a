// Starting or resuming a release whose cohort shares requests with a running release's is a 409 naming that
// release and a request both match (real broker and database). Before, it ran and saw none of the shared
// requests: the agents give a request the lower dye only. And a 17th running release is a 409: before, every
// agent refused the 17-rule set whole and kept its rules, so no later pause or rollback reached the kernel.
import { expect, test } from "bun:test";
import { useWorld } from "./testing/use-world.ts";
import { sampleRelease } from "./testing/world.ts";

const w = useWorld("overlap");

interface Problem {
  type?: string;
  detail?: string;
  overlaps?: { id: string; name: string; dye: number; example: string }[];
}

async function create(name: string, cohort: unknown): Promise<{ id: string; dye: number }> {
  const res = await w.call("POST", "/v1/releases", { body: sampleRelease({ name, cohort }) });
  expect(res.status).toBe(201);
  return (await res.json()) as { id: string; dye: number };
}

async function command(
  id: string,
  verb: string,
  version: number,
): Promise<{ status: number; body: Problem }> {
  const res = await w.call("POST", `/v1/releases/${id}/${verb}`, { ifMatch: version });
  return { status: res.status, body: (await res.json()) as Problem };
}

test("a cohort equal to a running one's is refused with the release and an example; a disjoint one runs", async () => {
  const a = await create("orders-v2", { traceIdPattern: "^o-[a-f0-9]{8}$" });
  expect((await command(a.id, "start", 1)).status).toBe(200);

  const b = await create("orders-v3", { traceIdPattern: "^o-[0-9a-f]{8}" });
  const refused = await command(b.id, "start", 1);
  expect(refused.status).toBe(409);
  expect(refused.body.type).toBe("/problems/cohort-overlap");
  expect(refused.body.overlaps).toEqual([
    { id: a.id, name: "orders-v2", dye: a.dye, example: "trace id o-00000000" },
  ]);
  expect(refused.body.detail).toContain(`running release "orders-v2" (${a.id}, dye ${a.dye})`);
  // Nothing was appended: the release is still a draft at version 1.
  const read = (await (await w.call("GET", `/v1/releases/${b.id}`)).json()) as {
    state: string;
    version: number;
  };
  expect(read).toMatchObject({ state: "draft", version: 1 });

  const c = await create("orders-qa", { traceIdPattern: "^o-qa-[0-9]{6}$" }); // 11 bytes: no id of a's
  expect((await command(c.id, "start", 1)).status).toBe(200);
});

test("only running releases count: a paused one lets an overlapping release start, and then cannot resume", async () => {
  const a = await create("pay-v2", { header: { name: "x-lane", value: "pay" } });
  expect((await command(a.id, "start", 1)).status).toBe(200);
  expect((await command(a.id, "pause", 2)).status).toBe(200);

  const b = await create("pay-v3", { header: { name: "X-Lane", value: "pay" } });
  expect((await command(b.id, "start", 1)).status).toBe(200);
  const resumed = await command(a.id, "resume", 3);
  expect(resumed.status).toBe(409);
  expect(resumed.body.overlaps?.map((o) => [o.id, o.example])).toEqual([[b.id, "header x-lane: pay"]]);

  const other = await create("pay-blue", { header: { name: "x-lane", value: "blue" } });
  expect((await command(other.id, "start", 1)).status).toBe(200);
});

test("two overlapping releases started at once: exactly one runs", async () => {
  const [a, b] = await Promise.all([
    create("search-v2", { sni: "search.example.com" }),
    create("search-v3", { sni: ".example.com" }),
  ]);
  if (!a || !b) throw new Error("not created");
  const outcomes = await Promise.all([command(a.id, "start", 1), command(b.id, "start", 1)]);
  expect(outcomes.map((o) => o.status).sort()).toEqual([200, 409]);
  const loser = outcomes.find((o) => o.status === 409);
  expect(loser?.body.overlaps?.[0]?.example).toMatch(/^TLS server name .*search\.example\.com$/);
});

test("at most 16 running releases, the agents' rule table: the 17th is refused until one of them ends", async () => {
  const list = (await (await w.call("GET", "/v1/releases?state=running")).json()) as { releases: unknown[] };
  const started: { id: string; version: number }[] = [];
  for (let i = list.releases.length; i < 16; i++) {
    const r = await create(`lane-${i}`, { header: { name: "x-lane", value: `lane-${i}` } });
    expect((await command(r.id, "start", 1)).status).toBe(200);
    started.push({ id: r.id, version: 2 });
  }
  const extra = await create("lane-17", { header: { name: "x-lane", value: "lane-17" } });
  const refused = await command(extra.id, "start", 1);
  expect(refused.status).toBe(409);
  expect(refused.body.type).toBe("/problems/too-many-running");
  expect(refused.body.detail).toContain("16 releases are running");

  const ended = started[0];
  if (!ended) throw new Error("nothing started here");
  expect((await command(ended.id, "promote", ended.version)).status).toBe(200);
  expect((await command(extra.id, "start", 1)).status).toBe(200);
}, 60_000);
