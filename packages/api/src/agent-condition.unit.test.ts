import { expect, test } from "bun:test";
import { agentCondition, RULES_APPLY_GRACE_MS } from "./agent-condition.ts";

const changed = new Date("2026-11-26T12:00:00Z");
const at = (ms: number) => new Date(changed.getTime() + ms);
const row = (seenAfterMs: number, appliedAfterMs: number | null) => ({
  mode: "full",
  lastSeenAt: at(seenAfterMs),
  idConflict: "",
  idConflictAt: null,
  appliedGeneration: appliedAfterMs === null ? 0n : BigInt(at(appliedAfterMs).getTime()) * 1000n,
  stopped: false,
});
const behind = (seenAfterMs: number, appliedAfterMs: number | null, rulesChangedAt: Date | null = changed) =>
  agentCondition(row(seenAfterMs, appliedAfterMs), at(seenAfterMs).getTime(), 30_000, rulesChangedAt)
    .rulesBehind;

test("rules behind: a status well after the last change that still shows rules published before it", () => {
  expect(behind(RULES_APPLY_GRACE_MS + 1, -60_000)).toBe(true);
  expect(behind(RULES_APPLY_GRACE_MS + 1, null)).toBe(true); // never applied any
  // the publication that followed the change is in force
  expect(behind(RULES_APPLY_GRACE_MS + 1, 40)).toBe(false);
  // too soon after the change to tell: the agent may be applying it
  expect(behind(RULES_APPLY_GRACE_MS - 1, -60_000)).toBe(false);
  // last heard from before the change (a stale agent is reported as stale)
  expect(behind(-1_000, -60_000)).toBe(false);
  // no release ever ran: nothing to be behind
  expect(behind(60_000, null, null)).toBe(false);
  // a degraded agent applies no control: it is degraded, not behind
  expect(
    agentCondition({ ...row(60_000, null), mode: "degraded" }, at(60_000).getTime(), 30_000, changed)
      .rulesBehind,
  ).toBe(false);
});

test("an agent whose last status said it stopped is stopped, not stale, however long ago", () => {
  const quiet = { ...row(0, 0), lastSeenAt: at(0) };
  expect(agentCondition(quiet, at(31_000).getTime(), 30_000, changed)).toMatchObject({
    stale: true,
    stopped: false,
  });
  expect(agentCondition({ ...quiet, stopped: true }, at(3_600_000).getTime(), 30_000, changed)).toMatchObject(
    {
      stale: false,
      stopped: true,
    },
  );
});
