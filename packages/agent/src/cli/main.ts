// indigo-agent command line: `run --agent-id ID …` is the daemon (daemon/main.ts: Kafka, spool, control,
// /metrics); `run --standalone`, the engine without Kafka, for people and tests:
//
//   run --standalone --rules FILE.json [--cgroup PATH] [--iface IF]... [--pin-dir DIR] [--netns NAME]
//       [--object PATH]   another build of the engine's programs (the benchmarks' floor: bpf/build/floor.bpf.o)
//       [--skip-undyed]   report only what the daemon reports: undyed ingress events, responses and
//                         requests without a trace id are counted (undyed_skipped), not printed
//
// Loads bpf/build/indigo.bpf.o, pins its maps under /sys/fs/bpf/indigo (or --pin-dir) and reuses them when
// already pinned, attaches sock_ops + connect4/6 to --cgroup (default: the cgroup-v2 root), the tp_btf
// programs, and tc egress on every --iface (looked up in --netns when given), writes the rules, then prints
// one JSON object per event on stdout (64-bit ids as decimal strings). stderr gets one JSON line
// {"ready":true,...} once attached, {"rules":...} after each (re)load of the rules file (SIGHUP re-reads it,
// no reload of the programs), and {"counters":{...}} after a clean detach on SIGTERM/SIGINT.

import { readFileSync } from "node:fs";
import { Engine } from "../engine/engine.ts";
import { DyeEventView } from "../events/decode-dye-event.ts";
import { dyeEventJsonLine } from "../events/dye-event-json.ts";
import { LineBuffer } from "./line-buffer.ts";

interface Args {
  rules: string;
  cgroup?: string;
  ifaces: string[];
  pinDir?: string;
  netns?: string;
  object?: string;
  /** --skip-undyed: report only what the daemon reports (undyed events no consumer uses are only counted) */
  skipUndyed?: boolean;
}

const usage = `usage: indigo-agent run --standalone --rules FILE.json [--cgroup PATH] [--iface IF]... [--pin-dir DIR] [--netns NAME] [--object PATH] [--skip-undyed]`;

const fail = (message: string): never => {
  process.stderr.write(`indigo-agent: ${message}\n`);
  process.exit(2);
};

export const parseArgs = (argv: string[]): Args => {
  const [cmd, ...rest] = argv;
  if (cmd !== "run") fail(`unknown command ${cmd ?? "(none)"}\n${usage}`);
  const args: Partial<Args> & { ifaces: string[] } = { ifaces: [] };
  let standalone = false;
  for (let i = 0; i < rest.length; i++) {
    const flag = rest[i];
    const value = (): string => rest[++i] ?? fail(`${flag} needs a value\n${usage}`);
    if (flag === "--standalone") standalone = true;
    else if (flag === "--rules") args.rules = value();
    else if (flag === "--cgroup") args.cgroup = value();
    else if (flag === "--iface") args.ifaces.push(value());
    else if (flag === "--pin-dir") args.pinDir = value();
    else if (flag === "--netns") args.netns = value();
    else if (flag === "--object") args.object = value();
    else if (flag === "--skip-undyed") args.skipUndyed = true;
    else fail(`unknown option ${flag}\n${usage}`);
  }
  if (!standalone)
    fail(`parseArgs is for --standalone; the daemon's flags are parsed by daemon/args.ts\n${usage}`);
  if (!args.rules) fail(`--rules FILE.json is required\n${usage}`);
  return args as Args;
};

type Compile = (rules: unknown[]) => Uint8Array[];

// rules/compile.ts belongs to the payload path; loaded lazily so the engine runs without it.
const loadCompiler = async (): Promise<Compile | undefined> => {
  const path = new URL("../rules/compile.ts", import.meta.url).pathname;
  try {
    const mod = (await import(path)) as { compileRules?: Compile };
    return mod.compileRules;
  } catch {
    return undefined;
  }
};

/** The rules of `file`: how many, and their encoded slots (compileRules always fills every slot). */
const readRules = async (file: string): Promise<{ count: number; slots: Uint8Array[] }> => {
  const rules: unknown = JSON.parse(readFileSync(file, "utf8"));
  if (!Array.isArray(rules)) throw new Error(`${file}: the rules file must be a JSON array`);
  if (rules.length === 0) return { count: 0, slots: [] };
  const compile = await loadCompiler();
  if (!compile) throw new Error("the rule compiler (packages/agent/src/rules/compile.ts) is not available");
  return { count: rules.length, slots: compile(rules) };
};

const line = (o: unknown): string =>
  `${JSON.stringify(o, (_, v) => (typeof v === "bigint" ? v.toString() : v))}\n`;

const main = async (): Promise<void> => {
  const argv = process.argv.slice(2);
  if (argv[0] === "run" && !argv.includes("--standalone")) {
    const { runDaemon } = await import("../daemon/main.ts");
    return runDaemon(argv.slice(1));
  }
  const args = parseArgs(argv);
  const initial = await readRules(args.rules).catch((e: Error) => fail(e.message));
  let engine: Engine;
  try {
    engine = Engine.start({
      objectPath: args.object,
      cgroupPath: args.cgroup,
      interfaces: args.ifaces,
      pinDir: args.pinDir,
      netnsPath: args.netns ? `/run/netns/${args.netns}` : undefined,
      config: { reportUndyed: !args.skipUndyed },
    });
  } catch (e) {
    return fail((e as Error).message);
  }
  const applied = engine.writeRules(initial.slots);
  process.stderr.write(
    line({
      ready: true,
      pid: process.pid,
      cgroup: engine.cgroupPath,
      pinDir: engine.pinDir,
      reusedMaps: engine.reusedMaps,
      adoption: engine.adoption,
      ifaces: args.ifaces,
      rules: { count: initial.count, set: applied },
    }),
  );
  const events = new LineBuffer(process.stdout);
  const drained = engine.drain(
    (e) => {
      const bytes = DyeEventView.bytesOf(e);
      events.push(bytes ? dyeEventJsonLine(bytes) : line(e));
    },
    (err) => process.stderr.write(line({ error: `undecodable event: ${String(err)}` })),
  );

  process.on("SIGHUP", () => {
    readRules(args.rules)
      .then(({ count, slots }) =>
        process.stderr.write(line({ rules: { count, set: engine.writeRules(slots) } })),
      )
      .catch((e: Error) => process.stderr.write(line({ error: `rules not changed: ${e.message}` })));
  });
  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    const counters = engine.counters();
    try {
      await engine.stop();
      await drained;
      events.flush();
    } catch (e) {
      process.stderr.write(line({ error: (e as Error).message }));
      process.exitCode = 1;
    }
    process.stderr.write(line({ stopped: signal, counters }));
    process.exit();
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
};

if (import.meta.main && process.argv[2] === "doctor")
  process.exit((await import("../doctor/cli.ts")).doctorMain(process.argv.slice(3)));
if (import.meta.main && process.argv[2] === "upgrade")
  (await import("../engine/upgrade.ts")).enterUpgradeMode(process.argv);
if (import.meta.main) await main();
