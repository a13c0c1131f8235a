// The tc mark counter (bpf/mark_count.bpf.c): packets per skb->mark on an interface's egress, counted after
// the engine's own tc filter, so it sees the marks the engine left.
import { inNetns } from "../../packages/agent/src/testing/netns.ts";
import { run } from "../../packages/agent/src/testing/run.ts";
import type { ChainNet, Hop } from "./topology.ts";

/** tc runs filters by ascending pref: this one comes after the engine's. */
const PREF = 49000;

/** Attaches the counter object at tc egress of ifname, after any existing filter. */
export const attachTcMarkCounter = (net: ChainNet, hop: Hop, ifname: string, object: string): void => {
  const ns = net.topo.ns[hop];
  try {
    inNetns(ns, ["tc", "qdisc", "add", "dev", ifname, "clsact"]);
  } catch (e) {
    // The engine's libbpf-made clsact answers "File exists" or "Exclusivity flag on": either way it is there.
    if (!/File exists|Exclusivity flag on/.test((e as Error).message)) throw e;
  }
  inNetns(ns, [
    "tc",
    "filter",
    "add",
    "dev",
    ifname,
    "egress",
    "pref",
    `${PREF}`,
    "bpf",
    "da",
    "obj",
    object,
    "sec",
    "tc",
  ]);
};

/** Packets per skb->mark ("0x..." → count) the counter saw on ifname's egress. */
export const readTcMarkCounter = (net: ChainNet, hop: Hop, ifname: string): Record<string, number> => {
  const filters = JSON.parse(
    inNetns(net.topo.ns[hop], ["tc", "-j", "filter", "show", "dev", ifname, "egress"]),
  ) as {
    pref?: number;
    options?: { prog?: { id?: number } };
  }[];
  const progId = filters.find((f) => f.pref === PREF && f.options?.prog?.id)?.options?.prog?.id;
  if (!progId) throw new Error(`no mark counter on ${ifname}: ${JSON.stringify(filters)}`);
  const prog = JSON.parse(run(["bpftool", "-j", "prog", "show", "id", `${progId}`])) as {
    map_ids?: number[];
  };
  const mapId = prog.map_ids?.[0];
  if (!mapId) throw new Error(`mark counter program ${progId} has no map`);
  const entries = JSON.parse(run(["bpftool", "-j", "map", "dump", "id", `${mapId}`])) as {
    formatted?: { key: number; value: number };
  }[];
  const out: Record<string, number> = {};
  for (const e of entries)
    if (e.formatted) out[`0x${(e.formatted.key >>> 0).toString(16)}`] = e.formatted.value;
  return out;
};
