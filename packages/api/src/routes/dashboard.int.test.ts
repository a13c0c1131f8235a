// The dashboard in headless Chromium (Debian `chromium` driven by playwright-core) against the real API,
// broker and database: it lists a release with its state and draws its per-hop coverage chart.
// The screenshot is kept as test-artifacts/dashboard.png. `./dev bootstrap` installs Debian's chromium; outside
// CI a machine without it skips, saying why; under CI=true the test runs and fails without it.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, mkdirSync } from "node:fs";
import { resolve } from "node:path";
import { dyeBatch } from "@indigo/projector/testing";
import { AgentMode, AgentStatusSchema, create, DetectionSource, toBinary } from "@indigo/proto";
import { chromium } from "playwright-core";
import { Analyzer } from "../analysis.ts";
import { createWorld, sampleRelease, type World } from "../testing/world.ts";

const CHROMIUM = process.env.INDIGO_CHROMIUM ?? "/usr/bin/chromium";
const available = existsSync(CHROMIUM) || process.env.CI === "true";
if (!available) {
  console.error(
    `dashboard test skipped: no Chromium at ${CHROMIUM} (apt-get install chromium, or set INDIGO_CHROMIUM)`,
  );
}
const ARTIFACTS = resolve(import.meta.dir, "../../../../test-artifacts");

let w: World;
let server: ReturnType<typeof Bun.serve> | undefined;
beforeAll(async () => {
  if (!available) return;
  w = await createWorld("dashboard");
  server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: (req, srv) => w.app.fetch(req, { server: srv }),
  });
}, 60_000);
afterAll(async () => {
  await server?.stop();
  await w?.close();
}, 30_000);

