// The daemon as people run it (`indigo-agent run --agent-id …`, a child process) against the real kernel and
// the dev broker, on topics of this test's own (INDIGO_TOPIC_PREFIX): real HTTP traffic between two network
// namespaces (testing/py/dyetraffic.py) inside a fresh child cgroup, rules and sampling from the control
// topic. Root + BPF + broker only: skips with a reason elsewhere, except under CI=true where it must run.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { brokerReachable, brokersFromEnv, createKafka } from "@indigo/bus";
import {
  AgentControlSchema,
  AgentMode,
  AgentStatusSchema,
  create,
  type DyeEvent,
  DyeEventBatchSchema,
  DyeEventKind,
  EventClass,
  fromBinary,
  toBinary,
} from "@indigo/proto";
import { bpfObjectPath } from "../bpf-objects.ts";
import { ensureBpffs } from "../bpffs.ts";
import { ChildCgroup, findCgroup2Root } from "../cgroup.ts";
import { cleanUp } from "../testing/cleanup.ts";
import {
  type Collected,
  collectTopic,
  createTestTopics,
  type DaemonProcess,
  deleteTestTopics,
  metricValue,
  startDaemon,
  type TestTopics,
} from "../testing/daemon.ts";
import { buildBpf, skipping } from "../testing/kernel-gate.ts";
import { createVethPair, inCgroupAndNetns, type VethPair } from "../testing/netns.ts";
import { waitUntil } from "../testing/poll.ts";

const T = 120_000;
const PY = join(import.meta.dir, "../testing/py/dyetraffic.py");
const CI = process.env.CI === "true";
const BROKERS = brokersFromEnv();
const has = (cmd: string): boolean => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;

const missing = async (): Promise<string | undefined> => {
  if (process.getuid?.() !== 0) return "needs root (CAP_BPF, CAP_NET_ADMIN, cgroup and netns writes)";
  if (!existsSync("/sys/kernel/btf/vmlinux")) return "kernel has no BTF (/sys/kernel/btf/vmlinux)";
  if (findCgroup2Root() === undefined) return "no cgroup v2 mount in /proc/mounts";
  for (const tool of ["make", "clang", "bpftool", "python3", "ip"])
    if (!has(tool)) return `${tool} is not installed`;
  if (!(await brokerReachable(BROKERS)))
    return `no Kafka broker at ${BROKERS.join(",")} (./dev up starts one)`;
  return undefined;
};
const skipReason = await missing();
if (skipReason && !CI) console.warn(`skipping agent daemon integration tests: ${skipReason}`);
const it = skipReason && !CI ? test.skip : test;

const AGENT = `agent-it-${process.pid}`;
const PATTERN = "^t-[0-9a-f]{8}";
const COHORT = "t-0123abcd";
const OTHER = "t-0123abcz";

interface World {
  topics: TestTopics;
  net: VethPair;
  cgroup: ChildCgroup;
  pinDir: string;
  spoolDir: string;
  children: ChildProcess[];
  daemon?: DaemonProcess;
  dye?: Collected;
  status?: Collected;
}
let w: World | undefined;

const control = (
  generation: bigint,
  dye: number,
  release: string,
  sampling: { class: EventClass; perMillion: number }[] = [],
) =>
  toBinary(
    AgentControlSchema,
    create(AgentControlSchema, {
      target: AGENT,
      generation,
      issuedUnixNano: BigInt(Date.now()) * 1_000_000n,
      rules: [{ dye, releaseId: release, cohort: { match: { case: "traceIdPattern", value: PATTERN } } }],
      sampling,
    }),
  );

const publishControl = async (topic: string, key: string, value: Uint8Array): Promise<void> => {
  const p = createKafka("indigo-test-control", { brokers: BROKERS, quiet: true }).producer();
  await p.connect();
  await p.send({ topic, acks: -1, messages: [{ key, value: Buffer.from(value) }] });
  await p.disconnect();
};

const must = <V>(v: V | undefined): V => {
  if (v === undefined) throw new Error("the test world was not set up");
  return v;
};

const events = (c: Collected): DyeEvent[] =>
  c.messages.flatMap((m) => fromBinary(DyeEventBatchSchema, m.value).events);

const runClient = (world: World, ids: string[]): void => {
  const [cmd, ...args] = inCgroupAndNetns(world.cgroup.path, world.net.nsA, [
    "python3",
    PY,
    "client",
    `${world.net.ipB}:8080`,
    ids.join(","),
  ]);
  const run = spawnSync(cmd ?? "sh", args, { encoding: "utf8", timeout: 20_000 });
  if (run.status !== 0) throw new Error(`client failed: ${run.stderr}`);
};

