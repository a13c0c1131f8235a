import { describe, expect, test } from "bun:test";
import { LibbpfError } from "../libbpf/index.ts";
import { classifyEngineError, effectiveCaps } from "./classify.ts";
import { startDegraded } from "./degraded.ts";
import { parseL4Rules, validateL4Rules } from "./l4-rules.ts";
import { type Counts, markOf, type NetfilterBackend, NftBackend } from "./netfilter.ts";

describe("L4 rules", () => {
  test("accept a port, an address/CIDR or both", () => {
    expect(
      validateL4Rules([
        { dye: 7, dport: 8080 },
        { dye: 9, daddr: "10.0.0.0/8" },
        { dye: 3, dport: 1, daddr: "fd00::/8" },
      ]),
    ).toEqual([
      { dye: 7, dport: 8080 },
      { dye: 9, daddr: "10.0.0.0/8" },
      { dye: 3, dport: 1, daddr: "fd00::/8" },
    ]);
  });
  test.each([
    [[{ dye: 7 }], 'L4 rule 0: needs "dport", "daddr" or both'],
    [[{ dye: 7, traceIdPattern: "x" }], 'L4 rule 0: unknown field "traceIdPattern"'],
    [[{ dye: 0, dport: 1 }], 'L4 rule 0: "dye" must be an integer'],
    [[{ dye: 1, dport: 70000 }], 'L4 rule 0: "dport" must be a port'],
    [[{ dye: 1, daddr: "10.0.0.0/33" }], "L4 rule 0: prefix length"],
    [[{ dye: 1, daddr: "example.com" }], 'L4 rule 0: "daddr" must be an IPv4/IPv6'],
  ])("reject %j", (rules, message) => {
    expect(() => validateL4Rules(rules)).toThrow(message);
  });
  test("a file that is not JSON names itself", () => {
    expect(() => parseL4Rules("{", "r.json")).toThrow("r.json: not valid JSON");
  });
});

describe("nftables script", () => {
  const m = { markBase: 0x0100_0000, markMask: 0xffff };
  test("marks under the engine's base/mask, in output and prerouting, and restores from conntrack", () => {
    expect(markOf(m, 7)).toBe(0x0100_0007);
    const s = new NftBackend("t").script(
      [
        { dye: 7, dport: 8080 },
        { dye: 9, daddr: "fd00::/8" },
      ],
      m,
    );
    expect(s).toStartWith("table inet t {}\ndelete table inet t\n");
    expect(s).toContain("type route hook output priority mangle;");
    expect(s).toContain("type filter hook prerouting priority mangle;");
    expect(s).toContain(
      'tcp dport 8080 ct mark set 0x01000007 meta mark set 0x01000007 counter accept comment "rule 0 dye 7"',
    );
    expect(s).toContain("ip6 daddr fd00::/8 meta l4proto tcp ct mark set 0x01000009");
    expect(s).toContain(
      'ct mark & 0xffff0000 == 0x01000000 ct mark & 0x0000ffff != 0 meta mark set ct mark counter comment "restore"',
    );
  });
});

class FakeNetfilter implements NetfilterBackend {
  readonly backend = "nftables" as const;
  applied = 0;
  removed = 0;
  apply(): void {
    this.applied++;
  }
  counts(): Counts {
    return { perRule: [{ rule: 0, packets: 5 }], restored: 2 };
  }
  remove(): void {
    this.removed++;
  }
}

describe("startDegraded", () => {
  test("reports degraded, the reason, netfilter's counts and no coverage; stop removes the table once", () => {
    const nf = new FakeNetfilter();
    const h = startDegraded(
      "no BPF capability",
      [
        { dye: 7, dport: 80 },
        { dye: 8, dport: 81 },
      ],
      { netfilter: nf, cause: "no-capability" },
    );
    const s = h.status();
    expect(s).toMatchObject({
      mode: "degraded",
      reason: "no BPF capability",
      cause: "no-capability",
      packetsMarked: 7,
      packetsRestored: 2,
      coverage: null,
    });
    expect(s.rules).toEqual([
      { dye: 7, dport: 80, mark: 0x0100_0007, packets: 5 },
      { dye: 8, dport: 81, mark: 0x0100_0008, packets: 0 },
    ]);
    h.stop();
    h.stop();
    expect(nf.removed).toBe(1);
  });
  test("refuses a dye with no bits under the mask", () => {
    expect(() =>
      startDegraded("x", [{ dye: 0x10000, dport: 1 }], { netfilter: new FakeNetfilter() }),
    ).toThrow("L4 rule 0: dye 65536 has no bits under the mark mask 0xffff");
  });
});

describe("classifyEngineError", () => {
  const eperm = new LibbpfError("failed to load BPF object indigo: Operation not permitted", 1, []);
  test("missing kernel BTF comes first", () => {
    expect(classifyEngineError(eperm, { btfPath: "/nonexistent/vmlinux", caps: 0n }).cause).toBe("no-btf");
  });
  test("EPERM without CAP_BPF and CAP_SYS_ADMIN is a missing capability", () => {
    const c = classifyEngineError(eperm, { btfPath: "/proc/self/status", caps: 1n << 12n });
    expect(c.cause).toBe("no-capability");
    expect(c.reason).toStartWith("no BPF capability (CAP_BPF and CAP_SYS_ADMIN missing): failed to load");
  });
  test("EPERM with the capabilities is something else (lockdown, LSM)", () => {
    expect(classifyEngineError(eperm, { btfPath: "/proc/self/status", caps: 1n << 39n }).cause).toBe("other");
  });
  test("CapEff is read from /proc/self/status", () => {
    expect(effectiveCaps("CapInh:\t0\nCapEff:\t0000008000200000\n")).toBe((1n << 39n) | (1n << 21n));
  });
});
