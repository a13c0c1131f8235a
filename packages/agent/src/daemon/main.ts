// `indigo-agent run --agent-id ID …`: the daemon in this process until SIGTERM/SIGINT. stderr gets one
// JSON object per line: {"ready":true,"mode":"full"|"degraded",…} once attached (or degraded) and serving, then what the daemon logs (kafka
// connected/unreachable, spool, control applied/errors), and {"stopped":SIGNAL,"counters":{…}} after the
// final flush and clean detach.

import { parseDaemonArgs } from "./args.ts";
import { Daemon } from "./daemon.ts";

const line = (o: unknown): string =>
  `${JSON.stringify(o, (_, v) => (typeof v === "bigint" ? v.toString() : v))}\n`;

export const runDaemon = async (rest: string[]): Promise<void> => {
  const log = (o: Record<string, unknown>) =>
    process.stderr.write(line({ t: new Date().toISOString(), ...o }));
  let daemon: Daemon;
  try {
    const opts = parseDaemonArgs(rest);
    daemon = Daemon.start({ ...opts, log });
  } catch (e) {
    process.stderr.write(`indigo-agent: ${(e as Error).message}\n`);
    process.exit(2);
  }
  log({
    ready: true,
    pid: process.pid,
    agentId: daemon.agentId,
    node: daemon.node,
    mode: daemon.degraded ? "degraded" : "full",
    ...(daemon.degraded ? { degraded: daemon.degraded.status() } : {}),
    cgroup: daemon.engine?.cgroupPath,
    pinDir: daemon.engine?.pinDir,
    reusedMaps: daemon.engine?.reusedMaps,
    adoption: daemon.engine?.adoption,
    httpPort: daemon.httpPort,
    topics: daemon.topics,
    spoolDir: daemon.spool.dir,
    spooledEvents: daemon.spool.events,
    nextSeq: daemon.seq.next,
  });
  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    try {
      const counters = await daemon.stop();
      log({ stopped: signal, counters, spooledEvents: daemon.spool.events, lastSeq: daemon.seq.last });
    } catch (e) {
      log({ error: (e as Error).message });
      process.exitCode = 1;
    }
    process.exit();
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
};
