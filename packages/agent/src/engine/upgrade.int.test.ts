// Hot upgrade and kill -9 against the real kernel, with the agent run the way people run it
// (`indigo-agent run --standalone` / `indigo-agent upgrade`, child processes): two network namespaces
// joined by veth, a python3 keep-alive server (testing/py/dyetraffic.py) and a python3 client (below) in
// a fresh child cgroup. The client keeps a few keep-alive connections open and sends one request every
// ~2 ms over them, cohort (x-trace-id matching the rule) and non-cohort in turn, the whole time the agents
// are swapped or killed; every request's SO_MARK is read by the server process and by the client.
// Root + BPF only: skips with a reason elsewhere, except under CI=true where it must run.
import { afterEach, expect } from "bun:test";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ensureBpffs } from "../bpffs.ts";
import { ChildCgroup, findCgroup2Root } from "../cgroup.ts";
import { attachments, counterTotal, linksRunning, pinnedMapId } from "../testing/bpftool.ts";
import { startCapture } from "../testing/capture.ts";
import { childLines } from "../testing/child-lines.ts";
import { buildEngineBeforeAll, ENGINE_TRAFFIC_TOOLS, kernelGate } from "../testing/kernel-gate.ts";
import { createVethPair, inCgroupAndNetns, type VethPair } from "../testing/netns.ts";
import { readPcap } from "../testing/pcap.ts";
import { DEFAULT_OPTION_EXID, dyeMark } from "./dye-config.ts";
import { holdersOf, linkIdsHeldBy } from "./upgrade.ts";

const T = 120_000;
const CLI = join(import.meta.dir, "../cli/main.ts");
const PY = join(import.meta.dir, "../testing/py/dyetraffic.py");
const { it, skipReason } = kernelGate("hot upgrade / kill -9 tests", ENGINE_TRAFFIC_TOOLS);
buildEngineBeforeAll("hot upgrade tests", skipReason, T);

const PATTERN = "^t-[0-9a-f]{8}";
const COHORT = "t-0123abcd";
const OTHER = "t-0123abcz";
const DYE = 13;
const MARK = { markBase: 0x0100_0000, markMask: 0xffff };

// Keep-alive load: CONNS connections, round robin, one request every ~2 ms; every third request is
// non-cohort. One JSON line per request: wall-clock time, connection, trace id, both ends' SO_MARK.
const CLIENT = `
import json, os, socket, sys, time
host, port, conns, stop = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
socks = []
for _ in range(conns):
    s = socket.create_connection((host, port))
    socks.append((s, s.makefile("rb")))
i = 0
while not os.path.exists(stop):
    s, f = socks[i % conns]
    tid = "${OTHER}" if i % 3 == 2 else "${COHORT}"
    t = time.time()
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
    s.sendall(f"GET /r{i} HTTP/1.1\\r\\nHost: x\\r\\nx-trace-id: {tid}\\r\\n\\r\\n".encode())
    f.readline()
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
    length = 0
    while True:
        line = f.readline()
        if line in (b"\\r\\n", b""):
            break
        k, _, v = line.decode().partition(":")
        if k.lower() == "content-length":
            length = int(v)
    body = json.loads(f.read(length))
    print(json.dumps({"t": t, "conn": i % conns, "i": i, "trace_id": tid,
                      "client_mark": s.getsockopt(socket.SOL_SOCKET, 36), "server_mark": body["mark"]}), flush=True)
    i += 1
    time.sleep(0.002)
`;

interface Req {
  t: number;
  conn: number;
  i: number;
  trace_id: string;
  client_mark: number;
  server_mark: number;
}

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

const lines = (child: ChildProcess, stream: "stdout" | "stderr") => childLines(child, stream, 30_000);

/**
 * On the wire: per connection, the dye the client last announced in its TCP option (the SYN's, then every
 * data segment that carries one) at each request, which must be the request's own dye.
 */
const announcedOnTheWire = (pcap: string, conns: number): number[][] => {
  const segs = readPcap(pcap, DEFAULT_OPTION_EXID);
  const syns = segs.filter((s) => s.flags.syn && !s.flags.ack && s.dport === 8080);
  return syns.slice(0, conns).map((syn) => {
    let announced = syn.dye ?? 0;
    return segs
      .filter((s) => s.sport === syn.sport && s.dport === 8080 && s.payloadLen > 0)
      .map((s) => {
        announced = s.dye ?? announced;
        return announced;
      });
  });
};
const requestDyes = (reqs: Req[], conns: number): number[][] =>
  Array.from({ length: conns }, (_, c) =>
    reqs.filter((r) => r.conn === c).map((r) => (r.trace_id === COHORT ? DYE : 0)),
  );

