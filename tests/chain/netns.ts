// Network namespaces, veth links and cgroup-v2 children for the chain test. Everything it creates has a
// per-run name and lives inside its own namespaces (no host interface, route or sysctl is touched);
// teardown() always runs every step and can be called twice.
//
//   nsClient ──link1── nsA ──link2── nsB ──link3── nsC      (each link a veth pair, a /30 in 10.R.L.0)
//
// Every hop runs in its namespace AND in a child of one parent cgroup (the agent is scoped to the parent).
// `ip netns exec` remounts /sys, so the process joins its cgroup first: sh writes its own pid into
// cgroup.procs, then execs `ip netns exec NS cmd` (the cgroup is inherited across exec).

import { existsSync, mkdirSync, readFileSync, rmdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Subprocess, spawnSync } from "bun";
import { findCgroup2Root } from "../../packages/agent/src/cgroup.ts";

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

export const run = (argv: string[], what = argv.join(" ")): string => {
  const r = spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0)
    throw new Error(`${what} failed (${r.exitCode}): ${r.stderr.toString()}${r.stdout.toString()}`);
  return r.stdout.toString();
};

export const inNs = (ns: string, argv: string[]): string => run(["ip", "netns", "exec", ns, ...argv]);

const tryAll = (steps: (() => unknown)[]): unknown[] =>
  steps.flatMap((step) => {
    try {
      step();
      return [];
    } catch (e) {
      return [e];
    }
  });

/** A process's output, line by line, with waiters. */
export class LineTap {
  readonly lines: string[] = [];
  private waiters: (() => void)[] = [];
  private ended = false;
  readonly done: Promise<void>;

  constructor(stream: ReadableStream<Uint8Array> | undefined | null) {
    this.done = stream ? this.pump(stream) : Promise.resolve();
  }

  private async pump(stream: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let rest = "";
    for await (const chunk of stream) {
      rest += decoder.decode(chunk, { stream: true });
      const parts = rest.split("\n");
      rest = parts.pop() ?? "";
      for (const line of parts) this.lines.push(line);
      this.wake();
    }
    if (rest !== "") this.lines.push(rest);
    this.ended = true;
    this.wake();
  }

  private wake(): void {
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) w();
  }

  /** Resolves with the first line (from `from` on) that satisfies pred; rejects on timeout or end of stream. */
  async waitFor(pred: (line: string) => boolean, timeoutMs: number, what: string, from = 0): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.lines.slice(from).find(pred);
      if (hit !== undefined) return hit;
      if (this.ended) throw new Error(`${what}: the stream ended without it`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${what}: not seen within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  json<T = Record<string, unknown>>(): T[] {
    return this.lines.flatMap((l) => {
      if (!l.startsWith("{")) return [];
      try {
        return [JSON.parse(l) as T];
      } catch {
        return [];
      }
    });
  }
}

export interface Proc {
  readonly name: string;
  readonly proc: Subprocess<"pipe" | "ignore", "pipe", "pipe">;
  readonly out: LineTap;
  readonly err: LineTap;
}

export const spawnProc = (name: string, argv: string[], stdin: "pipe" | "ignore" = "ignore"): Proc => {
  const proc = Bun.spawn(argv, { stdin, stdout: "pipe", stderr: "pipe" });
  return { name, proc, out: new LineTap(proc.stdout), err: new LineTap(proc.stderr) };
};

/** Stops a process we started: SIGTERM (or `signal`), then SIGKILL after graceMs. */
export const stopProc = async (p: Proc | undefined, graceMs = 3000, signal: NodeJS.Signals = "SIGTERM") => {
  if (!p || p.proc.exitCode !== null || p.proc.signalCode !== null) return;
  p.proc.kill(signal);
  const t = setTimeout(() => p.proc.kill("SIGKILL"), graceMs);
  await p.proc.exited;
  clearTimeout(t);
};

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
    const net = new ChainNet({ id, ns, links, cgroupParent, cgroups, cgroupIds: {} as Record<Hop, string> });
    try {
      for (const h of HOPS) {
        run(["ip", "netns", "add", ns[h]]);
        inNs(ns[h], ["ip", "link", "set", "lo", "up"]);
      }
      for (const link of links) {
        // Created inside the left namespace, so no interface ever appears in the host namespace.
        inNs(link.left.ns, [
          "ip",
          "link",
          "add",
          link.left.ifname,
          "type",
          "veth",
          "peer",
          "name",
          link.right.ifname,
          "netns",
          link.right.ns,
        ]);
        for (const end of [link.left, link.right]) {
          inNs(end.ns, ["ip", "addr", "add", `${end.addr}/30`, "dev", end.ifname]);
          inNs(end.ns, ["ip", "link", "set", end.ifname, "up"]);
        }
      }
      mkdirSync(cgroupParent);
      for (const h of HOPS) {
        mkdirSync(cgroups[h]);
        (net.topo.cgroupIds as Record<Hop, string>)[h] = String(statSync(cgroups[h]).ino);
      }
    } catch (e) {
      net.teardownSync();
      throw e;
    }
    return net;
  }

  /** Starts argv inside hop's cgroup and namespace. */
  spawn(hop: Hop, name: string, argv: string[], stdin: "pipe" | "ignore" = "ignore"): Proc {
    const script = 'cg=$1; ns=$2; shift 2; echo $$ > "$cg/cgroup.procs" && exec ip netns exec "$ns" "$@"';
    const p = spawnProc(
      name,
      ["sh", "-c", script, "sh", this.topo.cgroups[hop], this.topo.ns[hop], ...argv],
      stdin,
    );
    this.procs.push(p);
    return p;
  }

  /** Starts argv in hop's namespace only (tcpdump, ...): not in the agent's cgroup. */
  spawnInNs(hop: Hop, name: string, argv: string[]): Proc {
    const p = spawnProc(name, ["ip", "netns", "exec", this.topo.ns[hop], ...argv]);
    this.procs.push(p);
    return p;
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
      ...HOPS.map((h) => () => {
        const list = spawnSync(["ip", "netns", "list"]).stdout.toString();
        if (list.split("\n").some((l) => l.split(" ")[0] === ns[h])) run(["ip", "netns", "del", ns[h]]);
      }),
      ...HOPS.map((h) => () => removeCgroup(cgroups[h], cgroupParent)),
      () => removeCgroup(cgroupParent, join(cgroupParent, "..")),
    ]);
    if (errors.length > 0)
      throw new AggregateError(errors, `chain topology ${this.topo.id}: teardown failed`);
  }
}

