import { expect, test } from "bun:test";
import { findBpffs } from "./bpffs.ts";
import { findCgroup2Root, mountPoints } from "./cgroup.ts";

const T = 30_000;

const HYBRID = [
  "tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0",
  "cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0",
  "cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0",
  "bpf /sys/fs/bpf bpf rw,relatime 0 0",
].join("\n");

test(
  "finds cgroup v2 where a hybrid host mounts it, not at /sys/fs/cgroup",
  () => {
    expect(findCgroup2Root(HYBRID)).toBe("/sys/fs/cgroup/unified");
    expect(findBpffs(HYBRID)).toBe("/sys/fs/bpf");
  },
  T,
);

test(
  "undefined when there is no such mount; octal escapes in paths are decoded",
  () => {
    expect(findCgroup2Root("cgroup /sys/fs/cgroup/cpu cgroup rw 0 0\n")).toBeUndefined();
    expect(mountPoints("cgroup2 /mnt/my\\040cg cgroup2 rw 0 0", "cgroup2")).toEqual(["/mnt/my cg"]);
  },
  T,
);
