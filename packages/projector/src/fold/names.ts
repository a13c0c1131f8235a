// Per-batch memo of the strings folding an event needs (addresses, caller and callee names): a batch's events
// come from a handful of processes and peers, so each name is built once per batch instead of per event.
import type { ServiceIdentity } from "../service-identity.ts";

export function addressText(bytes: Uint8Array): string {
  if (bytes.length === 4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  if (bytes.length === 16) {
    const parts: string[] = [];
    for (let i = 0; i < 16; i += 2) parts.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
    return parts.join(":");
  }
  return "?";
}

function memo<K, V>(map: Map<K, V>, key: K, make: () => V): V {
  let value = map.get(key);
  if (value === undefined) {
    value = make();
    map.set(key, value);
  }
  return value;
}

export class BatchNames {
  readonly #ids: ServiceIdentity;
  readonly #agentId: string;
  readonly #v4 = new Map<number, string>();
  readonly #callers = new Map<string, Map<bigint, string>>();
  readonly #callees = new Map<string, Map<number, string>>();

  constructor(ids: ServiceIdentity, agentId: string) {
    this.#ids = ids;
    this.#agentId = agentId;
  }

  address(bytes: Uint8Array): string {
    if (bytes.length !== 4) return addressText(bytes);
    const key = ((bytes[0]! << 24) | (bytes[1]! << 16) | (bytes[2]! << 8) | bytes[3]!) >>> 0;
    return memo(this.#v4, key, () => addressText(bytes));
  }

  /** The local process (its port is ephemeral and says nothing): by comm and cgroup. */
  caller(comm: string, cgroupId: bigint, port: number, address: string): string {
    const byCgroup = memo(this.#callers, comm, () => new Map<bigint, string>());
    return memo(byCgroup, cgroupId, () =>
      this.#ids.caller({ agentId: this.#agentId, comm, cgroupId, port, address }),
    );
  }

  /** A listening end: by address and port. */
  callee(address: string, port: number): string {
    const byPort = memo(this.#callees, address, () => new Map<number, string>());
    return memo(byPort, port, () => this.#ids.callee({ agentId: this.#agentId, port, address }));
  }
}
