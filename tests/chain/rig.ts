// The chain's servers: built at test time (go build, javac) into a cache folder keyed by their source, and
// started inside the topology of topology.ts. client (node) → A (go) → B (java) → C (python3).

import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "bun";
import type { Proc } from "../../packages/agent/src/testing/proc.ts";
import { run } from "../../packages/agent/src/testing/run.ts";
import type { ChainNet } from "./topology.ts";

export const SERVERS = join(import.meta.dir, "servers");
export const PORTS = { A: 8081, B: 8082, C: 8083 } as const;

const sourceHash = (...files: string[]): string => {
  const h = createHash("sha256");
  for (const f of files) h.update(readFileSync(join(SERVERS, f)));
  return h.digest("hex").slice(0, 16);
};

export interface Built {
  readonly hopA: string;
  readonly hopBClasses: string;
  /** tc program counting packets per skb->mark (bpf/mark_count.bpf.c). */
  readonly markCounter: string;
}

/** Builds hop A and hop B once per source version (go's own build cache keeps rebuilds fast). */
export const buildServers = (): Built => {
  const dir = join(
    tmpdir(),
    "indigo-chain-build",
    sourceHash("hop_a.go", "HopB.java", "../bpf/mark_count.bpf.c"),
  );
  const hopA = join(dir, "hop_a");
  const classes = join(dir, "classes");
  if (!existsSync(hopA)) {
    mkdirSync(dir, { recursive: true });
    const r = spawnSync(["go", "build", "-o", `${hopA}.tmp`, join(SERVERS, "hop_a.go")], {
      env: { ...process.env, GOFLAGS: "-mod=mod", CGO_ENABLED: "0" },
      stderr: "pipe",
    });
    if (r.exitCode !== 0) throw new Error(`go build hop_a.go: ${r.stderr.toString()}`);
    renameSync(`${hopA}.tmp`, hopA);
  }
  if (!existsSync(join(classes, "HopB.class"))) {
    mkdirSync(classes, { recursive: true });
    run(["javac", "-d", classes, join(SERVERS, "HopB.java")], "javac HopB.java");
  }
  const markCounter = join(dir, "mark_count.bpf.o");
  if (!existsSync(markCounter)) {
    const arch = process.arch === "arm64" ? "aarch64" : "x86_64";
    run(
      [
        "clang",
        "-target",
        "bpf",
        "-O2",
        "-g",
        `-I/usr/include/${arch}-linux-gnu`,
        "-c",
        join(SERVERS, "../bpf/mark_count.bpf.c"),
        "-o",
        markCounter,
      ],
      "clang mark_count.bpf.c",
    );
  }
  return { hopA, hopBClasses: classes, markCounter };
};

export interface Chain {
  readonly a: Proc;
  readonly b: Proc;
  readonly c: Proc;
  readonly client: Proc;
  /** Base URL of A as the client sees it. */
  readonly target: string;
}

const ready = (p: Proc, ms: number) =>
  p.out
    .waitFor((l) => /"ready":\s*true/.test(l), ms, `${p.name} ready`)
    .catch((e: Error) => {
      throw new Error(`${e.message}\nstderr of ${p.name}:\n${p.err.lines.join("\n")}`);
    });

/** Starts C, B, A, each listening before its caller starts; resolves when all are ready. */
export const startHops = async (
  net: ChainNet,
  built: Built,
  opts: { maxSockets: number },
): Promise<Omit<Chain, "client">> => {
  const [l1, l2, l3] = net.topo.links;
  const c = net.spawn("C", "hop C (python3)", [
    "python3",
    "-u",
    join(SERVERS, "hop_c.py"),
    l3.right.addr,
    `${PORTS.C}`,
  ]);
  await ready(c, 15_000);
  const b = net.spawn("B", "hop B (java)", [
    "java",
    "-Xss512k",
    "-Xmx128m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-cp",
    built.hopBClasses,
    "HopB",
    l2.right.addr,
    `${PORTS.B}`,
    `http://${l3.right.addr}:${PORTS.C}`,
  ]);
  await ready(b, 20_000);
  const a = net.spawn("A", "hop A (go)", [
    built.hopA,
    "-listen",
    `${l1.right.addr}:${PORTS.A}`,
    "-upstream",
    `http://${l2.right.addr}:${PORTS.B}`,
    "-max-conns",
    `${opts.maxSockets}`,
  ]);
  await ready(a, 15_000);
  return { a, b, c, target: `http://${l1.right.addr}:${PORTS.A}` };
};

/** Starts C, B, A (each listening before its caller starts), then the client; resolves when all are ready. */
export const startChain = async (
  net: ChainNet,
  built: Built,
  opts: { maxSockets: number },
): Promise<Chain> => {
  const { a, b, c, target } = await startHops(net, built, opts);
  const client = net.spawn(
    "client",
    "client (node)",
    ["node", join(SERVERS, "client.mjs"), target, `${opts.maxSockets}`],
    "pipe",
  );
  await ready(client, 15_000);
  return { a, b, c, client, target };
};

