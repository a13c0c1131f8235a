// Kernel integration tests need root, kernel BTF, cgroup v2 and a few tools. Outside CI a machine without them
// skips, saying why; under CI=true the tests run (and fail) — DESIGN.md, "What tested means".
import { beforeAll, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { bpfObjectPath } from "../bpf-objects.ts";
import { findCgroup2Root } from "../cgroup.ts";

export interface KernelGate {
  /** `test`, or `test.skip` outside CI when something is missing */
  readonly it: typeof test;
  readonly skipReason: string | undefined;
  readonly ci: boolean;
}

const has = (cmd: string): boolean => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;

/** What a test needs that runs the engine against python3 traffic on veth pairs, with tc and tcpdump. */
export const ENGINE_TRAFFIC_TOOLS = ["make", "clang", "bpftool", "python3", "ip", "tc", "tcpdump"] as const;

export function kernelGate(what: string, tools: readonly string[]): KernelGate {
  const ci = process.env.CI === "true";
  let skipReason: string | undefined;
  if (process.getuid?.() !== 0) skipReason = "needs root (CAP_BPF, CAP_NET_ADMIN, cgroup and netns writes)";
  else if (!existsSync("/sys/kernel/btf/vmlinux")) skipReason = "kernel has no BTF (/sys/kernel/btf/vmlinux)";
  else if (findCgroup2Root() === undefined) skipReason = "no cgroup v2 mount in /proc/mounts";
  else skipReason = tools.filter((t) => !has(t)).map((t) => `${t} is not installed`)[0];
  if (skipReason && !ci) console.warn(`skipping ${what}: ${skipReason}`);
  return { it: skipReason && !ci ? test.skip : test, skipReason, ci };
}

/**
 * For a beforeAll: true when the tests are skipped on this machine (then set nothing up). Under CI=true
 * nothing may skip, so a reason throws instead.
 */
export function skipping(what: string, skipReason: string | undefined): boolean {
  if (!skipReason) return false;
  if (process.env.CI === "true") throw new Error(`${what} cannot run under CI: ${skipReason}`);
  return true;
}

const REPO = join(import.meta.dir, "../../../..");

/**
 * `make -C bpf [target]`: the test builds what it needs, so it also runs alone; make is incremental, so this
 * is cheap and never tests a stale object after an edit to bpf/. Throws make's stderr on failure, or when
 * `object` is still missing after it.
 */
export function buildBpf(object?: string, target?: string): void {
  const args = ["-C", join(REPO, "bpf"), ...(target ? [target] : [])];
  const make = spawnSync("make", args, { encoding: "utf8" });
  if (make.status !== 0 || (object !== undefined && !existsSync(object)))
    throw new Error(`make ${args.join(" ")} failed:\n${make.stderr}`);
}

/** Registers a beforeAll that builds the engine object (bpf/build/indigo.bpf.o), unless the tests skip here. */
export function buildEngineBeforeAll(what: string, skipReason: string | undefined, timeoutMs: number): void {
  beforeAll(() => {
    if (skipping(what, skipReason)) return;
    buildBpf(bpfObjectPath("indigo"));
  }, timeoutMs);
}
