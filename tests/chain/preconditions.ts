// What every chain test file shares: whether this machine can run them (root, cgroup v2, the tools and
// runtimes), how a test skips or fails when it cannot, the run's sizes, and the client-side check.
import { expect, test } from "bun:test";
import { spawnSync } from "bun";
import { findCgroup2Root } from "../../packages/agent/src/cgroup.ts";
import type { ClientResult, RequestSpec } from "./rig.ts";

export const CI = process.env.CI === "true";
export const T = 240_000;

/** Requests per class in the interleaved run, and how many are in flight at once over maxSockets sockets. */
export const N = Number(process.env.INDIGO_CHAIN_N ?? 40);
export const CONCURRENCY = 4;
export const MAX_SOCKETS = 2;

const has = (cmd: string): boolean => spawnSync(["sh", "-c", `command -v ${cmd}`]).exitCode === 0;

const missing = (): string | undefined => {
  if (process.getuid?.() !== 0) return "needs root (netns, veth, cgroups, BPF, tcpdump)";
  if (!findCgroup2Root()) return "no cgroup v2 mount in /proc/mounts";
  for (const tool of [
    "ip",
    "nft",
    "tc",
    "tcpdump",
    "go",
    "javac",
    "java",
    "node",
    "python3",
    "make",
    "clang",
    "bpftool",
  ])
    if (!has(tool)) return `${tool} is not installed`;
  return undefined;
};
export const skipReason = missing();
if (skipReason && !CI) console.warn(`skipping chain tests: ${skipReason}`);
export const it = skipReason && !CI ? test.skip : test;
export const notReady = (): void => {
  if (skipReason) throw new Error(`chain tests cannot run under CI: ${skipReason}`);
};

// ------------------------------------------------------------------------------------------------ helpers

export const hex = (n: number) => `0x${n.toString(16)}`;

export const clientOk = (results: ClientResult[], specs: RequestSpec[]): void => {
  const bad = specs.flatMap((s) => {
    const r = results.find((x) => x.seq === s.seq);
    const want = s.fail ? 503 : 200;
    return r?.status === want
      ? []
      : [`seq ${s.seq}: status ${r?.status ?? "no result"} (want ${want}) ${r?.error ?? ""}`];
  });
  expect(bad.join("\n")).toBe("");
};
