// A second local stack for tests that run `./dev` themselves: its own state folder and its own ports, so the
// stack the other tests use is not disturbed (and the port overrides are exercised).
import { mkdtempSync } from "node:fs";
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
}

/** Ports base..base+4 (API, Kafka, Kafka controller, Postgres, agent) somewhere in [portBase, portBase + 8000). */
export function ownStack(label: string, portBase: number): OwnStack {
  const stateDir = mkdtempSync(join(tmpdir(), `indigo-${label}-`));
  const base = portBase + Math.floor(Math.random() * 1600) * 5;
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
  const dev = async (...args: string[]): Promise<DevResult> => {
    const proc = Bun.spawn([join(root, "dev"), ...args], {
      cwd: root,
      env: env(),
      stdout: "pipe",
      stderr: "pipe",
    });
    const [out, err, code] = await Promise.all([
      new Response(proc.stdout).text(),
      new Response(proc.stderr).text(),
      proc.exited,
    ]);
    return { code, out, err, output: out + err };
  };
  return { stateDir, ports, dev };
}
