// What the chain tests send and how they read it back: the cohort rules (one at start, one added and removed
// at run time), the interleaved plan of cohort and non-cohort requests, each request as the verdicts see it,
// and the order of requests on each pooled connection from what the servers logged.
import { type Chain, type ClientResult, cohortId, hopLogs, nonCohortId, type RequestSpec } from "./rig.ts";
import { type ConnOrder, type Req, seqOfPath } from "./verdicts.ts";

/** The cohort of the chain: dye 42 for `t-` + 8 hex + `-` + 4 hex. */
export const DYE = 42;
export const PATTERN = "^t-[a-f0-9]{8}-[a-f0-9]{4}";
/** The rule added and removed at run time. */
export const DYE2 = 43;
export const PATTERN2 = "^u-[a-f0-9]{8}-[a-f0-9]{4}";

/** Connecting endpoint → seqs on that connection, in order, from what the servers logged. */
export const connOrder = (chain: Chain, results: ClientResult[], clientAddr: string): ConnOrder => {
  const m = new Map<string, number[]>();
  const add = (end: string | undefined, seq: number | undefined) => {
    if (!end || seq === undefined) return;
    m.set(end, [...(m.get(end) ?? []), seq]);
  };
  for (const l of hopLogs(chain)) {
    if (l.hop === "A") {
      add(l.inPeer, seqOfPath(l.path));
      add(l.outLocal, seqOfPath(l.path));
    }
    if (l.hop === "C") add(l.peer, seqOfPath(l.path));
  }
  // A logs in completion order; the client's own view (results) is the fallback for link 1.
  for (const r of results)
    if (r.localPort && !m.has(`${clientAddr}:${r.localPort}`)) add(`${clientAddr}:${r.localPort}`, r.seq);
  return m;
};

export const reqOf = (s: RequestSpec): Req => ({
  seq: s.seq,
  traceId: s.traceId,
  cohort: s.cohort,
  dye: s.traceId?.startsWith("u-") ? DYE2 : DYE,
  status: s.fail ? 503 : 200,
});

/** Cohort or not for position i: period 8, half each, so that neither of 2 (or 4) pooled sockets served in
 * turn gets one class only. */
const PLAN = [true, false, false, true, false, true, true, false];

/** The interleaved plan: 2n requests, n cohort; two in ten are errors (503 from C). */
export const interleaved = (first: number, n: number): RequestSpec[] =>
  Array.from({ length: 2 * n }, (_, i) => {
    const cohort = PLAN[i % PLAN.length] ?? false;
    return {
      seq: first + i,
      cohort,
      traceId: cohort ? cohortId(first + i) : nonCohortId(first + i),
      fail: i % 10 === 7 || i % 10 === 4,
    };
  });
