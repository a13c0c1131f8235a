// The chain's rig on its own, before any engine: client (node) → A (go) → B (java) → C (python3) in four
// network namespaces, cohort and non-cohort requests interleaved on shared keep-alive connections; nothing is
// dyed or marked and no Indigo option is on the wire. chain.int.test.ts then runs the same rig with the agent.
// Root only: skips with a reason elsewhere, except under CI=true (preconditions.ts).
import { afterAll, beforeAll, describe, expect } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Capture } from "../../packages/agent/src/testing/capture.ts";
import { readCaptures, startCaptures } from "./captures.ts";
import { installMarkCounters, readMarkCounters } from "./nft-mark-counters.ts";
import { interleaved } from "./plan.ts";
import { CONCURRENCY, clientOk, it, MAX_SOCKETS, notReady, skipReason, T } from "./preconditions.ts";
import { buildServers, type Chain, hopLogs, runBatch, startChain } from "./rig.ts";
import { ChainNet, HOPS } from "./topology.ts";
import { exidsSeen } from "./verdicts.ts";

// ------------------------------------------------------------------------------------ the rig on its own

describe("chain rig without the agent", () => {
  let net: ChainNet | undefined;
  let chain: Chain | undefined;
  let dir = "";
  let caps: Capture[] = [];

  beforeAll(async () => {
    if (skipReason) return;
    dir = mkdtempSync(join(tmpdir(), "indigo-chain-rig-"));
    const built = buildServers();
    net = ChainNet.create();
    for (const h of HOPS) installMarkCounters(net, h, undefined);
    caps = await startCaptures(net, dir);
    chain = await startChain(net, built, { maxSockets: MAX_SOCKETS });
  }, T);

  afterAll(async () => {
    await net?.teardown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, T);

  it(
    "requests cross client→A→B→C with keep-alive interleaving; without the engine nothing is dyed or marked",
    async () => {
      notReady();
      if (!net || !chain) throw new Error("rig not started");
      const specs = interleaved(1, 12);
      const results = await runBatch(chain, specs, CONCURRENCY);
      clientOk(results, specs);
      // Cohort and non-cohort requests shared sockets (by local port).
      const byPort = new Map<number, Set<boolean>>();
      for (const r of results)
        if (r.localPort) byPort.set(r.localPort, (byPort.get(r.localPort) ?? new Set()).add(r.cohort));
      expect([...byPort.values()].some((s) => s.size === 2)).toBe(true);
      expect(byPort.size).toBeLessThanOrEqual(MAX_SOCKETS);
      const logs = hopLogs(chain);
      // A forwarded the trace id; C never saw one (B forwards nothing); every mark is 0.
      expect(logs.filter((l) => l.hop === "A" && l.traceId).length).toBe(specs.length);
      expect(logs.filter((l) => l.hop === "C").map((l) => l.traceHeader ?? null)).toEqual(
        specs.map(() => null),
      );
      expect(
        logs.flatMap((l) => [l.inMark, l.outMark, l.mark]).filter((m) => m !== undefined && m !== 0),
      ).toEqual([]);
      // B is thread-per-connection: each B thread served several requests.
      const bTids = new Set(logs.filter((l) => l.hop === "B").map((l) => l.tid));
      expect(bTids.size).toBeLessThanOrEqual(MAX_SOCKETS);
      for (const c of caps) await c.stop();
      const links = readCaptures(dir);
      for (const [i, segs] of links.entries()) {
        if (segs.length === 0)
          console.log(`link${i + 1} capture empty; tcpdump said: ${caps[i]?.proc.err.lines.join(" | ")}`);
        expect(segs.length).toBeGreaterThan(0);
        expect(exidsSeen(segs)).toEqual([]);
      }
      for (const h of HOPS) expect(readMarkCounters(net, h).byMark).toEqual({});
    },
    T,
  );
});
