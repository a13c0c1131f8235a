import { expect, test } from "bun:test";
import { AgentMode, AgentStatusSchema, create } from "@indigo/proto";
import { idConflict } from "./agents.ts";

const at = (s: number) => new Date(Date.UTC(2026, 10, 26, 12, 0, s));
const status = (lastSeq: bigint, s: number, node = "n2") =>
  create(AgentStatusSchema, {
    agentId: "a",
    node,
    timeUnixNano: BigInt(at(s).getTime()) * 1_000_000n,
    mode: AgentMode.FULL,
    lastSeq,
  });
const stored = { node: "n1", lastSeq: 100n, lastSeenAt: at(10) };

test("a newer status whose last_seq went back marks the id; anything else does not", () => {
  expect(idConflict(stored, status(40n, 15))).toStartWith(
    "last_seq went back from 100 (node n1) to 40 (node n2): two agents report under this id, or this agent's sequence restarted",
  );
  expect(idConflict(undefined, status(40n, 15))).toBeUndefined(); // first status
  expect(idConflict(stored, status(100n, 15))).toBeUndefined(); // nothing shipped since
  expect(idConflict(stored, status(150n, 15))).toBeUndefined(); // progress
  expect(idConflict(stored, status(40n, 5))).toBeUndefined(); // an older status, redelivered or reordered
  expect(idConflict(stored, status(40n, 10))).toBeUndefined(); // the same instant
  expect(idConflict(stored, status(0n, 15))).toBeUndefined(); // degraded mode ships nothing: 0 is no position
  expect(idConflict({ ...stored, lastSeq: 0n }, status(40n, 15))).toBeUndefined();
});
