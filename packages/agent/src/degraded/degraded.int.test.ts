// Degraded mode for real: the agent entry point runs without the BPF capabilities (capsh drops cap_bpf,
// cap_sys_admin and cap_perfmon; cap_net_admin stays, nftables needs it) in a network namespace, stays up,
// reports degraded with the reason, and its port rule marks real TCP traffic to a server in a second
// namespace — checked by nft counters on `meta mark` in a verification table of the agent's namespace.
// Also: a real verifier rejection classified into a reason. Root only: skips with a reason elsewhere,
// except under CI=true where it must run.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BpfObject } from "../libbpf/index.ts";
import { buildBpf, skipping } from "../testing/kernel-gate.ts";
import { createVethPair, type VethPair } from "../testing/netns.ts";
import { pollFor } from "../testing/poll.ts";
import { classifyEngineError } from "./classify.ts";

const T = 120_000;
const REPO = join(import.meta.dir, "../../../..");
const RUN = join(import.meta.dir, "run.ts");
const CI = process.env.CI === "true";

const has = (cmd: string): boolean => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;
const missing = (): string | undefined => {
  if (process.getuid?.() !== 0) return "needs root (network namespaces, nftables, capsh)";
  if (!existsSync("/sys/kernel/btf/vmlinux")) return "kernel has no BTF (/sys/kernel/btf/vmlinux)";
  for (const tool of ["nft", "capsh", "nsenter", "ip", "python3", "clang", "make"])
    if (!has(tool)) return `${tool} is not installed`;
  return undefined;
};
const skipReason = missing();
if (skipReason && !CI) console.warn(`skipping degraded-mode integration tests: ${skipReason}`);
const it = skipReason && !CI ? test.skip : test;

