// Drives requests through the demo chain: a node client (tests/chain/servers/client.mjs) in the demo's
// client namespace and cgroup sends `--cohort N` requests with cohort trace ids (t-xxxxxxxx-xxxx, lower-case
// hex: a release with traceIdPattern ^t-[a-f0-9]{8}-[a-f0-9]{4} selects them) and `--other N` with near
// misses (tests/chain/rig.ts cohortId / nonCohortId), interleaved, on 2 keep-alive sockets. Prints one JSON
// summary line. `--offset K` picks other trace ids (default: random). `--fail-cohort N`: the first N cohort
// requests ask hop C for a 503 (path ending /fail), which the chain passes back: a broken gray version, for
// the automatic rollback to catch.
//
//   bun infra/demo/traffic.ts [--cohort 20] [--other 20] [--offset K] [--fail-cohort N]
//   (INDIGO_STATE_DIR as for ./dev)
import { join } from "node:path";
import { inCgroupAndNetns } from "../../packages/agent/src/testing/netns.ts";
import { spawnProc, stopProc } from "../../packages/agent/src/testing/proc.ts";
import { cohortId, nonCohortId, type RequestSpec, SERVERS } from "../../tests/chain/rig.ts";
import { readTopology } from "./topology.ts";

export interface TrafficResult {
  readonly cohort: number;
  readonly other: number;
  /** requests answered as asked (200, or 503 for those asked to fail), by class */
  readonly ok: { cohort: number; other: number };
  /** requests answered otherwise */
  readonly failed: { seq: number; traceId?: string; status: number; error?: string }[];
}

export const driveTraffic = async (
  stateDir: string,
  o: { cohort: number; other: number; offset?: number; failCohort?: number },
): Promise<TrafficResult> => {
  const t = readTopology(stateDir);
  if (!t) throw new Error(`no demo chain in ${stateDir} (./dev up starts one)`);
  const offset = o.offset ?? Math.floor(Math.random() * 1_000_000);
  const requests: RequestSpec[] = [];
  for (let i = 0; i < Math.max(o.cohort, o.other); i++) {
    if (i < o.cohort)
      requests.push({
        seq: requests.length + 1,
        traceId: cohortId(offset + i),
        cohort: true,
        fail: i < (o.failCohort ?? 0),
      });
    if (i < o.other)
      requests.push({ seq: requests.length + 1, traceId: nonCohortId(offset + i), cohort: false });
  }
  const client = spawnProc(
    "client",
    inCgroupAndNetns(t.cgroups.client, t.ns.client, ["node", join(SERVERS, "client.mjs"), t.target, "2"]),
    "pipe",
  );
  try {
    await client.out.waitFor((l) => /"ready":\s*true/.test(l), 15_000, "demo client ready");
    const stdin = client.proc.stdin;
    if (!stdin || typeof stdin === "number") throw new Error("client has no stdin pipe");
    stdin.write(`${JSON.stringify({ batch: 1, concurrency: 4, requests })}\n`);
    stdin.flush();
    await client.out.waitFor((l) => l === '{"batchDone":1}', 60_000, "demo traffic batch");
    const asked = new Map(requests.map((r) => [r.seq, r.fail ? 503 : 200]));
    const results = client.out
      .json<{ seq: number; traceId?: string; cohort: boolean; status: number; error?: string }>()
      .filter((r) => typeof r.seq === "number");
    const asAsked = (r: { seq: number; status: number }) => r.status === asked.get(r.seq);
    return {
      cohort: o.cohort,
      other: o.other,
      ok: {
        cohort: results.filter((r) => r.cohort && asAsked(r)).length,
        other: results.filter((r) => !r.cohort && asAsked(r)).length,
      },
      failed: results
        .filter((r) => !asAsked(r))
        .map(({ seq, traceId, status, error }) => ({ seq, traceId, status, error })),
    };
  } finally {
    client.proc.stdin?.end?.();
    await stopProc(client, 3000);
  }
};

if (import.meta.main) {
  const arg = (flag: string): number | undefined => {
    const i = process.argv.indexOf(flag);
    return i > 0 ? Number(process.argv[i + 1]) : undefined;
  };
  const stateDir = process.env.INDIGO_STATE_DIR ?? join(import.meta.dir, "../../.run");
  const r = await driveTraffic(stateDir, {
    cohort: arg("--cohort") ?? 20,
    other: arg("--other") ?? 20,
    offset: arg("--offset"),
    failCohort: arg("--fail-cohort"),
  });
  console.log(JSON.stringify(r));
  process.exit(r.failed.length === 0 ? 0 : 1);
}
