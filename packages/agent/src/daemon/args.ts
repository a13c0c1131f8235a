// `indigo-agent run` (daemon mode) flags → DaemonOptions.
import { readFileSync } from "node:fs";
import { brokersFromEnv } from "@indigo/bus";
import { type L4Rule, parseL4Rules } from "../degraded/l4-rules.ts";
import type { DaemonOptions } from "./daemon.ts";
import { DEFAULT_AGENT_PORT } from "./http.ts";
import type { Compression } from "./shipper.ts";
import { topicsFromEnv } from "./topics.ts";

export const daemonUsage = `usage: indigo-agent run --agent-id ID [--node NAME] [--cgroup PATH] [--iface IF]... [--netns NAME]
       [--pin-dir DIR] [--object PATH] [--spool-dir DIR] [--spool-max-bytes N] [--status-interval SECONDS]
       [--compression gzip|zstd|none] [--batch-events N] [--batch-ms MS] [--l4-rules FILE.json] [--report-undyed]
--l4-rules: [{dye, dport?, daddr?}] marked through netfilter if eBPF cannot load (degraded mode)
env: INDIGO_KAFKA_BROKERS (or INDIGO_KAFKA_PORT), INDIGO_AGENT_PORT (7401), INDIGO_TOPIC_PREFIX`;

export const parseDaemonArgs = (
  rest: readonly string[],
  env: Record<string, string | undefined> = process.env,
): DaemonOptions => {
  const bad = (m: string): never => {
    throw new Error(`${m}\n${daemonUsage}`);
  };
  let agentId: string | undefined;
  let node: string | undefined;
  const ifaces: string[] = [];
  const engine: { cgroupPath?: string; pinDir?: string; netnsPath?: string; objectPath?: string } = {};
  // The daemon reports only what consumers of indigo.dye.v1 use (docs/event-log.md); --report-undyed: all.
  let reportUndyed = false;
  let spoolDir: string | undefined;
  let spoolMaxBytes: number | undefined;
  let statusIntervalMs: number | undefined;
  let compression: Compression | undefined;
  let batchMaxEvents: number | undefined;
  let batchMaxDelayMs: number | undefined;
  let l4Rules: L4Rule[] | undefined;
  const num = (flag: string, v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) bad(`${flag} needs a positive number, got "${v}"`);
    return n;
  };
  for (let i = 0; i < rest.length; i++) {
    const flag = rest[i] ?? "";
    const value = (): string => rest[++i] ?? bad(`${flag} needs a value`);
    if (flag === "--agent-id") agentId = value();
    else if (flag === "--node") node = value();
    else if (flag === "--cgroup") engine.cgroupPath = value();
    else if (flag === "--iface") ifaces.push(value());
    else if (flag === "--netns") engine.netnsPath = `/run/netns/${value()}`;
    else if (flag === "--pin-dir") engine.pinDir = value();
    else if (flag === "--object") engine.objectPath = value();
    else if (flag === "--spool-dir") spoolDir = value();
    else if (flag === "--spool-max-bytes") spoolMaxBytes = num(flag, value());
    else if (flag === "--status-interval") statusIntervalMs = num(flag, value()) * 1000;
    else if (flag === "--batch-events") batchMaxEvents = num(flag, value());
    else if (flag === "--batch-ms") batchMaxDelayMs = num(flag, value());
    else if (flag === "--report-undyed") reportUndyed = true;
    else if (flag === "--l4-rules") {
      const file = value();
      let text = "";
      try {
        text = readFileSync(file, "utf8");
      } catch (e) {
        bad(`--l4-rules: cannot read ${file}: ${(e as Error).message}`);
      }
      l4Rules = parseL4Rules(text, file);
    } else if (flag === "--compression") {
      const c = value();
      if (c !== "gzip" && c !== "zstd" && c !== "none")
        bad(`--compression is gzip, zstd or none, got "${c}"`);
      compression = c as Compression;
    } else bad(`unknown option ${flag}`);
  }
  if (!agentId) return bad("--agent-id ID is required");
  const port = Number(env.INDIGO_AGENT_PORT ?? DEFAULT_AGENT_PORT);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    bad(`INDIGO_AGENT_PORT is not a port: ${env.INDIGO_AGENT_PORT}`);
  return {
    agentId,
    node,
    engine: { ...engine, interfaces: ifaces, config: { reportUndyed } },
    l4Rules,
    brokers: brokersFromEnv(env),
    topics: topicsFromEnv(env),
    spoolDir,
    spoolMaxBytes,
    statusIntervalMs,
    httpPort: port,
    compression,
    batchMaxEvents,
    batchMaxDelayMs,
  };
};
