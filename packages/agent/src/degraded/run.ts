// An agent entry point with the fallback: the engine when it loads, degraded mode when it does not.
//
//   bun packages/agent/src/degraded/run.ts --l4-rules FILE.json [--pin-dir DIR] [--object PATH]
//       [--cgroup PATH] [--backend nftables|iptables]
//
// stderr: {"ready":true,"mode":"ebpf"|"degraded",...,"status":{...}} once started; SIGUSR1 prints
// {"status":{...}}; SIGTERM/SIGINT remove what was installed (netfilter table, or the engine's links) and
// print {"stopped":SIGNAL,"status":{...}}. The standalone engine CLI (cli/main.ts run --standalone) is the
// full eBPF agent; this is the piece the daemon embeds through startOrDegrade().
import { readFileSync } from "node:fs";
import { startOrDegrade } from "./degraded.ts";
import { parseL4Rules } from "./l4-rules.ts";
import type { Backend } from "./netfilter.ts";

const usage =
  "usage: run.ts --l4-rules FILE.json [--pin-dir DIR] [--object PATH] [--cgroup PATH] [--backend nftables|iptables]";

const line = (o: unknown): string => `${JSON.stringify(o)}\n`;
const fail = (m: string): never => {
  process.stderr.write(`indigo-agent: ${m}\n${usage}\n`);
  process.exit(2);
};

const main = (): void => {
  const argv = process.argv.slice(2);
  const opt: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i] as string;
    if (!["--l4-rules", "--pin-dir", "--object", "--cgroup", "--backend"].includes(flag)) {
      fail(`unknown option ${flag}`);
    }
    opt[flag.slice(2)] = argv[++i] ?? fail(`${flag} needs a value`);
  }
  const file = opt["l4-rules"] ?? fail("--l4-rules is required");
  const rules = parseL4Rules(readFileSync(file, "utf8"), file);
  const started = startOrDegrade(
    { pinDir: opt["pin-dir"], objectPath: opt.object, cgroupPath: opt.cgroup },
    rules,
    { backend: opt.backend as Backend | undefined },
  );
  const status = () => (started.mode === "degraded" ? started.handle.status() : { mode: "ebpf" });
  process.stderr.write(line({ ready: true, pid: process.pid, mode: started.mode, status: status() }));
  // Keep the event loop alive: degraded mode has nothing else to wait on.
  const keepAlive = setInterval(() => {}, 1 << 30);
  process.on("SIGUSR1", () => process.stderr.write(line({ status: status() })));
  const stop = async (signal: string) => {
    clearInterval(keepAlive);
    const last = status();
    if (started.mode === "degraded") started.handle.stop();
    else await started.engine.stop();
    process.stderr.write(line({ stopped: signal, status: last }));
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
};

if (import.meta.main) main();
