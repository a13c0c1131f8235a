// The netfilter side of degraded mode: one nftables table (`inet indigo_degraded`) that gives connections
// matching an L4 rule the engine's mark — conntrack mark and packet mark, `(base & ~mask) | (dye & mask)` —
// and restores the packet mark from the conntrack mark on every later packet of those connections (replies
// included). Two base chains: `output` (type route, so a new mark re-routes locally sent packets) and
// `prerouting` (packets arriving for or through this node). Every rule has a counter; that is all the
// status can say. iptables (mangle, CONNMARK/MARK) is the fallback when `nft` is missing or the kernel has
// no nf_tables; it uses the same chains in spirit: INDIGO_DEGRADED jumped to from OUTPUT and PREROUTING.
import { spawnSync } from "node:child_process";
import type { L4Rule } from "./l4-rules.ts";

export type Backend = "nftables" | "iptables";

export interface MarkSpec {
  markBase: number;
  markMask: number;
}

export const markOf = (m: MarkSpec, dye: number): number =>
  ((m.markBase & ~m.markMask) | (dye & m.markMask)) >>> 0;

const hex = (n: number): string => `0x${(n >>> 0).toString(16).padStart(8, "0")}`;

export interface RuleCount {
  rule: number;
  packets: number;
}

export interface Counts {
  perRule: RuleCount[];
  /** packets whose mark came back from the conntrack mark (later packets and replies) */
  restored: number;
}

export interface NetfilterBackend {
  readonly backend: Backend;
  apply(rules: readonly L4Rule[], m: MarkSpec): void;
  counts(): Counts;
  remove(): void;
}

