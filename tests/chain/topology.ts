// Network namespaces, veth links and cgroup-v2 children for the chain test. Everything it creates has a
// per-run name and lives inside its own namespaces (no host interface, route or sysctl is touched);
// teardown() always runs every step and can be called twice.
//
//   nsClient ──link1── nsA ──link2── nsB ──link3── nsC      (each link a veth pair, a /30 in 10.R.L.0)
//
// Every hop runs in its namespace AND in a child of one parent cgroup (the agent is scoped to the parent).

import { mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { findCgroup2Root, removeCgroup } from "../../packages/agent/src/cgroup.ts";
import { addNetns, addVeth, inCgroupAndNetns, removeNetns } from "../../packages/agent/src/testing/netns.ts";
import { type Proc, spawnProc, stopProc } from "../../packages/agent/src/testing/proc.ts";

export const HOPS = ["client", "A", "B", "C"] as const;
export type Hop = (typeof HOPS)[number];

export interface LinkEnd {
  readonly hop: Hop;
  readonly ns: string;
  readonly ifname: string;
  readonly addr: string;
}
export interface Link {
  /** left is the connecting side (client of the link), right the listening side. */
  readonly left: LinkEnd;
  readonly right: LinkEnd;
}

export interface Topology {
  readonly id: string;
  readonly ns: Record<Hop, string>;
  /** client→A, A→B, B→C */
  readonly links: readonly [Link, Link, Link];
  readonly cgroupParent: string;
  readonly cgroups: Record<Hop, string>;
  /** cgroup id (inode of the cgroup directory) of each hop, as the kernel reports it in events. */
  readonly cgroupIds: Record<Hop, string>;
}

const tryAll = (steps: (() => unknown)[]): unknown[] =>
  steps.flatMap((step) => {
    try {
      step();
      return [];
    } catch (e) {
      return [e];
    }
  });

export class ChainNet {
  private readonly procs: Proc[] = [];
  private torn = false;

  private constructor(readonly topo: Topology) {}

  /** Builds namespaces, links and cgroups. On a failure half way, removes what it made and rethrows. */
  static create(): ChainNet {
    const root = findCgroup2Root();
    if (!root) throw new Error("no cgroup v2 mount in /proc/mounts");
    const id = `${(process.pid % 100000).toString(36)}${Math.floor(Math.random() * 36 ** 2)
      .toString(36)
      .padStart(2, "0")}`;
    const r = 100 + Math.floor(Math.random() * 100);
    const ns: Record<Hop, string> = {
      client: `ich-${id}-client`,
      A: `ich-${id}-a`,
      B: `ich-${id}-b`,
      C: `ich-${id}-c`,
    };
    const mk = (n: number, l: Hop, rgt: Hop): Link => ({
      left: { hop: l, ns: ns[l], ifname: `ic${id}l${n}`, addr: `10.${r}.${n}.1` },
      right: { hop: rgt, ns: ns[rgt], ifname: `ic${id}r${n}`, addr: `10.${r}.${n}.2` },
    });
    const links = [mk(1, "client", "A"), mk(2, "A", "B"), mk(3, "B", "C")] as const;
    const cgroupParent = join(root, `indigo-chain-${id}`);
    const cgroups = Object.fromEntries(HOPS.map((h) => [h, join(cgroupParent, h.toLowerCase())])) as Record<
      Hop,
      string
    >;
    const cgroupIds = {} as Record<Hop, string>;
    const net = new ChainNet({ id, ns, links, cgroupParent, cgroups, cgroupIds });
    try {
      for (const h of HOPS) addNetns(ns[h]);
      for (const { left, right } of links)
        addVeth(
          { ns: left.ns, ifname: left.ifname, cidr: `${left.addr}/30` },
          { ns: right.ns, ifname: right.ifname, cidr: `${right.addr}/30` },
        );
      mkdirSync(cgroupParent);
      for (const h of HOPS) {
        mkdirSync(cgroups[h]);
        cgroupIds[h] = String(statSync(cgroups[h]).ino); // the cgroup id events carry
      }
    } catch (e) {
      net.teardownSync();
      throw e;
    }
    return net;
  }

  /** Starts argv inside hop's cgroup and namespace. */
  spawn(hop: Hop, name: string, argv: string[], stdin: "pipe" | "ignore" = "ignore"): Proc {
    return this.track(
      spawnProc(name, inCgroupAndNetns(this.topo.cgroups[hop], this.topo.ns[hop], argv), stdin),
    );
  }

  /** Tracks a process started elsewhere, so teardown stops it. */
  track(p: Proc): Proc {
    this.procs.push(p);
    return p;
  }

  async teardown(): Promise<void> {
    await Promise.all(this.procs.map((p) => stopProc(p).catch(() => undefined)));
    this.teardownSync();
  }

  private teardownSync(): void {
    if (this.torn) return;
    this.torn = true;
    for (const p of this.procs) if (p.proc.exitCode === null) p.proc.kill("SIGKILL");
    const { ns, cgroups, cgroupParent } = this.topo;
    const errors = tryAll([
      // Deleting a namespace deletes its veth ends, and so the pairs, and its nftables tables.
      ...HOPS.map((h) => () => removeNetns(ns[h])),
      ...HOPS.map((h) => () => removeCgroup(cgroups[h])),
      () => removeCgroup(cgroupParent),
    ]);
    if (errors.length > 0)
      throw new AggregateError(errors, `chain topology ${this.topo.id}: teardown failed`);
  }
}
