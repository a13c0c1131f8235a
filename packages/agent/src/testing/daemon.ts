// Test helpers for the agent daemon: topics of a test's own (INDIGO_TOPIC_PREFIX), the daemon as a real
// child process (`indigo-agent run …`), a collector of a topic's messages, a free loopback port, and a
// second single-node Kafka broker (own ports, own state folder) that a test may stop and restart.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { type Consumer, createKafka } from "@indigo/bus";
import { stopWithGrace } from "./proc.ts";

const REPO = join(import.meta.dir, "../../../..");
const CLI = join(REPO, "packages/agent/src/cli/main.ts");

export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });

export interface TestTopics {
  readonly prefix: string;
  readonly dye: string;
  readonly agent: string;
  readonly control: string;
  readonly dlq: string;
}

/** Creates `<prefix>indigo.{dye,agent,control,dlq}.v1` (control compacted) on `brokers`. */
export const createTestTopics = async (brokers: string[], prefix: string): Promise<TestTopics> => {
  const t = {
    prefix,
    dye: `${prefix}indigo.dye.v1`,
    agent: `${prefix}indigo.agent.v1`,
    control: `${prefix}indigo.control.v1`,
    dlq: `${prefix}indigo.dlq.v1`,
  };
  const admin = createKafka("indigo-test-admin", { brokers, quiet: true }).admin();
  await admin.connect();
  try {
    await admin.createTopics({
      waitForLeaders: true,
      topics: [
        { topic: t.dye, numPartitions: 2, replicationFactor: 1 },
        { topic: t.agent, numPartitions: 1, replicationFactor: 1 },
        {
          topic: t.control,
          numPartitions: 1,
          replicationFactor: 1,
          configEntries: [{ name: "cleanup.policy", value: "compact" }],
        },
        { topic: t.dlq, numPartitions: 1, replicationFactor: 1 },
      ],
    });
  } finally {
    await admin.disconnect();
  }
  return t;
};

export const deleteTestTopics = async (brokers: string[], t: TestTopics): Promise<void> => {
  const admin = createKafka("indigo-test-admin", { brokers, quiet: true }).admin();
  await admin.connect();
  try {
    await admin.deleteTopics({ topics: [t.dye, t.agent, t.control, t.dlq], timeout: 10_000 });
  } finally {
    await admin.disconnect();
  }
};

export interface Collected {
  readonly messages: { key: string; value: Uint8Array; partition: number; offset: string }[];
  /** the headers of each message, in the same order, as strings */
  headers(): Record<string, string>[];
  stop(): Promise<void>;
}

/** Every message of `topic` from the beginning, into an array, until stop(). */
export const collectTopic = async (brokers: string[], topic: string): Promise<Collected> => {
  const kafka = createKafka("indigo-test-collector", { brokers, quiet: true });
  const consumer: Consumer = kafka.consumer({
    groupId: `indigo-test-${process.pid}-${Math.random().toString(16).slice(2)}`,
    maxWaitTimeInMs: 100,
  });
  const messages: Collected["messages"] = [];
  const headers: Record<string, string>[] = [];
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ message, partition }) => {
      messages.push({
        key: message.key?.toString() ?? "",
        value: new Uint8Array(message.value ?? new Uint8Array()),
        partition,
        offset: message.offset,
      });
      headers.push(
        Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v ?? "")])),
      );
    },
  });
  return { messages, headers: () => headers, stop: () => consumer.disconnect() };
};

export interface DaemonProcess {
  readonly child: ChildProcess;
  readonly port: number;
  /** stderr so far, one JSON object per line */
  readonly log: () => Record<string, unknown>[];
  waitLog(pred: (o: Record<string, unknown>) => boolean, timeoutMs: number): Promise<Record<string, unknown>>;
  metrics(): Promise<string>;
  /** SIGTERM, then the exit code */
  stop(): Promise<number | null>;
}

/**
 * `wrap` runs the daemon through another command that execs its arguments, e.g.
 * `["capsh", "--drop=cap_bpf", "--", "-c", 'exec "$0" "$@"']`.
 */