interface World {
  net: VethPair;
  cg: ChildCgroup;
  pinDir: string;
  rules: string;
  agentArgs: string[];
}

const setUp = async (tag: string): Promise<World> => {
  const net = createVethPair();
  cleanup.push(() => net.destroy());
  const cg = ChildCgroup.create(findCgroup2Root() ?? "", `indigo-test-upgrade-${tag}-${process.pid}`);
  cleanup.push(() => cg.remove());
  const pinDir = join(ensureBpffs(), `indigo-test-upgrade-${tag}-${process.pid}`);
  cleanup.push(() => rmSync(pinDir, { recursive: true, force: true }));
  const rules = join("/tmp", `indigo-test-upgrade-${tag}-${process.pid}.json`);
  writeFileSync(rules, JSON.stringify([{ dye: DYE, traceIdPattern: PATTERN }]));
  cleanup.push(() => rmSync(rules, { force: true }));
  const agentArgs = [
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
  ];
  return { net, cg, pinDir, rules, agentArgs };
};

/**
 * The keep-alive server. Started after the first agent: a listener opened while no sock_ops program is
 * attached never gets the option-parsing callbacks (TCP_LISTEN_CB sets them), which is also why the swap
 * must leave no moment without one.
 */
const startServer = async (w: World): Promise<void> => {
  const [scmd, ...sargs] = inCgroupAndNetns(w.cg.path, w.net.nsB, ["python3", PY, "server", "8080"]);
  const server = spawn(scmd!, sargs, { stdio: ["ignore", "pipe", "inherit"] });
  cleanup.push(() => server.kill("SIGKILL"));
  await new Promise((r) => server.stdout?.once("data", r));
};

interface Agent {
  child: ChildProcess;
  err: ReturnType<typeof lines>;
  ready: { pid: number; reusedMaps: string[] };
  exited: Promise<number | null>;
}

const startAgent = async (w: World, cmd: "run" | "upgrade"): Promise<Agent> => {
  // stdout (one JSON event per line) is not needed here: /dev/null, so a full pipe never blocks the agent
  const child = spawn("bun", [CLI, cmd, ...w.agentArgs], { stdio: ["ignore", "ignore", "pipe"] });
  cleanup.push(() => child.kill("SIGKILL"));
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  const err = lines(child, "stderr");
  const ready = JSON.parse(await err.next((l) => l.includes('"ready"')));
  return { child, err, ready, exited };
};

/** The long-lived client; stop() ends it and returns every request it made. */
const startClient = async (w: World, conns: number) => {
  const stopFile = join("/tmp", `indigo-test-upgrade-stop-${process.pid}-${Date.now()}`);
  cleanup.push(() => rmSync(stopFile, { force: true }));
  const [ccmd, ...cargs] = inCgroupAndNetns(w.cg.path, w.net.nsA, [
    "python3",
    "-c",
    CLIENT,
    w.net.ipB,
    "8080",
    String(conns),
    stopFile,
  ]);
  const child = spawn(ccmd!, cargs, { stdio: ["ignore", "pipe", "pipe"] });
  cleanup.push(() => child.kill("SIGKILL"));
  const out = lines(child, "stdout");
  const err = lines(child, "stderr");
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  await out.next(() => true); // connected and answering
  return {
    count: () => out.all.length,
    stop: async (): Promise<Req[]> => {
      writeFileSync(stopFile, "");
      const code = await exited;
      if (code !== 0) throw new Error(`client exited ${code}: ${err.all.join("\n")}`);
      return out.all.map((l) => JSON.parse(l) as Req);
    },
  };
};

/** Every request marked as its trace id says: cohort → the dye's mark at both ends, non-cohort → 0. */
const wrongMarks = (reqs: Req[]): Req[] => {
  const want = dyeMark(MARK, DYE);
  return reqs.filter((r) => {
    const m = r.trace_id === COHORT ? want : 0;
    return r.client_mark !== m || r.server_mark !== m;
  });
};

