// Names the two ends of a hop, so coverage reads `checkout → payment`, not pids. Rules are tried in order;
// the first whose every given field matches names the service. Defaults: the caller by its process name
// (comm), the callee by its address and port — give rules with `port` (or `address`, e.g. a Kubernetes Service's
// virtual IP, which is what a caller's socket names) to name callees. A rules file
// (INDIGO_SERVICE_RULES) is read again when it changes, so names can be given while the projector runs; rows
// written before keep the names they had (a rebuild names everything with the rules of its time).
import { readFileSync, statSync } from "node:fs";
import { endpointText } from "@indigo/bus/addresses";

export interface ServiceRule {
  readonly service: string;
  readonly comm?: string;
  readonly cgroupId?: string;
  readonly port?: number;
  /** The caller's local address, or the address a callee is called at: as the projector writes addresses
   * (dotted IPv4, a v4-mapped IPv6 address as its IPv4 one, other IPv6 in RFC 5952 form). */
  readonly address?: string;
  readonly agentId?: string;
}

export interface Endpoint {
  readonly agentId: string;
  readonly comm?: string;
  readonly cgroupId?: bigint;
  readonly port: number;
  readonly address: string;
}

export class ServiceIdentity {
  #rules: readonly ServiceRule[];

  /** `reload`: newer rules when there are some (called per lookup: it must be cheap), else undefined. */
  constructor(
    rules: readonly ServiceRule[],
    private readonly reload?: () => readonly ServiceRule[] | undefined,
  ) {
    this.#rules = rules;
  }

  #match(e: Endpoint, usePort: boolean): string | undefined {
    const newer = this.reload?.();
    if (newer) this.#rules = newer;
    for (const r of this.#rules) {
      if (r.comm !== undefined && r.comm !== e.comm) continue;
      if (r.cgroupId !== undefined && r.cgroupId !== String(e.cgroupId)) continue;
      if (r.port !== undefined && (!usePort || r.port !== e.port)) continue;
      if (r.address !== undefined && r.address !== e.address) continue;
      if (r.agentId !== undefined && r.agentId !== e.agentId) continue;
      if (r.comm === undefined && r.cgroupId === undefined && r.port === undefined && r.address === undefined)
        continue;
      return r.service;
    }
    return undefined;
  }

  /** The local process of an event: matched by comm/cgroup (its ephemeral port says nothing). */
  caller(e: Endpoint): string {
    return this.#match(e, false) ?? e.comm ?? `${e.address}`;
  }

  /** The remote end of an egress request: matched by the port it listens on. */
  callee(e: Endpoint): string {
    return this.#match(e, true) ?? endpointText(e.address, e.port);
  }
}

const RULE_FIELDS: Record<keyof ServiceRule, (v: unknown) => string | undefined> = {
  service: (v) => (typeof v === "string" && v !== "" ? undefined : "a non-empty string"),
  comm: (v) =>
    typeof v === "string" && v.length <= 15 ? undefined : "a string of at most 15 bytes (TASK_COMM_LEN)",
  cgroupId: (v) => (typeof v === "string" && /^[0-9]+$/.test(v) ? undefined : 'a string of digits ("12345")'),
  port: (v) =>
    Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 65_535 ? undefined : "an integer 1–65535",
  address: (v) =>
    typeof v === "string" &&
    (/^\d{1,3}(\.\d{1,3}){3}$/.test(v) || (/^[0-9a-f:]+$/.test(v) && v.includes(":")))
      ? undefined
      : "an IPv4 address (10.96.0.10) or an IPv6 one in lower-case RFC 5952 form (fd00::a)",
  agentId: (v) => (typeof v === "string" && v !== "" ? undefined : "a non-empty string"),
};

/**
 * A rules file: every field checked, so a rule that could never match (a port given as "8080", a typo in a
 * field name, a cgroup id as a number, which JSON cannot hold exactly past 2^53) is refused with its index and
 * field instead of naming nothing.
 */
export function parseServiceRules(json: string): ServiceRule[] {
  const value: unknown = JSON.parse(json);
  if (!Array.isArray(value)) throw new Error("service rules must be a JSON array");
  return value.map((r: unknown, i) => {
    if (typeof r !== "object" || r === null || Array.isArray(r))
      throw new Error(`service rule ${i} is not an object`);
    const rule = r as Record<string, unknown>;
    if (typeof rule.service !== "string") throw new Error(`service rule ${i} needs a "service" string`);
    for (const [field, v] of Object.entries(rule)) {
      const check = RULE_FIELDS[field as keyof ServiceRule];
      if (!check)
        throw new Error(
          `service rule ${i}: unknown field "${field}" (${Object.keys(RULE_FIELDS).join(", ")})`,
        );
      const wanted = check(v);
      if (wanted)
        throw new Error(`service rule ${i}: "${field}" must be ${wanted}, got ${JSON.stringify(v)}`);
    }
    if (["comm", "cgroupId", "port", "address"].every((f) => rule[f] === undefined))
      throw new Error(
        `service rule ${i} ("${rule.service}") matches nothing: give comm, cgroupId, port or address`,
      );
    return rule as unknown as ServiceRule;
  });
}

/**
 * Rules from `path`, read again when the file changes (looked at once a second at most). A file that is
 * missing means no rules yet; one that does not parse keeps the rules in force and is reported once.
 */
export function serviceRulesFile(
  path: string,
  log: (line: string) => void = (line) => console.error(`projector: ${line}`),
  checkEveryMs = 1000,
): () => readonly ServiceRule[] | undefined {
  let checkedAt = Number.NEGATIVE_INFINITY;
  let seen = "";
  return () => {
    const now = Date.now();
    if (now - checkedAt < checkEveryMs) return undefined;
    checkedAt = now;
    let version: string;
    try {
      const st = statSync(path);
      version = `${st.mtimeMs}:${st.size}`;
    } catch {
      return undefined;
    }
    if (version === seen) return undefined;
    seen = version;
    try {
      const rules = parseServiceRules(readFileSync(path, "utf8"));
      log(`service rules: ${rules.length} from ${path}`);
      return rules;
    } catch (e) {
      log(`service rules in ${path} not used: ${(e as Error).message}`);
      return undefined;
    }
  };
}