const waitFor = (what: string, ok: () => boolean | Promise<boolean>, ms = 15_000) =>
  waitUntil(what, ok, { ms });

beforeAll(async () => {
  if (skipping("agent daemon integration tests", skipReason)) return;
  buildBpf(bpfObjectPath("indigo"));
  const tag = `${process.pid}-${Date.now().toString(36)}`;
  const topics = await createTestTopics(BROKERS, `test-${tag}.`);
  const net = createVethPair();
  w = {
    topics,
    net,
    cgroup: ChildCgroup.create(findCgroup2Root() ?? "", `indigo-test-daemon-${tag}`),
    pinDir: join(ensureBpffs(), `indigo-test-daemon-${tag}`),
    spoolDir: mkdtempSync(join(tmpdir(), "indigo-daemon-spool-")),
    children: [],
  };
  await publishControl(topics.control, AGENT, control(1n, 7, "rel-7"));
  w.dye = await collectTopic(BROKERS, topics.dye);
  w.status = await collectTopic(BROKERS, topics.agent);
  w.daemon = await startDaemon(
    [
      "--agent-id",
      AGENT,
      "--node",
      "node-it",
      "--cgroup",
      w.cgroup.path,
      "--iface",
      net.ifA,
      "--netns",
      net.nsA,
      "--pin-dir",
      w.pinDir,
      "--spool-dir",
      w.spoolDir,
      "--status-interval",
      "1",
    ],
    { INDIGO_TOPIC_PREFIX: topics.prefix, INDIGO_KAFKA_BROKERS: BROKERS.join(",") },
  );
  const [cmd, ...args] = inCgroupAndNetns(w.cgroup.path, net.nsB, ["python3", PY, "server", "8080"]);
  const server = spawn(cmd ?? "sh", args, { stdio: ["ignore", "pipe", "inherit"] });
  w.children.push(server);
  await new Promise<void>((resolve, reject) => {
    server.stdout?.once("data", () => resolve());
    server.once("exit", (code) => reject(new Error(`server exited ${code}`)));
  });
}, T);

afterAll(async () => {
  const world = w;
  w = undefined;
  if (!world) return;
  for (const c of world.children) c.kill("SIGKILL");
  await cleanUp([
    async () => {
      if (world.daemon && world.daemon.child.exitCode === null) await world.daemon.stop();
    },
    () => world.dye?.stop(),
    () => world.status?.stop(),
    () => world.net.destroy(),
    () => world.cgroup.remove(),
    () => rmSync(world.pinDir, { recursive: true, force: true }),
    () => rmSync(world.spoolDir, { recursive: true, force: true }),
    () => deleteTestTopics(BROKERS, world.topics),
  ]);
}, T);

it(
  "events from real traffic arrive in Kafka decoded, keyed by agent, in seq order from 1 without gaps, with the release of their dye",
  async () => {
    const world = w!;
    const daemon = world.daemon!;
    await waitFor(
      "control generation 1 applied",
      async () => metricValue(await daemon.metrics(), "indigo_agent_control_generation") === 1,
    );
    const ids = [COHORT, OTHER, COHORT, COHORT, OTHER, OTHER, COHORT, OTHER];
    runClient(world, ids);
    const atServer = (ev: DyeEvent[]) =>
      ev.filter((e) => e.kind === DyeEventKind.REQUEST && e.sport === 8080 && e.direction === 2);
    const cohort = ids.filter((id) => id === COHORT).length;
    const atClient = (ev: DyeEvent[]) =>
      ev.filter((e) => e.kind === DyeEventKind.REQUEST && e.dport === 8080 && e.direction === 1);
    // every request's egress event (each carries a trace id) and the server's events of the dyed ones
    await waitFor("the client's and the server's request events in Kafka", () => {
      const ev = events(must(world.dye));
      return atClient(ev).length >= ids.length && atServer(ev).length >= cohort;
    });
    const all = events(must(world.dye));
    expect(must(world.dye).messages.every((m) => m.key === AGENT)).toBe(true);
    const batch = fromBinary(DyeEventBatchSchema, must(world.dye).messages[0]!.value);
    expect(batch.agentId).toBe(AGENT);
    expect(batch.node).toBe("node-it");
    // boot time: wall time of monotonic zero, so ts + boot is "now" within a minute
    const wall = Number((batch.bootTimeUnixNano + (batch.events[0]?.tsNs ?? 0n)) / 1_000_000n);
    expect(Math.abs(wall - Date.now())).toBeLessThan(60_000);
    // one partition per agent (keyed): arrival order is production order; seqs 1..N, no gap, no repeat
    expect(all.map((e) => Number(e.seq))).toEqual(Array.from({ length: all.length }, (_, i) => i + 1));
    // the client's judgement of each request: dye 7 from the rule of rel-7, or nothing
    const egress = atClient(all);
    expect(egress.map((e) => [e.traceId, e.dye, e.releaseId])).toEqual(
      ids.map((id) => (id === COHORT ? [COHORT, 7, "rel-7"] : [OTHER, 0, ""])),
    );
    expect(egress[0]?.saddr.length).toBe(4);
    expect(egress[0]?.comm).toBe("python3");
    // the server reports the requests that arrived dyed; the undyed ones (and every undyed response) no
    // consumer uses are only counted (the daemon runs without --report-undyed)
    expect(atServer(all).map((e) => e.dye)).toEqual(Array.from({ length: cohort }, () => 7));
    expect(all.filter((e) => e.dye === 0 && (e.direction === 2 || e.kind === DyeEventKind.RESPONSE))).toEqual(
      [],
    );
    expect(
      metricValue(await daemon.metrics(), 'indigo_agent_kernel_counter_total{name="undyed_skipped"}'),
    ).toBeGreaterThanOrEqual(3 * (ids.length - cohort));
  },
  T,
);

