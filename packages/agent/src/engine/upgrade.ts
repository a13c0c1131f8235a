// Hot upgrade and restart after a crash: what Engine.start needs besides libbpf. Links are pinned under
// <pinDir>/links/, so they outlive the process that made them (kill -9 included); the process that runs
// the engine is the one holding those links' fds. bpffs refuses regular files (no agent.pid next to the
// pins), and a pid file can go stale: the previous agent is found by the link fds it holds instead
// (/proc/<pid>/fdinfo/<fd>: `link_id:`), which cannot point at the wrong process.
import { existsSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { BpfLink as PinnedLink } from "../libbpf/link.ts";

/** `indigo-agent upgrade …`: the same flags as `run`, and Engine.start takes over from a running agent. */
export const upgradeMode: { active: boolean; report?: (r: TakeoverReport) => void } = { active: false };

/**
 * The `upgrade` subcommand: turns `upgrade ARGS` into `run ARGS` in upgrade mode, so that the ordinary
 * `run` path (standalone or daemon) starts the engine, which then takes over from the running agent.
 */
export const enterUpgradeMode = (argv: string[]): void => {
  argv[2] = "run";
  upgradeMode.active = true;
  upgradeMode.report = (r) => process.stderr.write(`${JSON.stringify({ upgrade: r })}\n`);
};

export type HookOutcome =
  /** nothing was pinned: attached fresh */
  | "attached"
  /** the pinned link now runs the new program (BPF_LINK_UPDATE): no gap, no overlap */
  | "updated"
  /** a new link first, then the pinned one unpinned (its last fd closes when the old agent exits) */
  | "replaced"
  /** tc: the filter at the same handle/priority replaced in place (BPF_TC_F_REPLACE) */
  | "tc-replaced";

export interface TakeoverReport {
  /** agents that held the pinned links when this one started, and that this one stopped */
  previousPids: number[];
  /** previous agents that had exited after SIGTERM (the rest were SIGKILLed after the timeout) */
  exited: number[];
  /** per hook (program name, or `tc:<iface>`): what happened to its attachment */
  hooks: Record<string, HookOutcome>;
  /**
   * Upper bound of the time, in ms, during which an old and a new tp_btf program were both attached
   * (from the first "replaced" attach to the old agent's exit); 0 when nothing was replaced.
   */
  overlapMs: number;
  /** links found pinned without any live process holding them: a restart after kill -9 */
  resumed: boolean;
}

/** Link ids held by process `pid` (its bpf_link fds), empty when it is gone or unreadable. */
export const linkIdsHeldBy = (pid: number): Set<number> => {
  const ids = new Set<number>();
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return ids;
  }
  for (const fd of fds) {
    try {
      // "bpf_link" when made by BPF_LINK_CREATE, "bpf-link" when opened from a pin (BPF_OBJ_GET)
      if (!/^anon_inode:bpf[-_]link$/.test(readlinkSync(`/proc/${pid}/fd/${fd}`))) continue;
      const id = /^link_id:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, "utf8"))?.[1];
      if (id) ids.add(Number(id));
    } catch {
      // the fd closed meanwhile
    }
  }
  return ids;
};

/** Processes other than this one that hold an fd of any of `linkIds`: the running agent(s). */
export const holdersOf = (linkIds: readonly number[]): number[] => {
  if (linkIds.length === 0) return [];
  const wanted = new Set(linkIds);
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    for (const id of linkIdsHeldBy(pid)) {
      if (wanted.has(id)) {
        pids.push(pid);
        break;
      }
    }
  }
  return pids;
};

const alive = (pid: number): boolean => {
  try {
    // a zombie (exited, not yet reaped by its parent) holds no fds any more: it counts as gone
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return !/^\d+ \(.*\) Z /s.test(stat);
  } catch {
    return false;
  }
};

/**
 * SIGTERM to each old agent, then waits (synchronously: Engine.start is synchronous) until it is gone;
 * after `timeoutMs` a survivor gets SIGKILL, which is safe once its attachments were taken over (all it
 * still owns are fds). Returns the pids that exited on SIGTERM.
 */
export const stopPrevious = (pids: readonly number[], timeoutMs = 10_000): number[] => {
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGTERM");
    } catch {
      // already gone
    }
  }
  const deadline = Date.now() + timeoutMs;
  let left = pids.filter(alive);
  while (left.length > 0 && Date.now() < deadline) {
    Bun.sleepSync(5);
    left = left.filter(alive);
  }
  for (const pid of left) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone meanwhile
    }
  }
  while (left.some(alive) && Date.now() < deadline + 5_000) Bun.sleepSync(5);
  return pids.filter((p) => !left.includes(p));
};

/** Pinned link files under `dir` (names = program names). */
export const pinnedLinks = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir) : []);

export const linkPinPath = (pinDir: string, name: string): string => join(pinDir, "links", name);

/** Ids of the links pinned in `dir` (unreadable pins are skipped). */
export const pinnedLinkIds = (dir: string): number[] =>
  pinnedLinks(dir).flatMap((name) => {
    try {
      const link = PinnedLink.openPinned(join(dir, name));
      try {
        return [link.info().id];
      } finally {
        link.destroy();
      }
    } catch {
      return [];
    }
  });
