// Kernel integration tests need root, kernel BTF, cgroup v2 and a few tools. Outside CI a machine without them
// skips, saying why; under CI=true the tests run (and fail) — DESIGN.md, "What tested means".
import { test } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { findCgroup2Root } from "../cgroup.ts";

export interface KernelGate {
  /** `test`, or `test.skip` outside CI when something is missing */
  readonly it: typeof test;
  readonly skipReason: string | undefined;
  readonly ci: boolean;
}

const has = (cmd: string): boolean => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;

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