export const startDaemon = async (
  args: string[],
  env: Record<string, string>,
  timeoutMs = 30_000,
  wrap: string[] = [],
): Promise<DaemonProcess> => {
  const port = Number(env.INDIGO_AGENT_PORT ?? (await freePort()));
  const argv = [...wrap, "bun", CLI, "run", ...args];
  const child = spawn(argv[0] as string, argv.slice(1), {
    env: { ...process.env, ...env, INDIGO_AGENT_PORT: String(port) },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let text = "";
  child.stderr?.on("data", (d: Buffer) => {
    text += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const log = () =>
    text
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  const waitLog = async (pred: (o: Record<string, unknown>) => boolean, ms: number) => {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      const hit = log().find(pred);
      if (hit) return hit;
      if (child.exitCode !== null) throw new Error(`agent exited ${child.exitCode}: ${text}`);
      await Bun.sleep(50);
    }
    throw new Error(`agent did not log what was awaited within ${ms} ms: ${text}`);
  };
  await waitLog((o) => o.ready === true, timeoutMs);
  return {
    child,
    port,
    log,
    waitLog,
    metrics: async () => (await fetch(`http://127.0.0.1:${port}/metrics`)).text(),
    stop: async () => {
      if (child.exitCode === null && (await stopWithGrace(child, exited, 30_000)))
        throw new Error(`agent did not exit within 30 s of SIGTERM: ${text}`);
      return exited;
    },
  };
};

/** A metric's value in Prometheus text (the first sample whose name and labels start with `name`). */
export const metricValue = (text: string, name: string): number | undefined => {
  const line = text.split("\n").find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : undefined;
};

const KAFKA_LIB = (): string | undefined => {
  const base = join(REPO, ".cache/kafka");
  if (!existsSync(base)) return undefined;
  const version = readdirSync(base).find((v) => existsSync(join(base, v, "lib")));
  return version ? join(base, version, "lib") : undefined;
};

export interface TestBroker {
  readonly brokers: string[];
  start(): Promise<void>;
  /** SIGTERM and wait for the JVM to exit */
  stop(): Promise<void>;
  destroy(): Promise<void>;
}

/**
 * A second single-node KRaft broker on its own ports and state folder (infra/dev/kafka.sh's settings), for
 * tests that must take a broker away; the shared dev broker is never touched. Undefined when the Kafka jars
 * are not in .cache/kafka (./dev up puts them there).
 */
export const testBroker = (dir: string, port: number, controllerPort: number): TestBroker | undefined => {
  const lib = KAFKA_LIB();
  if (!lib) return undefined;
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, "server.properties"),
    [
      "process.roles=broker,controller",
      "node.id=1",
      `controller.quorum.bootstrap.servers=127.0.0.1:${controllerPort}`,
      `listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
      `advertised.listeners=PLAINTEXT://127.0.0.1:${port}`,
      "controller.listener.names=CONTROLLER",
      "inter.broker.listener.name=PLAINTEXT",
      "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
      `log.dirs=${dir}/data`,
      "num.partitions=1",
      "auto.create.topics.enable=false",
      "offsets.topic.replication.factor=1",
      "offsets.topic.num.partitions=1",
      "transaction.state.log.replication.factor=1",
      "transaction.state.log.min.isr=1",
      "share.coordinator.state.topic.replication.factor=1",
      "share.coordinator.state.topic.min.isr=1",
      "min.insync.replicas=1",
      "default.replication.factor=1",
      "group.initial.rebalance.delay.ms=0",
      "",
    ].join("\n"),
  );
  writeFileSync(join(dir, "log4j2.properties"), "rootLogger.level=WARN\n");
  const java = [
    "java",
    "-Xms128m",
    "-Xmx384m",
    "-XX:+UseSerialGC",
    `-Dlog4j2.configurationFile=${dir}/log4j2.properties`,
    "-cp",
    `${lib}/*`,
  ];
  const format = spawnSync(
    java[0] ?? "java",
    [
      ...java.slice(1),
      "kafka.tools.StorageTool",
      "format",
      "--standalone",
      "-t",
      "indigo-test-cluster-0001",
      "-c",
      join(dir, "server.properties"),
    ],
    { encoding: "utf8" },
  );
  if (format.status !== 0) throw new Error(`failed to format the test broker's storage: ${format.stderr}`);
  let jvm: ChildProcess | undefined;
  const brokers = [`127.0.0.1:${port}`];
  const stop = async () => {
    const p = jvm;
    jvm = undefined;
    if (!p || p.exitCode !== null) return;
    await stopWithGrace(p, new Promise((r) => p.once("exit", r)), 20_000);
  };
  return {
    brokers,
    start: async () => {
      jvm = spawn(java[0] ?? "java", [...java.slice(1), "kafka.Kafka", join(dir, "server.properties")], {
        stdio: ["ignore", "ignore", "ignore"],
      });
      const admin = createKafka("indigo-test-broker-probe", { brokers, quiet: true }).admin();
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline) {
        try {
          await admin.connect();
          await admin.listTopics();
          await admin.disconnect();
          return;
        } catch {
          if (jvm?.exitCode !== null) throw new Error("the test broker exited during start");
          await Bun.sleep(300);
        }
      }
      throw new Error("the test broker did not answer within 60 s");
    },
    stop,
    destroy: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
};