test.skipIf(!available)(
  "the dashboard shows a release with its state and its coverage chart",
  async () => {
    const created = await w.call("POST", "/v1/releases", { body: sampleRelease({ name: "dash-release" }) });
    const r = (await created.json()) as { id: string; dye: number };
    expect((await w.call("POST", `/v1/releases/${r.id}/start`, { ifMatch: 1 })).status).toBe(200);
    const d = { dye: r.dye, releaseId: r.id, source: DetectionSource.PAYLOAD };
    const producer = w.sb.kafka.producer();
    await producer.connect();
    const events = [0, 1, 2].flatMap((b) => [
      {
        seq: b * 2 + 1,
        atMs: 1000 + b * 10_000,
        ...d,
        comm: "gateway",
        sport: 42000 + b,
        dport: 8080,
        traceId: `t-d${b}`,
      },
      {
        seq: b * 2 + 2,
        atMs: 1100 + b * 10_000,
        ...d,
        comm: "checkout",
        sport: 43000 + b,
        dport: 9090,
        traceId: `t-d${b}`,
      },
    ]);
    // checkout answers the three cohort requests: one 503
    const answers = [0, 1, 2].map((b) => ({
      seq: 7 + b,
      atMs: 1200 + b * 10_000,
      ...d,
      kind: "response" as const,
      status: b === 1 ? 503 : 200,
      comm: "checkout",
      saddr: [10, 0, 0, 2],
      sport: 9090,
      daddr: [10, 0, 0, 1],
      dport: 43000 + b,
      traceId: `t-d${b}`,
    }));
    await producer.send({
      topic: w.sb.topics.dye,
      messages: [{ key: "agent-d", value: dyeBatch("agent-d", [...events, ...answers]) }],
    });
    await producer.disconnect();
    await w.projector.caughtUp(20_000);

    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--no-sandbox", "--headless=new"],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
      const base = `http://127.0.0.1:${server?.port}`;
      await page.goto(`${base}/`);
      await page.evaluate((token) => localStorage.setItem("indigo.token", token), w.tokens.operator);
      await page.goto(`${base}/`);
      const row = page.locator(`#releases tr[data-id="${r.id}"]`);
      await row.waitFor({ timeout: 10_000 });
      expect(await row.textContent()).toContain("dash-release");
      expect(await row.locator(".state").textContent()).toBe("running");
      await row.locator("td").first().click();
      await page.locator("#coverage-chart .hop-line").first().waitFor({ state: "attached", timeout: 10_000 });
      expect(await page.locator("#coverage-chart .hop-line").count()).toBe(2);
      expect(await page.locator("#coverage").textContent()).toContain("overall 100.00 % (6/6)");
      // the analysis' other input: the 5xx share of the cohort's responses, per callee
      const grayErrors = page.locator("#gray-errors tbody tr");
      expect(await grayErrors.count()).toBe(1);
      expect(await grayErrors.first().textContent()).toBe("10.0.0.2:90901/333.33 %");
      // pause from the dashboard: it asks why (Cancel sends nothing), and the release then says why
      const asked: string[] = [];
      let answer: string | null = null;
      page.on("dialog", (d) => {
        asked.push(d.message());
        void (answer === null ? d.dismiss() : d.accept(answer));
      });
      await row.locator("button", { hasText: "pause" }).click();
      await Bun.sleep(300);
      expect(asked).toEqual(["pause dash-release: why?"]);
      expect(await row.locator(".state").textContent()).toBe("running");
      answer = "checkout answers 503";
      await row.locator("button", { hasText: "pause" }).click();
      await page.locator(`#releases tr[data-id="${r.id}"] .state.paused`).waitFor({ timeout: 10_000 });
      expect(await row.locator(".reason").textContent()).toBe("checkout answers 503");
      const history = (await (await w.call("GET", `/v1/releases/${r.id}/history`)).json()) as {
        events: { actor: string }[];
      };
      expect(history.events.at(-1)?.actor).toBe("olga-operator");

      // A ramped release, watched: the page refreshes by itself, shows the step and when the next is due, and
      // a step long past due as overdue (no analysis pass runs here), then as held once one has run.
      expect((await w.call("POST", `/v1/releases/${r.id}/rollback`, { ifMatch: 3 })).status).toBe(200);
      const ramped = await w.call("POST", "/v1/releases", {
        body: sampleRelease({
          name: "dash-ramp",
          cohort: { percent: 1 },
          ramp: [
            { percent: 1, pauseSeconds: 0 },
            { percent: 5, pauseSeconds: 0 },
          ],
          analysis: { coverageFloor: 0.99, errorRateCeiling: 0.05, windowSeconds: 60, minRequests: 10 },
        }),
      });
      const rr = (await ramped.json()) as { id: string };
      expect((await w.call("POST", `/v1/releases/${rr.id}/start`, { ifMatch: 1 })).status).toBe(200);
      const rampCell = page.locator(`#releases tr[data-id="${rr.id}"] .ramp`);
      await rampCell.waitFor({ timeout: 10_000 });
      expect(await rampCell.textContent()).toMatch(/^1 % \(1\/2\), next step /);
      await page.locator(`#releases tr[data-id="${rr.id}"] .ramp.held`).waitFor({ timeout: 30_000 });
      expect(await rampCell.textContent()).toMatch(
        /^1 % \(1\/2\), next step overdue since .+: no analysis pass advanced it$/,
      );
      // An analysis pass holds it (no cohort traffic at all) and records why: the page says so.
      await new Analyzer({ db: w.sb.database.db, commands: w.commands }).tick();
      await page
        .locator(`#releases tr[data-id="${rr.id}"] .ramp.held`, { hasText: "held since" })
        .waitFor({ timeout: 15_000 });
      expect(await rampCell.textContent()).toMatch(
        /^1 % \(1\/2\), next step held since .+: no hop had 10 expected requests in the last 60 s, nothing to judge the gray version on$/,
      );

      // An agent that reported after that start without taking the new rules: the agents table says so.
      const statusProducer = w.sb.kafka.producer();
      await statusProducer.connect();
      await statusProducer.send({
        topic: w.sb.topics.agent,
        messages: [
          {
            key: "dash-agent",
            value: Buffer.from(
              toBinary(
                AgentStatusSchema,
                create(AgentStatusSchema, {
                  agentId: "dash-agent",
                  node: "node-d",
                  timeUnixNano: BigInt(Date.now() + 10_000) * 1_000_000n,
                  mode: AgentMode.FULL,
                }),
              ),
            ),
          },
        ],
      });
      await statusProducer.disconnect();
      await page.locator("#agents td.bad.rules").waitFor({ timeout: 15_000 });
      expect(await page.locator("#agents tbody tr").first().textContent()).toContain(
        "none — behind the last change",
      );
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: resolve(ARTIFACTS, "dashboard.png"), fullPage: true });
    } finally {
      await browser.close();
    }
  },
  90_000,
);
