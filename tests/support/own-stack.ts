// A second local stack for tests that run `./dev` themselves: its own state folder and its own ports, so the
// stack the other tests use is not disturbed (and the port overrides are exercised).
import { existsSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dir, "../..");

export interface DevResult {
  readonly code: number;
  readonly out: string;
  readonly err: string;
  /** stdout and stderr together */
  readonly output: string;
}

export interface OwnStack {
  readonly stateDir: string;
  readonly ports: Readonly<Record<string, string>>;
  readonly dev: (...args: string[]) => Promise<DevResult>;
  /** ./dev killed after `ms`, its output then followed by the end of each service log */
  readonly devWithin: (ms: number, ...args: string[]) => Promise<DevResult>;
}

/** The first port the kernel hands out to outgoing connections: a listener above it can find its port taken. */
const ephemeralStart = (): number => {
  const range = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/);
  return Number(range[0]) || 32768;
};

/** Ports base..base+4 (API, Kafka, Kafka controller, Postgres, agent) somewhere in [portFrom, portTo), which must
 * lie below the ephemeral range. */
export function ownStack(label: string, portFrom: number, portTo: number): OwnStack {
  if (portTo > ephemeralStart())
    throw new Error(`ports up to ${portTo} reach into the ephemeral range (from ${ephemeralStart()})`);
  const stateDir = mkdtempSync(join(tmpdir(), `indigo-${label}-`));
  const base = portFrom + Math.floor(Math.random() * Math.floor((portTo - portFrom - 5) / 5)) * 5;
  const ports = {
    INDIGO_API_PORT: String(base),
    INDIGO_KAFKA_PORT: String(base + 1),
    INDIGO_KAFKA_CONTROLLER_PORT: String(base + 2),
    INDIGO_PG_PORT: String(base + 3),
    INDIGO_AGENT_PORT: String(base + 4),
  };
  const env = (): Record<string, string> => {
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) {
      // Derived settings of the outer stack would point this one at the wrong servers.
      if (v !== undefined && k !== "INDIGO_KAFKA_BROKERS" && k !== "INDIGO_DATABASE_URL") out[k] = v;
    }
    return { ...out, ...ports, INDIGO_STATE_DIR: stateDir };
  };
  const devWithin = async (ms: number, ...args: string[]): Promise<DevResult> => {
    const proc = Bun.spawn([join(root, "dev"), ...args], {
      cwd: root,
      env: env(),
      stdout: "pipe",
      stderr: "pipe",
    });
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      proc.kill("SIGKILL");
    }, ms);
    const [out, err, code] = await Promise.all([
      new Response(proc.stdout).text(),
      new Response(proc.stderr).text(),
      proc.exited,
    ]).finally(() => clearTimeout(timer));
    const late = killed
      ? `\n./dev ${args.join(" ")} killed after ${ms} ms\n${serviceLogTails(stateDir)}`
      : "";
    return { code, out, err: err + late, output: out + err + late };
  };
  const dev = (...args: string[]) => devWithin(600_000, ...args);
  return { stateDir, ports, dev, devWithin };
}

/** The last lines of every service log of a stack: what a start that hung was doing. */
export function serviceLogTails(stateDir: string, lines = 15): string {
  const dir = join(stateDir, "services");
  if (!existsSync(dir)) return `(no service logs in ${dir})`;
  return readdirSync(dir)
    .filter((f) => f.endsWith(".log"))
    .map((f) => {
      const tail = readFileSync(join(dir, f), "utf8").trimEnd().split("\n").slice(-lines).join("\n");
      return `--- ${join(dir, f)} (last ${lines} lines)\n${tail}`;
    })
    .join("\n");
}
