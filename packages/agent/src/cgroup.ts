// cgroup v2 discovery and child cgroups. The agent scopes its programs to a cgroup-v2 directory;
// its mount point differs between hosts (/sys/fs/cgroup, /sys/fs/cgroup/unified on hybrid setups).
import {
  closeSync,
  constants,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";

/** /proc/mounts escapes space, tab, newline and backslash as octal. */
const unescapeMountField = (field: string): string =>
  field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(Number.parseInt(oct, 8)));

/** Mount points of `fstype` listed in a /proc/mounts text, in mount order. */
export const mountPoints = (mounts: string, fstype: string): string[] =>
  mounts
    .split("\n")
    .map((line) => line.split(" "))
    .filter((fields) => fields[2] === fstype && fields[1] !== undefined)
    .map((fields) => unescapeMountField(fields[1] ?? ""));

/** The cgroup-v2 mount point, or undefined when this host has none. */
export const findCgroup2Root = (mounts = readFileSync("/proc/mounts", "utf8")): string | undefined =>
  mountPoints(mounts, "cgroup2")[0];

/** Opens a cgroup directory for BPF attach calls; the caller closes the fd. */
export const openCgroupFd = (path: string): number =>
  openSync(path, constants.O_RDONLY | constants.O_DIRECTORY);

/**
 * rmdir of an empty cgroup folder. A process killed (or moved out) a moment ago can still be leaving: the
 * kernel refuses the rmdir (EBUSY) until it has, so it is retried for up to ~2 s.
 */
export function removeCgroupDir(path: string): void {
  for (let attempt = 0; ; attempt++) {
    try {
      rmdirSync(path);
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EBUSY" || attempt >= 40) throw error;
      Bun.sleepSync(50);
    }
  }
}

/** Moves any process still inside `path` to its parent (they may be exiting), then removes it. Idempotent. */
export function removeCgroup(path: string): void {
  if (!existsSync(path)) return;
  const parentProcs = join(path, "..", "cgroup.procs");
  for (const pid of readFileSync(join(path, "cgroup.procs"), "utf8").split("\n")) {
    if (pid === "") continue;
    try {
      writeFileSync(parentProcs, `${pid}\n`);
    } catch {
      // It exited in between: nothing left to move.
    }
  }
  removeCgroupDir(path);
}

/** The processes directly in the cgroup-v2 directory `path`. */
const procsOf = (path: string): number[] =>
  readFileSync(join(path, "cgroup.procs"), "utf8")
    .split("\n")
    .filter((line) => line !== "")
    .map(Number);

/** The processes in `path` and every cgroup below it; one removed meanwhile is skipped. */
export function pidsInCgroupTree(path: string): number[] {
  let pids: number[];
  try {
    pids = procsOf(path);
  } catch {
    return [];
  }
  for (const entry of readdirSync(path, { withFileTypes: true }))
    if (entry.isDirectory()) pids.push(...pidsInCgroupTree(join(path, entry.name)));
  return pids;
}

export class ChildCgroup {
  private constructor(readonly path: string) {}

  /** Creates `parent/name` (fails if it exists: a leftover means a previous run did not clean up). */
  static create(parent: string, name: string): ChildCgroup {
    const path = join(parent, name);
    mkdirSync(path);
    return new ChildCgroup(path);
  }

  /** Moves a process (and, from then on, its children) into this cgroup. */
  addProcess(pid: number): void {
    writeFileSync(join(this.path, "cgroup.procs"), `${pid}\n`);
  }

  pids(): number[] {
    return procsOf(this.path);
  }

  /** Moves any process still inside to the parent, then removes the directory. Idempotent. */
  remove(): void {
    removeCgroup(this.path);
  }

  /** An O_DIRECTORY fd for attach calls, closed after `use` returns. */
  withFd<T>(use: (fd: number) => T): T {
    const fd = openCgroupFd(this.path);
    try {
      return use(fd);
    } finally {
      closeSync(fd);
    }
  }
}