it(
  "AgentStatus goes to indigo.agent.v1 with mode, kernel, programs, counters and the applied generation; /healthz and /metrics answer",
  async () => {
    const world = w!;
    const daemon = world.daemon!;
    await waitFor("an AgentStatus after traffic", () =>
      must(world.status).messages.some((m) => fromBinary(AgentStatusSchema, m.value).lastSeq > 0n),
    );
    const last = fromBinary(AgentStatusSchema, must(world.status).messages.at(-1)!.value);
    expect(must(world.status).messages.at(-1)?.key).toBe(AGENT);
    expect(last.agentId).toBe(AGENT);
    expect(last.mode).toBe(AgentMode.FULL);
    expect(last.kernelVersion).toBe(spawnSync("uname", ["-r"], { encoding: "utf8" }).stdout.trim());
    expect(last.appliedControlGeneration).toBe(1n);
    expect(last.programs.map((p) => p.name)).toContain("handle_sock_ops");
    expect(last.programs.every((p) => p.tag.length === 16 && p.id > 0)).toBe(true);
    expect(last.counters.events_emitted).toBeGreaterThan(0n);
    expect(last.ringbufReserveFailures).toBe(0n);
    expect(last.sampling.map((s) => [s.class, s.perMillion])).toEqual([
      [EventClass.REQUEST, 1_000_000],
      [EventClass.RESPONSE, 1_000_000],
      [EventClass.CONNECTION, 1_000_000],
    ]);

    const h = await fetch(`http://127.0.0.1:${daemon.port}/healthz`);
    expect(h.status).toBe(200);
    expect(await h.json()).toMatchObject({ ok: true, mode: "full", agent_id: AGENT, kafka_connected: true });
    const text = await daemon.metrics();
    expect(metricValue(text, "indigo_agent_kafka_connected")).toBe(1);
    expect(metricValue(text, "indigo_agent_events_produced_total")).toBeGreaterThan(0);
    expect(metricValue(text, 'indigo_agent_kernel_counter_total{name="events_emitted"}')).toBeGreaterThan(0);
    expect(text).toContain(`indigo_agent_info{agent_id="${AGENT}",node="node-it",mode="full"} 1`);
    expect((await fetch(`http://127.0.0.1:${daemon.port}/nope`)).status).toBe(404);
  },
  T,
);

it(
  "a control message changes the rule and a sampling rate: the next requests show both, applied within a second",
  async () => {
    const world = w!;
    const daemon = world.daemon!;
    const before = events(must(world.dye)).length;
    const sent = Date.now();
    await publishControl(
      world.topics.control,
      AGENT,
      control(2n, 9, "rel-9", [{ class: EventClass.RESPONSE, perMillion: 0 }]),
    );
    await waitFor(
      "control generation 2 applied",
      async () => metricValue(await daemon.metrics(), "indigo_agent_control_generation") === 2,
    );
    expect(Date.now() - sent).toBeLessThan(1500);
    const ids = [COHORT, OTHER, COHORT];
    runClient(world, ids);
    await waitFor("the new requests in Kafka", () =>
      events(must(world.dye))
        .slice(before)
        .some((e) => e.kind === DyeEventKind.REQUEST && e.dport === 8080 && e.traceId === OTHER),
    );
    await Bun.sleep(300);
    const next = events(must(world.dye)).slice(before);
    const egress = next.filter(
      (e) => e.kind === DyeEventKind.REQUEST && e.dport === 8080 && e.direction === 1,
    );
    expect(egress.map((e) => [e.traceId, e.dye, e.releaseId])).toEqual(
      ids.map((id) => (id === COHORT ? [COHORT, 9, "rel-9"] : [OTHER, 0, ""])),
    );
    // responses sampled out entirely; counted exactly in the kernel
    expect(next.filter((e) => e.kind === DyeEventKind.RESPONSE)).toEqual([]);
    const text = await daemon.metrics();
    expect(
      metricValue(text, 'indigo_agent_kernel_counter_total{name="events_sampled_out"}'),
    ).toBeGreaterThanOrEqual(ids.length);
    expect(metricValue(text, 'indigo_agent_sampling_per_million{class="response"}')).toBe(0);
    // seqs still contiguous across the whole topic
    const all = events(must(world.dye));
    expect(all.map((e) => Number(e.seq))).toEqual(Array.from({ length: all.length }, (_, i) => i + 1));
  },
  T,
);

