import { expect, test } from "bun:test";
import type { PendingRow } from "./dye-events.ts";
import { reconcile } from "./reconcile.ts";

const at = new Date(0);
const entered = (traceId: string, releaseId: string) => ({ traceId, releaseId, dye: 7, at });
const pending = (traceId: string): Pick<PendingRow, "traceId"> => ({ traceId });

test("nothing entered since: every entered trace is written and takes its stored rows", () => {
  const plan = reconcile([entered("T", "r1")], [pending("U")], new Map());
  expect(plan).toEqual({
    refold: false,
    entered: [entered("T", "r1")],
    take: [{ traceId: "T", releaseId: "r1" }],
  });
});

test("a trace that entered since with the same release: the entry is dropped, not written twice", () => {
  const plan = reconcile([entered("T", "r1"), entered("S", "r1")], [], new Map([["T", "r1"]]));
  expect(plan).toEqual({
    refold: false,
    entered: [entered("S", "r1")],
    take: [{ traceId: "S", releaseId: "r1" }],
  });
});

test("pending rows of a trace that entered since are taken back once, as misses of its release", () => {
  const plan = reconcile([], [pending("U"), pending("V"), pending("U")], new Map([["U", "r2"]]));
  expect(plan).toEqual({ refold: false, entered: [], take: [{ traceId: "U", releaseId: "r2" }] });
});

test("a trace this fold entered with another release than the one that entered since: fold again", () => {
  expect(reconcile([entered("T", "r1")], [], new Map([["T", "r2"]]))).toEqual({ refold: true });
});
