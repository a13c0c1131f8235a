// The BPF filesystem, where pinned maps and links outlive the agent process. Some hosts (and fresh
// test machines) do not mount it; the agent mounts it at the conventional place when it is missing.
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import { mountPoints } from "./cgroup.ts";

export const DEFAULT_BPFFS = "/sys/fs/bpf";

export const findBpffs = (mounts = readFileSync("/proc/mounts", "utf8")): string | undefined =>
  mountPoints(mounts, "bpf")[0];

/** The bpffs mount point, mounting one at `at` first when none exists (needs CAP_SYS_ADMIN). */
export const ensureBpffs = (at = DEFAULT_BPFFS): string => {
  const found = findBpffs();
  if (found !== undefined) return found;
  mkdirSync(at, { recursive: true });
  const mount = spawnSync("mount", ["-t", "bpf", "bpf", at], { encoding: "utf8" });
  if (mount.status !== 0) {
    throw new Error(`failed to mount bpffs at ${at}: ${(mount.stderr || mount.error?.message || "").trim()}`);
  }
  return at;
};