/** Moves leftover processes to `parent` (they may be exiting), then removes the cgroup, retrying briefly. */
const removeCgroup = (path: string, parent: string): void => {
  if (!existsSync(path)) return;
  for (let attempt = 0; ; attempt++) {
    for (const pid of readFileSync(join(path, "cgroup.procs"), "utf8").split("\n").filter(Boolean)) {
      try {
        writeFileSync(join(parent, "cgroup.procs"), `${pid}\n`);
      } catch {
        // exited meanwhile
      }
    }
    try {
      rmdirSync(path);
      return;
    } catch (e) {
      if (attempt >= 50) throw e;
      Bun.sleepSync(20);
    }
  }
};

/** Starts tcpdump on one veth end inside its namespace and resolves once it listens. */
export const startCapture = async (net: ChainNet, end: LinkEnd, file: string): Promise<Proc> => {
  const p = net.spawnInNs(end.hop, `tcpdump ${end.ifname}`, [
    "tcpdump",
    "-i",
    end.ifname,
    "-w",
    file,
    "-U",
    // Without immediate mode, packets wait in TPACKET_V3 blocks and a SIGINT loses them ("0 packets captured").
    "--immediate-mode",
    "-Z",
    "root",
    "-n",
    "-s",
    "0",
    "tcp",
  ]);
  await p.err.waitFor((l) => l.includes("listening on"), 10_000, `tcpdump on ${end.ifname}`);
  return p;
};

/** SIGINT lets tcpdump flush and close its file; it first gets a moment to read what is in flight. */
export const stopCapture = async (p: Proc): Promise<void> => {
  await Bun.sleep(300);
  await stopProc(p, 3000, "SIGINT");
};

/** nftables in a hop's namespace: per-mark packet counters on what the hop sends out of its links. */
export const installMarkCounters = (net: ChainNet, hop: Hop, expectedMark: number | undefined): void => {
  const ifs = net.topo.links.flatMap((l) => [l.left, l.right]).filter((e) => e.hop === hop);
  const oif = `{ ${ifs.map((e) => `"${e.ifname}"`).join(", ")} }`;
  const rules = [
    "table inet indigo_chain {",
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
  const r = spawnSync(["ip", "netns", "exec", net.topo.ns[hop], "nft", "-f", "-"], {
    stdin: new TextEncoder().encode(rules),
    stderr: "pipe",
  });
  if (r.exitCode !== 0) throw new Error(`nft in ${hop}: ${r.stderr.toString()}\n${rules}`);
};

export interface MarkCounts {
  /** TCP packets the hop sent out of its links. */
  readonly sent: number;
  /** Packets per non-zero skb mark seen at postrouting. */
  readonly byMark: Record<string, number>;
}

export const readMarkCounters = (net: ChainNet, hop: Hop): MarkCounts => {
  const j = JSON.parse(inNs(net.topo.ns[hop], ["nft", "-j", "list", "table", "inet", "indigo_chain"])) as {
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

/** Attaches the mark counter (tests/chain/bpf/mark_count.bpf.c) at tc egress after any existing filter. */
export const attachTcMarkCounter = (net: ChainNet, hop: Hop, ifname: string, object: string): void => {
  const ns = net.topo.ns[hop];
  const qd = spawnSync(["ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", ifname, "clsact"], {
    stderr: "pipe",
  });
  // The engine's libbpf-made clsact answers "File exists" or "Exclusivity flag on": either way it is there.
  if (qd.exitCode !== 0 && !/File exists|Exclusivity flag on/.test(qd.stderr.toString()))
    throw new Error(`tc qdisc add clsact on ${ifname}: ${qd.stderr.toString()}`);
  inNs(ns, [
    "tc",
    "filter",
    "add",
    "dev",
    ifname,
    "egress",
    "pref",
    "49000",
    "bpf",
    "da",
    "obj",
    object,
    "sec",
    "tc",
  ]);
};

/** Packets per skb->mark ("0x..." → count) the mark counter saw on ifname's egress. */
export const readTcMarkCounter = (net: ChainNet, hop: Hop, ifname: string): Record<string, number> => {
  const filters = JSON.parse(
    inNs(net.topo.ns[hop], ["tc", "-j", "filter", "show", "dev", ifname, "egress"]),
  ) as {
    pref?: number;
    options?: { prog?: { id?: number } };
  }[];
  const progId = filters.find((f) => f.pref === 49000 && f.options?.prog?.id)?.options?.prog?.id;
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