const sh = (cmd: string): string => {
  const r = spawnSync("sh", ["-c", cmd], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${cmd}: ${r.stderr || r.stdout}`);
  return r.stdout;
};

let net: VethPair | undefined;
let dir = "";
let server: ChildProcess | undefined;
let agent: ChildProcess | undefined;
const agentLines: Record<string, unknown>[] = [];
const pinDir = `/sys/fs/bpf/indigo-test-degraded-${process.pid}`;

const waitFor = <X>(what: string, probe: () => X | undefined, ms = 20_000) =>
  pollFor(what, probe, { ms, detail: () => `the agent said ${JSON.stringify(agentLines)}` });

const SERVER = `
import socket, threading
def serve(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(16)
    while True:
        c, _ = s.accept()
        def echo(c=c):
            while (d := c.recv(4096)): c.sendall(d)
            c.close()
        threading.Thread(target=echo, daemon=True).start()
for p in (8080, 8081): threading.Thread(target=serve, args=(p,), daemon=True).start()
print("listening", flush=True)
threading.Event().wait()
`;

const CLIENT = (ip: string) => `
import socket
for port in (8080, 8081):
    c = socket.create_connection(("${ip}", port), timeout=5)
    for i in range(3):
        c.sendall(b"ping %d" % i); assert c.recv(100) == b"ping %d" % i
    c.close()
print("ok")
`;

const VERIFY = `table inet indigo_verify {
  chain post {
    type filter hook postrouting priority 100; policy accept;
    meta mark 0x01000007 tcp dport 8080 counter comment "marked_8080"
    meta mark 0x01000007 tcp dport 8081 counter comment "marked_8081"
    meta mark 0 tcp dport 8081 counter comment "unmarked_8081"
  }
  chain in {
    type filter hook input priority 100; policy accept;
    meta mark 0x01000007 tcp sport 8080 counter comment "marked_reply_8080"
    ct mark 0x01000007 tcp sport 8080 counter comment "ct_marked_reply_8080"
  }
}
`;

const verifyCounts = (ns: string): Record<string, number> => {
  const json = JSON.parse(sh(`ip netns exec ${ns} nft -j list table inet indigo_verify`)) as {
    nftables: { rule?: { comment?: string; expr: { counter?: { packets: number } }[] } }[];
  };
  const out: Record<string, number> = {};
  for (const { rule } of json.nftables) {
    if (rule?.comment) out[rule.comment] = rule.expr.reduce((n, e) => n + (e.counter?.packets ?? 0), 0);
  }
  return out;
};

beforeAll(() => {
  if (skipping("degraded-mode integration tests", skipReason)) return;
  buildBpf();
  dir = mkdtempSync(join(tmpdir(), "indigo-degraded-"));
  net = createVethPair();
}, T);

afterAll(() => {
  if (agent?.exitCode === null) agent.kill("SIGKILL");
  if (server?.exitCode === null) server.kill("SIGKILL");
  if (net) {
    spawnSync("ip", ["netns", "exec", net.nsA, "nft", "delete", "table", "inet", "indigo_degraded"]);
    net.destroy();
  }
  rmSync(pinDir, { recursive: true, force: true });
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("degraded mode", () => {
  it(
    "without CAP_BPF/CAP_SYS_ADMIN the agent stays up, says why, and a port rule marks real traffic",
    async () => {
      if (!net) throw new Error("no namespaces");
      const { nsA, nsB, ipB } = net;
      server = spawn("ip", ["netns", "exec", nsB, "python3", "-c", SERVER], {
        stdio: ["ignore", "pipe", "inherit"],
      });
      let serverOut = "";
      server.stdout?.on("data", (d) => {
        serverOut += String(d);
      });
      await waitFor("the server", () => (serverOut.includes("listening") ? true : undefined));

      const rules = join(dir, "l4.json");
      writeFileSync(rules, JSON.stringify([{ dye: 7, dport: 8080 }]));
      // nsenter, not `ip netns exec`: the latter remounts /sys, hiding cgroup2 and bpffs from the agent.
      const bun = process.execPath;
      agent = spawn(
        "nsenter",
        [
          `--net=/run/netns/${nsA}`,
          "capsh",
          "--drop=cap_bpf,cap_sys_admin,cap_perfmon",
          "--",
          "-c",
          `exec ${bun} ${RUN} --l4-rules ${rules} --pin-dir ${pinDir}`,
        ],
        { stdio: ["ignore", "ignore", "pipe"] },
      );
      let buf = "";
      agent.stderr?.on("data", (d) => {
        buf += String(d);
        let nl = buf.indexOf("\n");
        while (nl >= 0) {
          const text = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          try {
            agentLines.push(JSON.parse(text));
          } catch {
            agentLines.push({ raw: text });
          }
          nl = buf.indexOf("\n");
        }
      });
      const ready = await waitFor("the agent's ready line", () => agentLines.find((l) => l.ready));
      expect(ready.mode).toBe("degraded");
      const status = ready.status as { cause: string; reason: string; backend: string; coverage: unknown };
      expect(status.cause).toBe("no-capability");
      // What the kernel refused: bpf(BPF_MAP_CREATE) → EPERM, libbpf's load of the object fails.
      expect(status.reason).toBe(
        "no BPF capability (CAP_BPF and CAP_SYS_ADMIN missing): failed to load BPF object indigo: Operation not permitted",
      );
      expect(status.backend).toBe("nftables");
      expect(status.coverage).toBeNull();

      sh(`ip netns exec ${nsA} nft -f - <<'EOF'\n${VERIFY}EOF`);
      expect(sh(`ip netns exec ${nsA} python3 -c '${CLIENT(ipB)}'`).trim()).toBe("ok");

      const counts = verifyCounts(nsA);
      // SYN, 3 requests, ACKs and FIN to 8080 leave marked; its replies come back marked (restored from
      // conntrack); nothing to 8081 is marked.
      expect(counts.marked_8080).toBeGreaterThanOrEqual(5);
      expect(counts.marked_reply_8080).toBeGreaterThanOrEqual(4);
      expect(counts.ct_marked_reply_8080).toBe(counts.marked_reply_8080 as number);
      expect(counts.marked_8081).toBe(0);
      expect(counts.unmarked_8081).toBeGreaterThanOrEqual(5);

      agent.kill("SIGUSR1");
      const later = await waitFor("a status line", () => agentLines.find((l) => l.status && !l.ready));
      const s = later.status as { mode: string; rules: { packets: number }[]; packetsMarked: number };
      expect(s.mode).toBe("degraded");
      expect(s.rules[0]?.packets).toBe(counts.marked_8080 as number);
      expect(s.packetsMarked).toBeGreaterThanOrEqual(
        (counts.marked_8080 as number) + (counts.marked_reply_8080 as number),
      );
      expect(agent.exitCode).toBeNull();

      agent.kill("SIGTERM");
      await waitFor("the agent to exit", () => (agent?.exitCode === null ? undefined : agent?.exitCode));
      expect(agent.exitCode).toBe(0);
      expect(agentLines.some((l) => l.stopped === "SIGTERM")).toBe(true);
      expect(sh(`ip netns exec ${nsA} nft list tables`)).not.toContain("indigo_degraded");
    },
    T,
  );

  it.each(["iptables", "iptables-legacy"])(
    "the %s fallback marks a ruled port and restores replies, and leaves nothing behind",
    (cmd) => {
      if (!net) throw new Error("no namespaces");
      if (!has(cmd)) throw new Error(`${cmd} is not installed`);
      const script = `
        import { IptablesBackend } from ${JSON.stringify(join(import.meta.dir, "netfilter.ts"))};
        const b = new IptablesBackend("INDIGO_DEGRADED", ${JSON.stringify(cmd)});
        b.apply([{ dye: 7, dport: 9090 }], { markBase: 0x01000000, markMask: 0xffff });
        const py = "import socket\\ns=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);s.bind(('127.0.0.1',9090));s.listen()\\nc=socket.create_connection(('127.0.0.1',9090));a,_=s.accept();c.send(b'x');a.recv(1);a.send(b'y');c.recv(1)";
        const r = Bun.spawnSync(["python3", "-c", py]);
        const counts = b.counts();
        b.remove();
        const left = Bun.spawnSync([${JSON.stringify(cmd)}, "-t", "mangle", "-S"]).stdout.toString();
        console.log(JSON.stringify({ exit: r.exitCode, counts, left: left.includes("INDIGO") }));`;
      const file = join(dir, `ipt-${cmd}.ts`);
      writeFileSync(file, script);
      const out = sh(
        `ip netns exec ${net.nsA} capsh --drop=cap_bpf,cap_sys_admin,cap_perfmon -- -c '${process.execPath} ${file}'`,
      );
      const res = JSON.parse(out.trim().split("\n").pop() as string) as {
        exit: number;
        counts: { perRule: { rule: number; packets: number }[]; restored: number };
        left: boolean;
      };
      expect(res.exit).toBe(0);
      expect(res.counts.perRule[0]?.packets).toBeGreaterThanOrEqual(5);
      expect(res.counts.restored).toBeGreaterThanOrEqual(2);
      expect(res.left).toBe(false);
    },
    T,
  );

  it(
    "a verifier rejection becomes the reason, with program, message and source line",
    () => {
      const src = join(import.meta.dir, "../doctor/testdata/broken.bpf.c");
      const obj = join(dir, "broken.bpf.o");
      sh(`clang -target bpf -g -O2 -I ${join(REPO, "bpf/build")} -c ${src} -o ${obj}`);
      const bad = BpfObject.open(obj);
      let err: unknown;
      try {
        bad.load();
      } catch (e) {
        err = e;
      } finally {
        bad.close();
      }
      const c = classifyEngineError(err, { objectPath: obj });
      expect(c.cause).toBe("verifier");
      expect(c.reason).toMatch(
        /^verifier rejected count_unchecked: R0 invalid mem access 'map_value_or_null' \(broken\.bpf\.c:\d+, insn 7\)$/,
      );
    },
    T,
  );
});
