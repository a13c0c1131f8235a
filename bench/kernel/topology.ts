// The benchmark's two "hosts": a client in a network namespace of its own, the server in the root namespace,
// joined by a veth pair, both processes in one child cgroup-v2 the engine is scoped to. The host end of the
// veth carries the tc egress program (server → client packets).
import { mkdirSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "bun";
import { addNetns, addVeth, inCgroupAndNetns, removeNetns } from "../../packages/agent/src/testing/netns.ts";

export interface Topology {
  readonly netns: string;
  readonly hostIface: string;
  readonly serverIp: string;
  readonly cgroup: string;
  readonly close: () => Promise<void>;
}

export async function createTopology(cgroupRoot: string): Promise<Topology> {
  const id = Math.random().toString(16).slice(2, 8);
  const netns = `ib-cli-${id}`;
  const hostIface = `ib-h-${id}`;
  const cgroup = join(cgroupRoot, `indigo-bench-${id}`);
  const octet = 16 + Math.floor(Math.random() * 200);
  const serverIp = `10.251.${octet}.1`;
  mkdirSync(cgroup);
  addNetns(netns);
  addVeth(
    { ifname: hostIface, cidr: `${serverIp}/30` },
    { ns: netns, ifname: `ib-c-${id}`, cidr: `10.251.${octet}.2/30` },
  );
  return {
    netns,
    hostIface,
    serverIp,
    cgroup,
    close: async () => {
      // The host end first: a namespace a process still holds outlives `ip netns del`, and its veth end too.
      spawnSync(["ip", "link", "del", hostIface], { stderr: "ignore" });
      try {
        removeNetns(netns);
      } catch {
        // nothing a benchmark can do about it
      }
      try {
        rmdirSync(cgroup);
      } catch {
        writeFileSync(join(cgroup, "cgroup.kill"), "1");
        await Bun.sleep(200);
        rmdirSync(cgroup);
      }
    },
  };
}

/** argv that runs `cmd` inside `cgroup` (and `netns` when given). */
export function inCgroup(cgroup: string, cmd: string[], netns?: string): string[] {
  return inCgroupAndNetns(cgroup, netns, cmd);
}
