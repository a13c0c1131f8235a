// The benchmark's two "hosts": a client in a network namespace of its own, the server in the root namespace,
// joined by a veth pair, both processes in one child cgroup-v2 the engine is scoped to. The host end of the
// veth carries the tc egress program (server → client packets).
import { mkdirSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface Topology {
  readonly netns: string;
  readonly hostIface: string;
  readonly serverIp: string;
  readonly cgroup: string;
  readonly close: () => Promise<void>;
}

async function sh(cmd: string): Promise<void> {
  const proc = Bun.spawn(["sh", "-c", cmd], { stdout: "ignore", stderr: "pipe" });
  const [code, err] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
  if (code !== 0) throw new Error(`failed to run ${cmd}: ${err.trim()}`);
}

export async function createTopology(cgroupRoot: string): Promise<Topology> {
  const id = Math.random().toString(16).slice(2, 8);
  const netns = `ib-cli-${id}`;
  const hostIface = `ib-h-${id}`;
  const nsIface = `ib-c-${id}`;
  const cgroup = join(cgroupRoot, `indigo-bench-${id}`);
  const octet = 16 + Math.floor(Math.random() * 200);
  const serverIp = `10.251.${octet}.1`;
  const clientIp = `10.251.${octet}.2`;
  mkdirSync(cgroup);
  await sh(`ip netns add ${netns}`);
  await sh(`ip link add ${hostIface} type veth peer name ${nsIface} netns ${netns}`);
  await sh(`ip addr add ${serverIp}/30 dev ${hostIface} && ip link set ${hostIface} up`);
  await sh(
    `ip -n ${netns} addr add ${clientIp}/30 dev ${nsIface} && ip -n ${netns} link set ${nsIface} up && ip -n ${netns} link set lo up`,
  );
  return {
    netns,
    hostIface,
    serverIp,
    cgroup,
    close: async () => {
      await sh(`ip link del ${hostIface}`).catch(() => {});
      await sh(`ip netns del ${netns}`).catch(() => {});
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

/** argv that runs `cmd` inside `cgroup` (and `netns` when given): the cgroup is joined before `ip netns
 * exec` remounts /sys, which would hide it. */
export function inCgroup(cgroup: string, cmd: string[], netns?: string): string[] {
  const quoted = cmd.map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(" ");
  const exec = netns ? `exec ip netns exec ${netns} ${quoted}` : `exec ${quoted}`;
  return ["sh", "-c", `echo $$ > '${cgroup}/cgroup.procs' && ${exec}`];
}