it(
  "a control message the agent cannot use goes to the DLQ with the reason; the rules in force stay",
  async () => {
    const world = w!;
    const daemon = world.daemon!;
    const dlq = await collectTopic(BROKERS, world.topics.dlq);
    try {
      const bad = toBinary(
        AgentControlSchema,
        create(AgentControlSchema, {
          target: AGENT,
          generation: 3n,
          rules: [
            { dye: 5, releaseId: "rel-5", cohort: { match: { case: "traceIdPattern", value: "^t-(a|b)+" } } },
          ],
        }),
      );
      const garbage = new Uint8Array([0xff, 0xff, 0xff, 0xff]);
      await publishControl(world.topics.control, AGENT, bad);
      await publishControl(world.topics.control, "another-agent", garbage); // not ours: not even decoded
      await publishControl(world.topics.control, "*", garbage);
      await waitFor("two dead letters", () => dlq.messages.length >= 2);
      await Bun.sleep(500);
      expect(dlq.messages.map((m) => m.key)).toEqual([AGENT, "*"]);
      expect(dlq.messages[0]?.value).toEqual(bad);
      const headers = dlq.headers();
      expect(headers[0]?.["indigo-error"]).toContain("not applied");
      expect(headers[0]?.["indigo-topic"]).toBe(world.topics.control);
      expect(headers[0]?.["indigo-agent"]).toBe(AGENT);
      expect(headers[1]?.["indigo-error"]).toContain("undecodable");
      const text = await daemon.metrics();
      expect(metricValue(text, "indigo_agent_control_generation")).toBe(2);
      // the rule of generation 2 still dyes
      const before = events(must(world.dye)).length;
      runClient(world, [COHORT]);
      await waitFor("the cohort request in Kafka", () =>
        events(must(world.dye))
          .slice(before)
          .some((e) => e.kind === DyeEventKind.REQUEST && e.traceId === COHORT && e.dye === 9),
      );
    } finally {
      await dlq.stop();
    }
  },
  T,
);

it(
  "SIGTERM flushes the open batch and detaches; the spool is left empty, and a last status says it stopped",
  async () => {
    const world = w!;
    const daemon = world.daemon!;
    runClient(world, [COHORT]);
    expect(await daemon.stop()).toBe(0);
    const stopped = daemon.log().find((o) => o.stopped === "SIGTERM");
    expect(stopped).toBeDefined();
    const lastSeq = Number(stopped?.lastSeq);
    await waitFor("every handed-out seq in Kafka", () => events(must(world.dye)).length >= lastSeq);
    const all = events(must(world.dye));
    expect(all.map((e) => Number(e.seq))).toEqual(Array.from({ length: lastSeq }, (_, i) => i + 1));
    expect(readdirSync(world.spoolDir).filter((f) => f.endsWith(".spool"))).toEqual([]);
    // its last status says it stopped, with nothing left in the spool; none before it did
    await waitFor("the stopping status", () =>
      must(world.status).messages.some((m) => fromBinary(AgentStatusSchema, m.value).stopped),
    );
    const statuses = must(world.status).messages.map((m) => fromBinary(AgentStatusSchema, m.value));
    expect(statuses.filter((st) => st.stopped)).toHaveLength(1);
    expect(statuses.at(-1)).toMatchObject({ stopped: true, spooledEvents: 0n, lastSeq: BigInt(lastSeq) });
    // detached: no program of ours is left on the cgroup
    const progs = spawnSync("bpftool", ["cgroup", "show", world.cgroup.path], { encoding: "utf8" }).stdout;
    expect(progs).not.toContain("handle_sock_ops");
  },
  T,
);
