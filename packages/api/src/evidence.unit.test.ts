import { expect, test } from "bun:test";
import { agentGaps } from "./evidence.ts";

const now = Date.parse("2026-11-26T12:00:00Z");
const STALE = 30_000;
const WINDOW = 600_000;
const agent = (agentId: string, spooledEvents: bigint, agoMs: number, mode = "full", stopped = false) => ({
  agentId,
  node: `n-${agentId}`,
  mode,
  lastSeenAt: new Date(now - agoMs),
  spooledEvents,
  stopped,
});

test("an agent that reported spooled events lately is a gap; an empty spool is not", () => {
  expect(
    agentGaps([agent("b", 120n, 5_000), agent("a", 7n, STALE), agent("c", 0n, 1_000)], now, STALE, WINDOW),
  ).toEqual([
    "agent a (node n-a) holds 7 events in its spool, not in Kafka yet (status of 2026-11-26T11:59:30.000Z)",
    "agent b (node n-b) holds 120 events in its spool, not in Kafka yet (status of 2026-11-26T11:59:55.000Z)",
  ]);
  expect(agentGaps([agent("c", 0n, 0)], now, STALE, WINDOW)).toEqual([]);
});

test("an agent gone quiet within the window is a gap (a node cut off from Kafka sends no status either)", () => {
  expect(agentGaps([agent("q", 500n, STALE + 1), agent("r", 0n, WINDOW)], now, STALE, WINDOW)).toEqual([
    "agent q (node n-q) has not reported since 2026-11-26T11:59:29.999Z, within the window: its events may not have reached Kafka",
    "agent r (node n-r) has not reported since 2026-11-26T11:50:00.000Z, within the window: its events may not have reached Kafka",
  ]);
  // quiet for longer than the window (the window holds nothing of it), or degraded (it reports no dye events)
  expect(
    agentGaps([agent("gone", 0n, WINDOW + 1), agent("d", 0n, 60_000, "degraded")], now, STALE, WINDOW),
  ).toEqual([]);
});

test("a clean stop loses nothing; a stop with events left in the spool holds while within the window", () => {
  expect(agentGaps([agent("s", 0n, 60_000, "full", true)], now, STALE, WINDOW)).toEqual([]);
  expect(agentGaps([agent("t", 40n, 60_000, "full", true)], now, STALE, WINDOW)).toEqual([
    "agent t (node n-t) stopped at 2026-11-26T11:59:00.000Z with 40 events in its spool: they reach Kafka when it starts again",
  ]);
  expect(agentGaps([agent("t", 40n, WINDOW + 1, "full", true)], now, STALE, WINDOW)).toEqual([]);
});
