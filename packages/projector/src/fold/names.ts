// Per-batch memo of the strings folding an event needs (addresses, caller and callee names): a batch's events
// come from a handful of processes and peers, so each name is built once per batch instead of per event.
import type { ServiceIdentity } from "../service-identity.ts";

const dotted = (b: Uint8Array, at: number): string => `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;

/**
 * Where the IPv4 address sits in `bytes`: 0 for 4 bytes, 12 for a v4-mapped IPv6 address (::ffff:a.b.c.d),
 * else -1. An IPv6 socket that accepted or dialled IPv4 (Java's, Go's and node's servers listen on `::`)
 * reports its ends v4-mapped while the other end's IPv4 socket reports them as IPv4, and timelines join the
 * two sides of a connection by these strings: a v4-mapped address is written as the IPv4 address it is.
 */
function ipv4At(bytes: Uint8Array): number {
  if (bytes.length === 4) return 0;
  if (bytes.length !== 16 || bytes[10] !== 0xff || bytes[11] !== 0xff) return -1;
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return -1;
  return 12;
}

/** IPv4 dotted, v4-mapped IPv6 as its IPv4 address, other IPv6 in RFC 5952 form (lower case, the longest
 * run of two or more zero groups as `::`). */
export function addressText(bytes: Uint8Array): string {
  const v4 = ipv4At(bytes);
  if (v4 >= 0) return dotted(bytes, v4);
  if (bytes.length !== 16) return "?";
  const groups = Array.from({ length: 8 }, (_, i) => (bytes[2 * i]! << 8) | bytes[2 * i + 1]!);
  let zeroAt = -1;
  let zeroLen = 1;
  for (let i = 0, run = 0; i <= 8; i++) {
    if (i < 8 && groups[i] === 0) run++;
    else {
      if (run > zeroLen) [zeroAt, zeroLen] = [i - run, run];
      run = 0;
    }
  }
  const hex = groups.map((g) => g.toString(16));
  if (zeroAt < 0) return hex.join(":");
  return `${hex.slice(0, zeroAt).join(":")}::${hex.slice(zeroAt + zeroLen).join(":")}`;
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
    const at = ipv4At(bytes);
    if (at < 0) return addressText(bytes);
    const key = ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
    return memo(this.#v4, key, () => dotted(bytes, at));
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
