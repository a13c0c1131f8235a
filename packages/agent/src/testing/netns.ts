// Test helpers for real-kernel tests: network namespaces, veth pairs between them (or to the root
// namespace), commands run inside a namespace, and processes started inside a cgroup *and* a netns (the
// cgroup first: `ip netns exec` remounts /sys). Every name carries a unique tag so concurrent tests never
// collide; destroy() is idempotent.
import { existsSync } from "node:fs";
import { spawnSync } from "bun";
import { run } from "./run.ts";

/** argv that runs `argv` inside namespace `ns`. */
export const netnsExec = (ns: string, argv: string[]): string[] => ["ip", "netns", "exec", ns, ...argv];

/** Runs `argv` inside namespace `ns` to completion: its stdout; throws with its output on failure. */
export const inNetns = (ns: string, argv: string[]): string => run(netnsExec(ns, argv));

/** A fresh namespace with lo up. */
export const addNetns = (ns: string): void => {
  run(["ip", "netns", "add", ns]);
  run(["ip", "-n", ns, "link", "set", "lo", "up"]);
};

/** Deletes a namespace if it exists (and with it its interfaces, their veth peers, its nftables). */
export const removeNetns = (ns: string): void => {
  if (existsSync(`/run/netns/${ns}`)) run(["ip", "netns", "del", ns]);
};

export interface VethEnd {
  /** ip netns name; undefined: the root namespace */
  readonly ns?: string;
  readonly ifname: string;
  /** address/prefix, e.g. 10.1.2.1/30 */
  readonly cidr: string;
}

/** A veth pair a ↔ b, made inside a's namespace (so no end ever shows in another), both ends addressed and up. */
export const addVeth = (a: VethEnd, b: VethEnd): void => {
  const ip = (ns: string | undefined) => (ns === undefined ? ["ip"] : ["ip", "-n", ns]);
  // `netns 1`: the namespace of pid 1, the root one.
  const peerNs = b.ns === a.ns ? [] : ["netns", b.ns ?? "1"];
  run([...ip(a.ns), "link", "add", a.ifname, "type", "veth", "peer", "name", b.ifname, ...peerNs]);
  for (const end of [a, b]) {
    run([...ip(end.ns), "addr", "add", end.cidr, "dev", end.ifname]);
    run([...ip(end.ns), "link", "set", end.ifname, "up"]);
  }
};

let seq = 0;

export interface VethPair {
  /** netns names (ip netns) */
  readonly nsA: string;
  readonly nsB: string;
  readonly ifA: string;
  readonly ifB: string;
  readonly ipA: string;
  readonly ipB: string;
  /** IPv6 (ULA) addresses of the ends, when asked for; without duplicate address detection, usable at once. */
  readonly ip6A?: string;
  readonly ip6B?: string;
  nsPath(ns: string): string;
  /** runs a shell command in a namespace, synchronously; throws with stderr on failure */
  exec(ns: string, cmd: string): string;
  destroy(): void;
}

/** Two fresh namespaces, a veth between them, 10.<x>.<y>.1 ↔ .2/24 (and fd69:<x>:<y>::1 ↔ ::2/64 with
 * `ipv6`), both ends up, lo up. */
export const createVethPair = (opts: { ipv6?: boolean } = {}): VethPair => {
  const n = (process.pid % 1000) * 100 + (seq++ % 100);
  const tag = `ig${n}`;
  const nsA = `${tag}a`;
  const nsB = `${tag}b`;
  const ifA = `${tag}va`;
  const ifB = `${tag}vb`;
  const net = `10.${200 + (n % 50)}.${Math.floor(n / 50) % 250}`;
  const ipA = `${net}.1`;
  const ipB = `${net}.2`;
  // No zero group before the `::`, so the address reads the same in RFC 5952 short form (as events write it).
  const net6 = `fd69:${((n >> 12) + 1).toString(16)}:${((n & 0xfff) + 1).toString(16)}:`;
  const ip6A = opts.ipv6 ? `${net6}:1` : undefined;
  const ip6B = opts.ipv6 ? `${net6}:2` : undefined;
  const destroy = () => {
    for (const ns of [nsA, nsB]) spawnSync(["ip", "netns", "del", ns], { stderr: "ignore" });
  };
  try {
    addNetns(nsA);
    addNetns(nsB);
    addVeth({ ns: nsA, ifname: ifA, cidr: `${ipA}/24` }, { ns: nsB, ifname: ifB, cidr: `${ipB}/24` });
    if (ip6A && ip6B)
      for (const [ns, ifname, addr] of [
        [nsA, ifA, ip6A],
        [nsB, ifB, ip6B],
      ] as const)
        run(["ip", "-n", ns, "-6", "addr", "add", `${addr}/64`, "dev", ifname, "nodad"]);
  } catch (e) {
    destroy();
    throw e;
  }
  return {
    nsA,
    nsB,
    ifA,
    ifB,
    ipA,
    ipB,
    ip6A,
    ip6B,
    nsPath: (ns) => `/run/netns/${ns}`,
    exec: (ns, cmd) => run(netnsExec(ns, ["sh", "-c", cmd]), cmd),
    destroy,
  };
};

/** argv that enters `cgroupPath` (when given), then `ns` (when given), then execs `argv`. */
export const inCgroupAndNetns = (
  cgroupPath: string | undefined,
  ns: string | undefined,
  argv: string[],
): string[] => [
  "sh",
  "-c",
  `${cgroupPath ? 'echo $$ > "$0/cgroup.procs" && ' : ""}ns=$1; shift; exec ${ns ? 'ip netns exec "$ns" ' : ""}"$@"`,
  cgroupPath ?? "-",
  ns ?? "-",
  ...argv,
];
