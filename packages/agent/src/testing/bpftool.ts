// What bpftool sees of the engine, for tests that check attachments from outside the agent: programs on a
// cgroup, tc filters on an interface, pinned links and the programs they run, a pinned map's id and content.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import type { VethPair } from "./netns.ts";

/** `bpftool -j ARGS…` parsed; throws with bpftool's message when it fails. */
export const bpftoolJson = (...args: string[]): unknown => {
  const run = spawnSync("bpftool", ["-j", ...args], { encoding: "utf8" });
  if (run.status !== 0) throw new Error(`bpftool ${args.join(" ")}: ${run.stderr || run.stdout}`);
  // `cgroup show` prints nothing at all, not [], for a cgroup without programs.
  return run.stdout.trim() === "" ? [] : JSON.parse(run.stdout);
};

/** An engine attached to a cgroup and to tc on side A of a veth pair, its pins under pinDir. */
export interface AttachedWorld {
  readonly net: VethPair;
  readonly cg: { readonly path: string };
  readonly pinDir: string;
}

/** What is attached for this world: cgroup programs, tc filters, pinned links and their programs. */
export const attachments = (w: AttachedWorld) => {
  const cgroup = bpftoolJson("cgroup", "show", w.cg.path) as { id: number; name: string }[];
  const tc = w.net
    .exec(w.net.nsA, `tc filter show dev ${w.net.ifA} egress`)
    .split("\n")
    .filter((l) => l.includes("handle_tc_egres"));
  const linkDir = join(w.pinDir, "links");
  const pinned = existsSync(linkDir)
    ? readdirSync(linkDir).map((name) => ({
        name,
        ...(bpftoolJson("link", "show", "pinned", join(linkDir, name)) as { id: number; prog_id: number }),
      }))
    : [];
  return { cgroup, tc, pinned };
};

/** Links anywhere on the host that run one of `progIds`. */
export const linksRunning = (progIds: Set<number>) =>
  (bpftoolJson("link", "show") as { id: number; prog_id: number }[]).filter((l) => progIds.has(l.prog_id));

/** The sum of every slot of the pinned `counters` map over every CPU. */
export const counterTotal = (pinDir: string): bigint => {
  const dump = bpftoolJson("map", "dump", "pinned", join(pinDir, "counters")) as {
    values?: { value: number | string }[];
    formatted?: { values: { value: number }[] };
  }[];
  let sum = 0n;
  for (const e of dump) {
    for (const v of e.formatted?.values ?? e.values ?? []) {
      if (typeof v.value === "number") sum += BigInt(v.value);
    }
  }
  return sum;
};

export const pinnedMapId = (pinDir: string, name: string): number =>
  (bpftoolJson("map", "show", "pinned", join(pinDir, name)) as { id: number }).id;
