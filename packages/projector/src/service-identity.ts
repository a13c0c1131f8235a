// Names the two ends of a hop, so coverage reads `checkout → payment`, not pids. Rules are tried in order;
// the first whose every given field matches names the service. Defaults: the caller by its process name
// (comm), the callee by its address and port — give rules with `port` to name callees.
export interface ServiceRule {
  readonly service: string;
  readonly comm?: string;
  readonly cgroupId?: string;
  readonly port?: number;
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
  constructor(private readonly rules: readonly ServiceRule[]) {}

  #match(e: Endpoint, usePort: boolean): string | undefined {
    for (const r of this.rules) {
      if (r.comm !== undefined && r.comm !== e.comm) continue;
      if (r.cgroupId !== undefined && r.cgroupId !== String(e.cgroupId)) continue;
      if (r.port !== undefined && (!usePort || r.port !== e.port)) continue;
      if (r.agentId !== undefined && r.agentId !== e.agentId) continue;
      if (r.comm === undefined && r.cgroupId === undefined && r.port === undefined) continue;
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
    return this.#match(e, true) ?? `${e.address}:${e.port}`;
  }
}

export function parseServiceRules(json: string): ServiceRule[] {
  const value: unknown = JSON.parse(json);
  if (!Array.isArray(value)) throw new Error("service rules must be a JSON array");
  return value.map((r: unknown, i) => {
    if (typeof r !== "object" || r === null || typeof (r as { service?: unknown }).service !== "string") {
      throw new Error(`service rule ${i} needs a "service" string`);
    }
    return r as ServiceRule;
  });
}