/** Exactly one Indigo attachment per hook: 3 cgroup programs, 1 tc filter, 5 pinned links, one holder. */
const expectOnePerHook = (w: World, agentPid: number) => {
  const a = attachments(w);
  expect(a.cgroup.map((p) => p.name).sort()).toEqual([
    "handle_connect4",
    "handle_connect6",
    "handle_sock_ops",
  ]);
  expect(a.tc.length).toBe(1);
  expect(a.pinned.map((l) => l.name).sort()).toEqual([
    "handle_connect4",
    "handle_connect6",
    "handle_sock_ops",
    "handle_sock_recv",
    "handle_tcp_sendmsg",
  ]);
  // the cgroup's programs are the ones the pinned links run
  const linkProgs = new Set(a.pinned.map((l) => l.prog_id));
  for (const p of a.cgroup) expect(linkProgs.has(p.id)).toBe(true);
  // the one agent holds every pinned link, and nobody else does
  expect(holdersOf(a.pinned.map((l) => l.id))).toEqual([agentPid]);
  const held = linkIdsHeldBy(agentPid);
  for (const l of a.pinned) expect(held.has(l.id)).toBe(true);
  return a;
};

it(
  "upgrade under continuous keep-alive traffic: no dyed request goes unmarked, the old agent exits, one agent and one attachment per hook remain",
  async () => {
    const w = await setUp("hot");
    const old = await startAgent(w, "run");
    await startServer(w);
    const before = expectOnePerHook(w, old.ready.pid);
    const oldProgs = new Set([...before.pinned.map((l) => l.prog_id), ...before.cgroup.map((p) => p.id)]);

    // A second `run` next to a live agent is refused and changes nothing.
    const second = spawnSync("bun", [CLI, "run", ...w.agentArgs], { encoding: "utf8", timeout: 30_000 });
    expect(second.status).toBe(2);
    expect(second.stderr).toContain(`an agent (pid ${old.ready.pid}) runs the engine pinned under`);

    const pcap = join("/tmp", `indigo-test-upgrade-${process.pid}.pcap`);
    cleanup.push(() => rmSync(pcap, { force: true }));
    const cap = await startCapture(w.net.nsB, w.net.ifB, pcap, "tcp port 8080");
    const client = await startClient(w, 4);
    await Bun.sleep(800);
    const swapFrom = Date.now() / 1000;
    const next = await startAgent(w, "upgrade");
    const swapTo = Date.now() / 1000;
    const report = JSON.parse(await next.err.next((l) => l.startsWith('{"upgrade"'))).upgrade;
    // The old agent was told to stop, saw that its attachments were taken over, and exited cleanly.
    expect(await old.exited).toBe(0);
    expect(old.err.all.some((l) => l.includes('"stopped":"SIGTERM"'))).toBe(true);
    expect(old.err.all.filter((l) => l.includes('"error"'))).toEqual([]);
    expect(report).toMatchObject({ previousPids: [old.ready.pid], exited: [old.ready.pid], resumed: false });
    expect(report.hooks).toEqual({
      handle_sock_ops: "updated",
      handle_connect4: "updated",
      handle_connect6: "updated",
      handle_sock_recv: "replaced",
      handle_tcp_sendmsg: "replaced",
      [`tc:${w.net.ifA}`]: "tc-replaced",
    });
    console.log(
      `upgrade: tp_btf overlap ≤ ${report.overlapMs} ms, swap took ${(swapTo - swapFrom).toFixed(2)} s`,
    );
    expect(next.ready.reusedMaps.length).toBe(8);
    await Bun.sleep(1000);
    const reqs = await client.stop();
    await Bun.sleep(100);
    await cap.stop();

    // Per request, at both ends: cohort marked, non-cohort not — before, during and after the swap.
    expect(wrongMarks(reqs)).toEqual([]);
    const during = reqs.filter((r) => r.t >= swapFrom && r.t <= swapTo);
    const after = reqs.filter((r) => r.t > swapTo);
    expect(during.filter((r) => r.trace_id === COHORT).length).toBeGreaterThan(20);
    expect(after.filter((r) => r.trace_id === COHORT).length).toBeGreaterThan(20);
    expect(new Set(reqs.map((r) => r.conn)).size).toBe(4); // the same 4 connections throughout
    // and on the wire: every request went out under the TCP option announcing its own dye
    expect(announcedOnTheWire(pcap, 4)).toEqual(requestDyes(reqs, 4));

    const now = expectOnePerHook(w, next.ready.pid);
    // cgroup links were updated in place (same link ids), the tp_btf ones replaced; none runs an old program
    const ids = (a: typeof before) => Object.fromEntries(a.pinned.map((l) => [l.name, l.id]));
    expect(ids(now).handle_sock_ops).toBe(ids(before).handle_sock_ops);
    expect(ids(now).handle_sock_recv).not.toBe(ids(before).handle_sock_recv);
    expect(linksRunning(oldProgs)).toEqual([]);
    expect(now.cgroup.filter((p) => oldProgs.has(p.id))).toEqual([]);

    // A clean stop of the one agent left detaches everything and removes the link pins.
    next.child.kill("SIGTERM");
    expect(await next.exited).toBe(0);
    const gone = attachments(w);
    expect(gone.cgroup).toEqual([]);
    expect(gone.tc).toEqual([]);
    expect(existsSync(join(w.pinDir, "links"))).toBe(false);
    expect(existsSync(join(w.pinDir, "counters"))).toBe(true);
  },
  T,
);

