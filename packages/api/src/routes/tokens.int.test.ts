// Tokens and roles on the real database: an admin issues a token that works at once with its role (stored
// as its SHA-256 only), a viewer reads and commands nothing; an admin lists tokens (never a secret) and
// revokes one, and a revoked token is refused — at once where it was not used within the principal cache's
// time, within that time where it was. Before, a leaked token could only be revoked by an UPDATE in psql.
import { expect, test } from "bun:test";
import { schema } from "@indigo/db";
import { sha256Hex } from "../auth/tokens.ts";
import { apiWith } from "../testing/api-with.ts";
import { useWorld } from "../testing/use-world.ts";
import { sampleRelease, type World } from "../testing/world.ts";

const w = useWorld("tokens");

interface TokenView {
  id: string;
  name: string;
  role: string;
  createdAt: string;
  revokedAt: string | null;
}

async function issue(name: string): Promise<{ id: string; token: string }> {
  const res = await w.call("POST", "/v1/tokens", { role: "admin", body: { name, role: "operator" } });
  expect(res.status).toBe(201);
  return (await res.json()) as { id: string; token: string };
}

const revoke = (id: string) => w.call("DELETE", `/v1/tokens/${id}`, { role: "admin" });
const list = async () =>
  ((await (await w.call("GET", "/v1/tokens", { role: "admin" })).json()) as { tokens: TokenView[] }).tokens;

test("an admin issues a token; it works at once with its role, and only its SHA-256 is stored", async () => {
  const res = await w.call("POST", "/v1/tokens", {
    role: "admin",
    body: { name: "ci-pipeline", role: "operator" },
  });
  expect(res.status).toBe(201);
  const { token } = (await res.json()) as { token: string };
  expect(token).toMatch(/^indigo_[A-Za-z0-9_-]{43}$/);
  const rows = await w.sb.database.db.select().from(schema.apiTokens);
  expect(rows.some((r) => r.sha256 === sha256Hex(token))).toBe(true);
  expect(JSON.stringify(rows)).not.toContain(token);

  const created = await w.call("POST", "/v1/releases", { token, body: sampleRelease({ name: "by ci" }) });
  expect(created.status).toBe(201);
  const { id } = (await created.json()) as { id: string };
  const history = await w.call("GET", `/v1/releases/${id}/history`, { token });
  expect(await history.json()).toMatchObject({ events: [{ actor: "ci-pipeline" }] });
  expect((await w.call("POST", "/v1/tokens", { token, body: { name: "x", role: "admin" } })).status).toBe(
    403,
  );
});

test("a viewer reads everything and commands nothing", async () => {
  const created = await w.call("POST", "/v1/releases", { body: sampleRelease({ name: "viewed" }) });
  const { id } = (await created.json()) as { id: string };
  expect((await w.call("POST", `/v1/releases/${id}/start`, { ifMatch: 1 })).status).toBe(200);
  for (const path of ["/v1/releases", `/v1/releases/${id}`, `/v1/releases/${id}/history`, "/v1/agents"]) {
    expect((await w.call("GET", path, { role: "viewer" })).status).toBe(200);
  }
  expect((await w.call("POST", `/v1/releases/${id}/pause`, { role: "viewer", ifMatch: 2 })).status).toBe(403);
});

test("an admin lists the tokens without their secrets and revokes one; unused, it is refused at once", async () => {
  const { id, token } = await issue("leaked-ci");
  const listed = await list();
  expect(listed.find((t) => t.id === id)).toMatchObject({
    name: "leaked-ci",
    role: "operator",
    revokedAt: null,
  });
  expect(JSON.stringify(listed)).not.toContain(token);
  expect(Object.keys(listed[0] ?? {}).sort()).toEqual(["createdAt", "id", "name", "revokedAt", "role"]);

  const res = await revoke(id);
  expect(res.status).toBe(200);
  const revoked = (await res.json()) as TokenView;
  expect(revoked.revokedAt).not.toBeNull();
  expect((await w.call("GET", "/v1/releases", { token })).status).toBe(401);

  // Again: the first revocation stands.
  expect(((await (await revoke(id)).json()) as TokenView).revokedAt).toBe(revoked.revokedAt);
  expect((await list()).find((t) => t.id === id)?.revokedAt).toBe(revoked.revokedAt);
});

test("a token in use: refused at once by the API that revoked it, by another within its principal cache's 5 s", async () => {
  const producer = w.sb.kafka.producer();
  await producer.connect();
  const other = apiWith(w, { db: w.sb.database.db, admin: w.sb.admin, producer, requestTimeoutMs: 20_000 });
  try {
    const { id, token } = await issue("busy-ci");
    const read = (app: { request: World["app"]["request"] }) =>
      Promise.resolve(app.request("/v1/releases", { headers: { authorization: `Bearer ${token}` } }));
    expect((await read(w.app)).status).toBe(200);
    expect((await read(other.app)).status).toBe(200); // both processes now trust it for a while
    expect((await revoke(id)).status).toBe(200);
    const revokedAt = Date.now();
    expect((await read(w.app)).status).toBe(401);
    let status = 200;
    while (status === 200 && Date.now() - revokedAt < 8000) {
      status = (await read(other.app)).status;
      if (status === 200) await Bun.sleep(100);
    }
    expect(status).toBe(401);
    expect(Date.now() - revokedAt).toBeLessThan(5000 + 1000);
  } finally {
    await producer.disconnect();
  }
}, 30_000);

test("only admins list or revoke; an unknown token id is a 404", async () => {
  expect((await w.call("GET", "/v1/tokens", { role: "operator" })).status).toBe(403);
  const { id } = await issue("kept");
  expect((await w.call("DELETE", `/v1/tokens/${id}`, { role: "operator" })).status).toBe(403);
  expect((await list()).find((t) => t.id === id)?.revokedAt).toBeNull();
  const unknown = await revoke("tok_does-not-exist");
  expect(unknown.status).toBe(404);
  expect(unknown.headers.get("content-type")).toBe("application/problem+json");
});

test("from the host: ./dev token issues, --list shows, --revoke revokes (no admin token needed)", async () => {
  const cli = (...args: string[]) => {
    const run = Bun.spawnSync(["bun", `${import.meta.dir}/../cli/token.ts`, ...args], {
      env: { ...process.env, INDIGO_DATABASE_URL: w.sb.databaseUrl },
    });
    return { code: run.exitCode, out: run.stdout.toString(), err: run.stderr.toString() };
  };
  const issued = cli("--name", "host-ops", "--role", "operator");
  expect(issued.code).toBe(0);
  const token = issued.out.trim();
  expect((await w.call("GET", "/v1/releases", { token: token })).status).toBe(200);

  const row = cli("--list")
    .out.split("\n")
    .find((l) => l.includes("\thost-ops\t"));
  expect(row?.split("\t").slice(1, 3)).toEqual(["host-ops", "operator"]);
  expect(row).toEndWith("\tactive");
  const id = row?.split("\t")[0] ?? "";
  expect(cli("--revoke", id).code).toBe(0);
  expect(cli("--list").out).toContain(`${id}\thost-ops\toperator\t`);
  expect(
    cli("--list")
      .out.split("\n")
      .find((l) => l.startsWith(id)),
  ).toMatch(/\trevoked \d{4}-/);
  expect(cli("--revoke", "tok_nope")).toMatchObject({
    code: 1,
    err: expect.stringContaining("no token tok_nope"),
  });
}, 60_000);