const run = (cmd: string, args: string[], input?: string): string => {
  const r = spawnSync(cmd, args, { encoding: "utf8", input });
  if (r.error) throw new Error(`failed to run ${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed: ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
};

const matchOf = (r: L4Rule, family: "nft" | "ipt"): string[] => {
  const v6 = r.daddr?.includes(":") ?? false;
  if (family === "nft") {
    const m: string[] = [];
    if (r.daddr !== undefined) m.push(v6 ? `ip6 daddr ${r.daddr}` : `ip daddr ${r.daddr}`);
    m.push(r.dport !== undefined ? `tcp dport ${r.dport}` : "meta l4proto tcp");
    return m;
  }
  const m = ["-p", "tcp"];
  if (r.daddr !== undefined) m.push("-d", r.daddr);
  if (r.dport !== undefined) m.push("--dport", String(r.dport));
  return m;
};

export class NftBackend implements NetfilterBackend {
  readonly backend = "nftables" as const;
  constructor(readonly table = "indigo_degraded") {}

  /** The whole table as one nft script: replaced atomically, so a leftover of a crashed agent goes too. */
  script(rules: readonly L4Rule[], m: MarkSpec): string {
    const notMask = ~m.markMask >>> 0;
    const body = rules.map(
      (r, i) =>
        `    ${matchOf(r, "nft").join(" ")} ct mark set ${hex(markOf(m, r.dye))} meta mark set ${hex(markOf(m, r.dye))} counter accept comment "rule ${i} dye ${r.dye}"`,
    );
    const restore = `    ct mark & ${hex(notMask)} == ${hex(m.markBase & notMask)} ct mark & ${hex(m.markMask)} != 0 meta mark set ct mark counter comment "restore"`;
    const chain = (name: string, type: string, hook: string) =>
      [
        `  chain ${name} {`,
        `    type ${type} hook ${hook} priority mangle; policy accept;`,
        ...body,
        restore,
        "  }",
      ].join("\n");
    return [
      `table inet ${this.table} {}`,
      `delete table inet ${this.table}`,
      `table inet ${this.table} {`,
      chain("output", "route", "output"),
      chain("prerouting", "filter", "prerouting"),
      "}",
      "",
    ].join("\n");
  }

  apply(rules: readonly L4Rule[], m: MarkSpec): void {
    run("nft", ["-f", "-"], this.script(rules, m));
  }

  counts(): Counts {
    const json = JSON.parse(run("nft", ["-j", "list", "table", "inet", this.table])) as {
      nftables: { rule?: { comment?: string; expr: { counter?: { packets: number } }[] } }[];
    };
    const perRule = new Map<number, number>();
    let restored = 0;
    for (const item of json.nftables) {
      const rule = item.rule;
      if (!rule) continue;
      const packets = rule.expr.reduce((n, e) => n + (e.counter?.packets ?? 0), 0);
      const m = /^rule (\d+)/.exec(rule.comment ?? "");
      if (m) perRule.set(Number(m[1]), (perRule.get(Number(m[1])) ?? 0) + packets);
      else if (rule.comment === "restore") restored += packets;
    }
    return { perRule: [...perRule].map(([rule, packets]) => ({ rule, packets })), restored };
  }

  remove(): void {
    spawnSync("nft", ["delete", "table", "inet", this.table], { encoding: "utf8" });
  }
}

/** iptables mangle (whichever iptables the host has: nf_tables or legacy backend). IPv4 only. */
export class IptablesBackend implements NetfilterBackend {
  readonly backend = "iptables" as const;
  constructor(
    readonly chain = "INDIGO_DEGRADED",
    readonly cmd = "iptables",
  ) {}

  #ipt(...args: string[]): string {
    return run(this.cmd, ["-w", "-t", "mangle", ...args]);
  }

  apply(rules: readonly L4Rule[], m: MarkSpec): void {
    if (rules.some((r) => r.daddr?.includes(":"))) throw new Error("the iptables fallback marks IPv4 only");
    this.remove();
    this.#ipt("-N", this.chain);
    rules.forEach((r, i) => {
      const mark = hex(markOf(m, r.dye));
      const match = matchOf(r, "ipt");
      const tag = ["-m", "comment", "--comment", `rule ${i} dye ${r.dye}`];
      this.#ipt("-A", this.chain, ...match, ...tag, "-j", "CONNMARK", "--set-mark", mark);
      this.#ipt("-A", this.chain, ...match, ...tag, "-j", "MARK", "--set-mark", mark);
      this.#ipt("-A", this.chain, ...match, "-j", "RETURN");
    });
    const notMask = hex(~m.markMask >>> 0);
    this.#ipt(
      "-A",
      this.chain,
      "-m",
      "connmark",
      "--mark",
      `${hex(m.markBase & ~m.markMask)}/${notMask}`,
      "-m",
      "connmark",
      "!",
      "--mark",
      `0/${hex(m.markMask)}`,
      "-m",
      "comment",
      "--comment",
      "restore",
      "-j",
      "CONNMARK",
      "--restore-mark",
    );
    for (const hook of ["OUTPUT", "PREROUTING"]) this.#ipt("-I", hook, "1", "-j", this.chain);
  }

  counts(): Counts {
    const out = this.#ipt("-L", this.chain, "-v", "-x", "-n");
    const perRule = new Map<number, number>();
    let restored = 0;
    for (const line of out.split("\n")) {
      const packets = Number(line.trim().split(/\s+/)[0]);
      if (!Number.isFinite(packets)) continue;
      const m = /rule (\d+) dye/.exec(line);
      // CONNMARK and MARK lines of one rule see the same packets: count the MARK line.
      if (m && /MARK set/.test(line) && !/CONNMARK/.test(line))
        perRule.set(Number(m[1]), (perRule.get(Number(m[1])) ?? 0) + packets);
      else if (/\/\* restore \*\//.test(line)) restored += packets;
    }
    return { perRule: [...perRule].map(([rule, packets]) => ({ rule, packets })), restored };
  }

  remove(): void {
    for (const hook of ["OUTPUT", "PREROUTING"]) {
      while (spawnSync(this.cmd, ["-w", "-t", "mangle", "-D", hook, "-j", this.chain]).status === 0) {}
    }
    spawnSync(this.cmd, ["-w", "-t", "mangle", "-F", this.chain]);
    spawnSync(this.cmd, ["-w", "-t", "mangle", "-X", this.chain]);
  }
}

/** nftables when `nft` works here, else iptables; `prefer` forces one. */
export const pickBackend = (prefer?: Backend): NetfilterBackend => {
  if (prefer === "iptables") return new IptablesBackend();
  if (prefer === "nftables") return new NftBackend();
  const probe = spawnSync("nft", ["list", "tables"], { encoding: "utf8" });
  return probe.status === 0 ? new NftBackend() : new IptablesBackend();
};