it(
  "kill -9: the pinned links keep dyeing with no agent; a restart reuses maps and links, one attachment per hook",
  async () => {
    const w = await setUp("kill");
    const first = await startAgent(w, "run");
    await startServer(w);
    const before = expectOnePerHook(w, first.ready.pid);
    const maps = {
      counters: pinnedMapId(w.pinDir, "counters"),
      sock_state: pinnedMapId(w.pinDir, "sock_state"),
    };
    const client = await startClient(w, 3);
    await Bun.sleep(500);

    first.child.kill("SIGKILL");
    await first.exited;
    const killedAt = Date.now() / 1000;
    // No agent runs: every attachment is still there, held by nobody but its pin.
    const orphan = attachments(w);
    expect(orphan.cgroup.length).toBe(3);
    expect(orphan.tc.length).toBe(1);
    expect(orphan.pinned.length).toBe(5);
    expect(holdersOf(orphan.pinned.map((l) => l.id))).toEqual([]);
    const counted = counterTotal(w.pinDir);
    await Bun.sleep(800);
    expect(counterTotal(w.pinDir)).toBeGreaterThan(counted); // the programs still run and count
    const restartFrom = Date.now() / 1000;

    const again = await startAgent(w, "run");
    const restartedAt = Date.now() / 1000;
    expect([...again.ready.reusedMaps].sort()).toEqual([
      "counters",
      "dye_config",
      "events",
      "recv_mark",
      "rules",
      "sampling",
      "sock_state",
      "thread_state",
    ]);
    expect({
      counters: pinnedMapId(w.pinDir, "counters"),
      sock_state: pinnedMapId(w.pinDir, "sock_state"),
    }).toEqual(maps);
    const countedBeforeRestart = counterTotal(w.pinDir);
    expect(countedBeforeRestart).toBeGreaterThan(counted);
    await Bun.sleep(800);
    const reqs = await client.stop();

    expect(wrongMarks(reqs)).toEqual([]);
    const orphaned = reqs.filter((r) => r.t > killedAt && r.t < restartFrom && r.trace_id === COHORT);
    const afterRestart = reqs.filter((r) => r.t > restartedAt && r.trace_id === COHORT);
    expect(orphaned.length).toBeGreaterThan(20);
    expect(afterRestart.length).toBeGreaterThan(20);

    const now = expectOnePerHook(w, again.ready.pid);
    const ids = (a: typeof before) => Object.fromEntries(a.pinned.map((l) => [l.name, l.id]));
    expect(ids(now).handle_sock_ops).toBe(ids(before).handle_sock_ops); // the same link, updated in place
    const oldProgs = new Set(before.pinned.map((l) => l.prog_id));
    expect(linksRunning(oldProgs)).toEqual([]);
    expect(counterTotal(w.pinDir)).toBeGreaterThanOrEqual(countedBeforeRestart); // kept, not reset

    again.child.kill("SIGTERM");
    expect(await again.exited).toBe(0);
    const gone = attachments(w);
    expect(gone.cgroup).toEqual([]);
    expect(gone.tc).toEqual([]);
    expect(existsSync(join(w.pinDir, "links"))).toBe(false);
  },
  T,
);
