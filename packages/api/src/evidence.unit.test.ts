import { expect, test } from "bun:test";
import { spoolGaps } from "./evidence.ts";

const now = Date.parse("2026-11-26T12:00:00Z");
const agent = (agentId: string, spooledEvents: bigint, agoMs: number) => ({
  agentId,
  node: `n-${agentId}`,
  lastSeenAt: new Date(now - agoMs),
  spooledEvents,
});

test("an agent that reported spooled events lately is a gap; an empty spool or a stale agent is not", () => {
  const gaps = spoolGaps(
    [agent("b", 120n, 5_000), agent("a", 7n, 30_000), agent("c", 0n, 1_000), agent("d", 500n, 30_001)],
    now,
    30_000,
  );
  expect(gaps).toEqual([
    "agent a (node n-a) holds 7 events in its spool, not in Kafka yet (status of 2026-11-26T11:59:30.000Z)",
    "agent b (node n-b) holds 120 events in its spool, not in Kafka yet (status of 2026-11-26T11:59:55.000Z)",
  ]);
  expect(spoolGaps([agent("c", 0n, 0)], now, 30_000)).toEqual([]);
});
