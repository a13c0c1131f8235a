// The daemon in degraded mode, for real: `indigo-agent run` without the BPF capabilities (capsh drops
// cap_bpf, cap_sys_admin and cap_perfmon; cap_net_admin stays, nftables needs it) against the dev broker on
// topics of this test's own (INDIGO_TOPIC_PREFIX). It stays up, /healthz answers 200 with mode "degraded" and
// the reason, /metrics has indigo_agent_mode{mode="degraded"} 1 and indigo_agent_degraded_info{reason=…} 1,
// the AgentStatus it publishes says AGENT_MODE_DEGRADED with the reason, its --l4-rules port rule marks real
// loopback traffic, and it ships no dye event at all. It runs in the host network namespace (the broker is on
// the host's loopback): its rule names a port nothing else uses. Root + broker only: skips with a reason
// elsewhere, except under CI=true where it must run.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { brokerReachable, brokersFromEnv } from "@indigo/bus";
import { AgentMode, AgentStatusSchema, fromBinary } from "@indigo/proto";
import {
  type Collected,
  collectTopic,
  createTestTopics,
  type DaemonProcess,
  deleteTestTopics,
  freePort,
  metricValue,
  startDaemon,
  type TestTopics,
} from "../testing/daemon.ts";
import { pollFor } from "../testing/poll.ts";

const T = 120_000;
const CI = process.env.CI === "true";
const BROKERS = brokersFromEnv();
const has = (cmd: string): boolean => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;
const REASON =
  "no BPF capability (CAP_BPF and CAP_SYS_ADMIN missing): failed to load BPF object indigo: Operation not permitted";

const missing = async (): Promise<string | undefined> => {
  if (process.getuid?.() !== 0) return "needs root (capsh, nftables)";
  for (const tool of ["capsh", "nft", "python3"]) if (!has(tool)) return `${tool} is not installed`;
  if (!(await brokerReachable(BROKERS)))
    return `no Kafka broker at ${BROKERS.join(",")} (./dev up starts one)`;
  return undefined;
};
const skipReason = await missing();
if (skipReason && !CI) console.warn(`skipping degraded daemon integration test: ${skipReason}`);
const it = skipReason && !CI ? test.skip : test;

const AGENT = `agent-degraded-it-${process.pid}`;
let topics: TestTopics | undefined;
let dir = "";
let daemon: DaemonProcess | undefined;
let status: Collected | undefined;
let dye: Collected | undefined;

beforeAll(async () => {
  if (skipReason) {
    if (CI) throw new Error(`degraded daemon integration test cannot run under CI: ${skipReason}`);
    return;
  }
  dir = mkdtempSync(join(tmpdir(), "indigo-degraded-daemon-"));
  topics = await createTestTopics(BROKERS, `test-degraded-${process.pid}-${Date.now().toString(36)}.`);
  status = await collectTopic(BROKERS, topics.agent);
  dye = await collectTopic(BROKERS, topics.dye);
}, T);

const PIN_DIR = `/sys/fs/bpf/indigo-test-degraded-daemon-${process.pid}`;

afterAll(async () => {
  await daemon?.stop().catch(() => {});
  await status?.stop().catch(() => {});
  await dye?.stop().catch(() => {});
  if (topics) await deleteTestTopics(BROKERS, topics).catch(() => {});
  if (dir) rmSync(dir, { recursive: true, force: true });
  // The pin folder the daemon was given (empty: in degraded mode nothing gets pinned).
  rmSync(PIN_DIR, { recursive: true, force: true });
}, T);

const waitFor = <X>(what: string, probe: () => Promise<X | undefined> | X | undefined, ms = 20_000) =>
  pollFor(what, probe, { ms, everyMs: 100, detail: () => JSON.stringify(daemon?.log()) });

it(
  "without CAP_BPF/CAP_SYS_ADMIN the daemon stays up degraded and says why in /healthz, /metrics and AgentStatus",
  async () => {
    if (!topics || !status || !dye) throw new Error("not set up");
    const port = await freePort();
    const rulesFile = join(dir, "l4.json");
    writeFileSync(rulesFile, JSON.stringify([{ dye: 7, dport: port }]));
    daemon = await startDaemon(
      [
        "--agent-id",
        AGENT,
        "--l4-rules",
        rulesFile,
        "--pin-dir",
        PIN_DIR,
        "--spool-dir",
        join(dir, "spool"),
        "--status-interval",
        "1",
      ],
      { INDIGO_TOPIC_PREFIX: topics.prefix },
      30_000,
      ["capsh", "--drop=cap_bpf,cap_sys_admin,cap_perfmon", "--", "-c", 'exec "$0" "$@"'],
    );
    const ready = daemon.log().find((l) => l.ready === true) ?? {};
    expect(ready.mode).toBe("degraded");

    // 200 once the producer has connected (503 "Kafka unreachable" before, as in full mode).
    const healthz = async () => {
      const h = await fetch(`http://127.0.0.1:${daemon?.port}/healthz`);
      return { status: h.status, body: (await h.json()) as Record<string, unknown> };
    };
    const { body } = await waitFor("/healthz 200", async () => {
      const h = await healthz();
      return h.status === 200 ? h : undefined;
    });
    expect(body).toMatchObject({ ok: true, mode: "degraded", reason: REASON, cause: "no-capability" });

    // Real loopback traffic to the ruled port is marked by netfilter.
    const py = `import socket
s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);s.bind(("127.0.0.1",${port}));s.listen()
c=socket.create_connection(("127.0.0.1",${port}));a,_=s.accept()
for i in range(3):
    c.sendall(b"x");a.recv(1);a.sendall(b"y");c.recv(1)
c.close();a.close()`;
    expect(spawnSync("python3", ["-c", py], { encoding: "utf8" }).status).toBe(0);

    const text = await daemon.metrics();
    expect(metricValue(text, 'indigo_agent_mode{mode="degraded"}')).toBe(1);
    expect(metricValue(text, 'indigo_agent_mode{mode="full"}')).toBe(0);
    expect(text).toContain(`indigo_agent_degraded_info{reason="${REASON}",cause="no-capability",`);
    expect(metricValue(text, "indigo_agent_degraded_info")).toBe(1);
    expect(metricValue(text, "indigo_agent_degraded_packets_marked_total")).toBeGreaterThanOrEqual(5);
    expect(metricValue(text, "indigo_agent_engine_attached")).toBe(0);
    expect(metricValue(text, "indigo_agent_events_received_total")).toBe(0);

    const last = await waitFor("a degraded AgentStatus from Kafka", () => {
      const all = (status?.messages ?? []).map((m) => fromBinary(AgentStatusSchema, m.value));
      return all.find((s) => s.agentId === AGENT && s.mode === AgentMode.DEGRADED);
    });
    expect(last.degradedReason).toBe(REASON);
    expect(last.lastSeq).toBe(0n);
    expect(last.eventRatePerS).toBe(0);

    expect(daemon.child.exitCode).toBeNull();
    expect(await daemon.stop()).toBe(0);
    // Nothing was ever shipped as a dye event (degraded mode claims no coverage), and netfilter is clean.
    expect(dye.messages.length).toBe(0);
    expect(spawnSync("nft", ["list", "tables"], { encoding: "utf8" }).stdout).not.toContain(
      "indigo_degraded",
    );
  },
  T,
);
