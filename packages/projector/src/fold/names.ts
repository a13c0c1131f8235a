// Per-batch memo of the strings folding an event needs (addresses, caller and callee names): a batch's events
// come from a handful of processes and peers, so each name is built once per batch instead of per event.
import { addressText, dottedAt, ipv4At } from "@indigo/bus/addresses";
import type { ServiceIdentity } from "../service-identity.ts";

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
    const at = ipv4At(bytes);
    if (at < 0) return addressText(bytes);
    const key = ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
    return memo(this.#v4, key, () => dottedAt(bytes, at));
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