export interface RequestSpec {
  readonly seq: number;
  readonly traceId?: string;
  readonly cohort: boolean;
  readonly fail?: boolean;
}

export interface ClientResult {
  readonly seq: number;
  readonly traceId?: string;
  readonly cohort: boolean;
  readonly status: number;
  readonly localPort?: number;
  readonly error?: string;
  readonly ms: number;
  readonly body?: unknown;
}

let batchNo = 0;

/** Runs one batch through the client and returns its results (bounded by a timeout). */
export const runBatch = async (
  chain: Chain,
  requests: RequestSpec[],
  concurrency: number,
  timeoutMs = 60_000,
): Promise<ClientResult[]> => {
  const batch = ++batchNo;
  const from = chain.client.out.lines.length;
  const hopsFrom = HOP_PROCS.map((h) => chain[h].out.lines.length);
  const stdin = chain.client.proc.stdin;
  if (!stdin || typeof stdin === "number") throw new Error("client has no stdin pipe");
  stdin.write(`${JSON.stringify({ batch, concurrency, requests })}\n`);
  stdin.flush();
  await chain.client.out.waitFor(
    (l) => l === `{"batchDone":${batch}}`,
    timeoutMs,
    `client batch ${batch}`,
    from,
  );
  const seqs = new Set(requests.map((r) => r.seq));
  await hopsLogged(chain, seqs, hopsFrom, Date.now() + HOP_LOG_GRACE_MS);
  return chain.client.out
    .json<ClientResult>()
    .filter((r) => typeof r.seq === "number" && seqs.has(r.seq))
    .sort((x, y) => x.seq - y.seq);
};

const HOP_PROCS = ["a", "b", "c"] as const;
/** How long a hop may print its lines after the client has its answers. */
const HOP_LOG_GRACE_MS = 5_000;

const seqOfLine = (line: string): number | undefined => {
  if (!line.startsWith("{")) return undefined;
  try {
    return seqOfPath((JSON.parse(line) as { path?: string }).path);
  } catch {
    return undefined;
  }
};

/** Waits (until the deadline, never failing) for every hop to have printed a line for each seq. B and C print
 * a request's line after they answer it, so the client can finish before their last lines are read; a test
 * reading hopLogs then would see requests missing. One a hop never logs is left to the test's own checks. */
const hopsLogged = async (
  chain: Chain,
  seqs: Set<number>,
  from: number[],
  deadline: number,
): Promise<void> => {
  for (const [i, h] of HOP_PROCS.entries()) {
    const unseen = new Set(seqs);
    const logged = (line: string): boolean => {
      const seq = seqOfLine(line);
      if (seq !== undefined) unseen.delete(seq);
      return unseen.size === 0;
    };
    const all = await chain[h].out.waitFor(logged, deadline - Date.now(), `hop ${h}'s lines`, from[i]).then(
      () => true,
      () => false,
    );
    if (!all) return;
  }
};

/** `t-` + 8 hex + `-` + 4 hex: the cohort pattern of the chain's rule. */
export const cohortId = (n: number): string =>
  `t-${(0x1000_0000 + n * 7919).toString(16).slice(-8)}-${(0x1000 + n).toString(16).slice(-4)}`;
/** Near misses that must not match: wrong prefix, upper-case hex, a short group, a non-hex character. */
export const nonCohortId = (n: number): string => {
  const hex8 = (0x2000_0000 + n * 104729).toString(16).slice(-8);
  const hex4 = (0x2000 + n).toString(16).slice(-4);
  switch (n % 4) {
    case 0:
      return `u-${hex8}-${hex4}`;
    case 1:
      return `t-${hex8.toUpperCase().replace(/[0-9]/g, "A")}-${hex4}`;
    case 2:
      return `t-${hex8.slice(0, 7)}-${hex4}`;
    default:
      return `t-${hex8.slice(0, 7)}g-${hex4}`;
  }
};

/** Per-hop lines the servers logged (one per request they handled). */
export interface HopLog {
  readonly hop: "A" | "B" | "C";
  readonly path: string;
  readonly traceId?: string | null;
  readonly traceHeader?: string | null;
  readonly headers?: string[];
  readonly inMark?: number;
  readonly outMark?: number;
  readonly mark?: number;
  readonly tid?: number;
  readonly status?: number;
  readonly peer?: string;
  readonly inPeer?: string;
  readonly outLocal?: string;
}

export const hopLogs = (chain: Chain): HopLog[] =>
  [chain.a, chain.b, chain.c].flatMap((p) => p.out.json<HopLog>().filter((r) => typeof r.path === "string"));

export const seqOfPath = (path: string | undefined | null): number | undefined => {
  const m = /^\/r\/(\d+)(?:\/|$|\?)/.exec(path ?? "");
  return m ? Number(m[1]) : undefined;
};
