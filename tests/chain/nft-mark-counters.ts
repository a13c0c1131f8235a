// nftables in a hop's namespace: per-skb-mark packet counters on what the hop sends out of its links
// (postrouting), so a test sees which marks the kernel put on each hop's packets.

import { inNetns, netnsExec } from "../../packages/agent/src/testing/netns.ts";
import { run } from "../../packages/agent/src/testing/run.ts";
import type { ChainNet, Hop } from "./topology.ts";

const TABLE = "indigo_chain";

/** `expectedMark` adds a counter "dyed" of the packets that carry exactly that mark. */
export const installMarkCounters = (net: ChainNet, hop: Hop, expectedMark: number | undefined): void => {
  const ifs = net.topo.links.flatMap((l) => [l.left, l.right]).filter((e) => e.hop === hop);
  const oif = `{ ${ifs.map((e) => `"${e.ifname}"`).join(", ")} }`;
  const rules = [
    `table inet ${TABLE} {`,
    "  set marks { type mark; size 4096; flags dynamic; counter; }",
    "  chain out {",
    "    type filter hook postrouting priority 0; policy accept;",
    `    meta l4proto tcp oifname ${oif} counter name sent`,
    `    meta l4proto tcp oifname ${oif} meta mark != 0 update @marks { meta mark }`,
    ...(expectedMark === undefined
      ? []
      : [`    meta l4proto tcp oifname ${oif} meta mark 0x${expectedMark.toString(16)} counter name dyed`]),
    "  }",
    "  counter sent {}",
    ...(expectedMark === undefined ? [] : ["  counter dyed {}"]),
    "}",
  ].join("\n");
  run(netnsExec(net.topo.ns[hop], ["nft", "-f", "-"]), `nft in ${hop}:\n${rules}\n`, rules);
};

export interface MarkCounts {
  /** TCP packets the hop sent out of its links. */
  readonly sent: number;
  /** Packets per non-zero skb mark seen at postrouting. */
  readonly byMark: Record<string, number>;
}

export const readMarkCounters = (net: ChainNet, hop: Hop): MarkCounts => {
  const j = JSON.parse(inNetns(net.topo.ns[hop], ["nft", "-j", "list", "table", "inet", TABLE])) as {
    nftables: Record<string, unknown>[];
  };
  let sent = 0;
  const byMark: Record<string, number> = {};
  for (const item of j.nftables) {
    const counter = item.counter as { name: string; packets: number } | undefined;
    if (counter?.name === "sent") sent = counter.packets;
    const set = item.set as { name: string; elem?: unknown[] } | undefined;
    if (set?.name === "marks") {
      for (const e of set.elem ?? []) {
        const el = (e as { elem?: { val: number; counter?: { packets: number } } }).elem;
        if (el) byMark[`0x${el.val.toString(16)}`] = el.counter?.packets ?? 0;
      }
    }
  }
  return { sent, byMark };
};
