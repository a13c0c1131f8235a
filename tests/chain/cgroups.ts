// The chain's cgroup-v2 folders: made with their id (the inode the kernel reports in events), removed even
// while processes that were in them are still exiting.
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { removeCgroupDir } from "../../packages/agent/src/cgroup.ts";

/** Makes the cgroup folder; returns its cgroup id. */
export const makeCgroup = (path: string): string => {
  mkdirSync(path);
  return String(statSync(path).ino);
};

/** Moves leftover processes to `parent` (they may be exiting), then removes the cgroup, retrying briefly. */
export const removeCgroup = (path: string, parent: string): void => {
  if (!existsSync(path)) return;
  for (const pid of readFileSync(join(path, "cgroup.procs"), "utf8").split("\n").filter(Boolean)) {
    try {
      writeFileSync(join(parent, "cgroup.procs"), `${pid}\n`);
    } catch {
      // exited meanwhile
    }
  }
  removeCgroupDir(path);
};
