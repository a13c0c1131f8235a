// `indigo-agent run --standalone` as a child process, the way people and the chain test run it: ready line,
// one JSON event per line on stdout, SIGHUP re-reads the rules without a reload, SIGTERM detaches cleanly
// and prints the counters. The dye is the real one: a trace-id rule in the rules file, HTTP/1.1 requests
// whose x-trace-id matches it or not (testing/py/dyetraffic.py). Root + BPF only: skips with a reason elsewhere, except under CI=true.
import { afterEach, expect, test } from "bun:test";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ensureBpffs } from "../bpffs.ts";
import { ChildCgroup, findCgroup2Root } from "../cgroup.ts";
import { childLines } from "../testing/child-lines.ts";
import { createVethPair, inCgroupAndNetns, type VethPair } from "../testing/netns.ts";

const T = 60_000;
const CLI = join(import.meta.dir, "../cli/main.ts");
const PY = join(import.meta.dir, "../testing/py/dyetraffic.py");
const CI = process.env.CI === "true";
const PATTERN = "^t-[0-9a-f]{8}";
const COHORT = "t-0123abcd";
const OTHER = "t-0123abcz";
const skipReason =
  process.getuid?.() !== 0
    ? "needs root"
    : !existsSync("/sys/kernel/btf/vmlinux") || findCgroup2Root() === undefined
      ? "needs BTF and cgroup v2"
      : undefined;
if (skipReason && !CI) console.warn(`skipping standalone CLI test: ${skipReason}`);
const it = skipReason && !CI ? test.skip : test;

let cleanup: (() => void)[] = [];
afterEach(() => {
  for (const step of cleanup.reverse()) {
    try {
      step();
    } catch {
      // best effort: the next steps still run
    }
  }
  cleanup = [];
}, T);

const lines = (child: ChildProcess, stream: "stdout" | "stderr") => childLines(child, stream, 20_000);

it(
  "run --standalone prints events as JSON lines, re-reads rules on SIGHUP, detaches on SIGTERM",
  async () => {
    const net: VethPair = createVethPair();
    cleanup.push(() => net.destroy());
    const cg = ChildCgroup.create(findCgroup2Root() ?? "", `indigo-test-cli-${process.pid}`);
    cleanup.push(() => cg.remove());
    const pinDir = join(ensureBpffs(), `indigo-test-cli-${process.pid}`);
    cleanup.push(() => rmSync(pinDir, { recursive: true, force: true }));
    const rules = join("/tmp", `indigo-test-cli-${process.pid}.json`);
    writeFileSync(rules, JSON.stringify([{ dye: 11, traceIdPattern: PATTERN }]));
    cleanup.push(() => rmSync(rules, { force: true }));

    const agent = spawn(
      "bun",
      [
        CLI,
        "run",
        "--standalone",
        "--rules",
        rules,
        "--cgroup",
        cg.path,
        "--pin-dir",
        pinDir,
        "--iface",
        net.ifA,
        "--netns",
        net.nsA,
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    cleanup.push(() => agent.kill("SIGKILL"));
    const out = lines(agent, "stdout");
    const err = lines(agent, "stderr");
    const ready = JSON.parse(await err.next((l) => l.includes('"ready"')));
    expect(ready).toMatchObject({
      ready: true,
      cgroup: cg.path,
      pinDir,
      ifaces: [net.ifA],
      rules: { count: 1 },
    });

    // traffic: a client to a server, both in the cgroup. The client's thread first reads one cohort request
    // (loopback), so its connection is born dyed (SYN option, inherited); then a cohort and a non-cohort request.
    const [scmd, ...sargs] = inCgroupAndNetns(cg.path, net.nsB, ["python3", PY, "server", "8080"]);
    const server = spawn(scmd!, sargs, { stdio: ["ignore", "pipe", "inherit"] });
    cleanup.push(() => server.kill("SIGKILL"));
    await new Promise((r) => server.stdout?.once("data", r));
    const runClient = (ids: string[], primer?: string) => {
      const [ccmd, ...cargs] = inCgroupAndNetns(cg.path, net.nsA, [
        "python3",
        PY,
        "client",
        `${net.ipB}:8080`,
        ids.join(","),
        ...(primer ? [primer] : []),
      ]);
      const client = spawnSync(ccmd!, cargs, { encoding: "utf8", timeout: 20_000 });
      expect(client.stderr).toBe("");
      expect(client.status).toBe(0);
    };
    const isRequest = (dir: "egress" | "ingress", port: "sport" | "dport") => (l: string) => {
      const e = JSON.parse(l);
      return e.kind === "request" && e.direction === dir && e[port] === 8080;
    };
    runClient([COHORT, OTHER], COHORT);
    const sent = JSON.parse(await out.next(isRequest("egress", "dport")));
    expect(sent).toMatchObject({ kind: "request", direction: "egress", dye: 11, source: "payload" });
    expect(sent).toMatchObject({ trace_id: COHORT, method: "GET", path: "/r0" });
    const first = JSON.parse(await out.next(isRequest("ingress", "sport")));
    expect(first).toMatchObject({
      kind: "request",
      direction: "ingress",
      dye: 11,
      source: "tcp_option",
      sport: 8080,
    });
    expect(typeof first.ts_ns).toBe("string");
    expect(typeof first.socket_cookie).toBe("string");

    // SIGHUP re-reads the file: without the rule, the same cohort trace id no longer dyes anything.
    writeFileSync(rules, "[]");
    agent.kill("SIGHUP");
    expect(JSON.parse(await err.next((l) => l.startsWith('{"rules"')))).toEqual({
      rules: { count: 0, set: 0 },
    });
    const from = out.all.length;
    runClient([COHORT]);
    const after = JSON.parse(await out.next(isRequest("egress", "dport"), from));
    expect(after).toMatchObject({ direction: "egress", dye: 0, source: "none", trace_id: COHORT });
    expect(JSON.parse(await out.next(isRequest("ingress", "sport"), from))).toMatchObject({
      direction: "ingress",
      dye: 0,
      source: "none",
    });

    const exited = new Promise<number | null>((r) => agent.once("exit", (code) => r(code)));
    agent.kill("SIGTERM");
    const stopped = JSON.parse(await err.next((l) => l.includes('"stopped"')));
    expect(stopped.stopped).toBe("SIGTERM");
    expect(Number(stopped.counters.opt_written_syn)).toBe(1);
    expect(await exited).toBe(0);
    const cgShow = spawnSync("bpftool", ["-j", "cgroup", "show", cg.path], { encoding: "utf8" });
    expect(cgShow.stdout.trim()).toBe("");
    expect(existsSync(join(pinDir, "sock_state"))).toBe(true); // maps stay pinned for the next start
  },
  T,
);
