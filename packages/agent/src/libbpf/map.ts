// One map of a loaded BPF object: raw-bytes lookup/update and pinning. Encoding keys and values is
// the caller's business (one module per shared struct, e.g. ../sock-dye-config.ts).
import { checkInt, usageError } from "./errors.ts";
import { ffi, type Ptr } from "./ffi.ts";

const ENOENT = 2;
const EINVAL = 22;

/** Update flags of bpf_map_update_elem. */
export const BPF_ANY = 0n;
export const BPF_NOEXIST = 1n;
export const BPF_EXIST = 2n;

/** enum bpf_map_type values this package cares about (uapi, stable). */
const PERCPU_TYPES = new Set([
  5 /* PERCPU_HASH */, 6 /* PERCPU_ARRAY */, 10 /* LRU_PERCPU_HASH */, 21 /* PERCPU_CGROUP_STORAGE */,
]);

/** An fd of a pinned object (map, program, link); the caller closes it. */
export const openPinned = (path: string): number =>
  checkInt("open", `pinned object ${path}`, () => ffi.objGet(path));

let possibleCpus: number | undefined;

/** Possible (not online) CPUs: the kernel sizes per-CPU values by this count, hot-plugged or not. */
export const numPossibleCpus = (): number => {
  possibleCpus ??= checkInt("count", "possible CPUs", () => ffi.numPossibleCpus());
  return possibleCpus;
};

export class BpfMap {
  readonly #ptr: Ptr;
  readonly #ensureOpen: () => void;

  /** @internal made by BpfObject.map() */
  constructor(
    ptr: Ptr,
    readonly name: string,
    ensureOpen: () => void,
  ) {
    this.#ptr = ptr;
    this.#ensureOpen = ensureOpen;
  }

  get fd(): number {
    this.#ensureOpen();
    return ffi.mapFd(this.#ptr);
  }
  get type(): number {
    this.#ensureOpen();
    return ffi.mapType(this.#ptr);
  }
  get keySize(): number {
    this.#ensureOpen();
    return ffi.mapKeySize(this.#ptr);
  }
  get valueSize(): number {
    this.#ensureOpen();
    return ffi.mapValueSize(this.#ptr);
  }
  get maxEntries(): number {
    this.#ensureOpen();
    return ffi.mapMaxEntries(this.#ptr);
  }
  get isPerCpu(): boolean {
    return PERCPU_TYPES.has(this.type);
  }

  /** The value stored under `key`, or undefined when there is none (ENOENT). */
  lookup(key: Uint8Array): Uint8Array | undefined {
    return this.#lookupBytes(key, this.#checkedValueSize(false, "look up"));
  }

  /** A per-CPU map's value for `key`: one slice per possible CPU, each valueSize bytes long. */
  lookupPerCpu(key: Uint8Array): Uint8Array[] | undefined {
    const stride = alignTo8(this.valueSize);
    const all = this.#lookupBytes(key, this.#checkedValueSize(true, "look up"));
    if (!all) return undefined;
    return Array.from({ length: numPossibleCpus() }, (_, cpu) =>
      all.subarray(cpu * stride, cpu * stride + this.valueSize),
    );
  }

  update(key: Uint8Array, value: Uint8Array, flags: bigint = BPF_ANY): void {
    this.#checkKey(key, "update");
    const size = this.#checkedValueSize(false, "update");
    if (value.length !== size) {
      throw usageError(
        "update",
        `map ${this.name}`,
        EINVAL,
        `value is ${value.length} bytes, map wants ${size}`,
      );
    }
    checkInt("update", `map ${this.name}`, () =>
      ffi.mapUpdate(this.#ptr, key, key.length, value, value.length, flags),
    );
  }

  /**
   * Before load: where libbpf pins this map. At load, a map already pinned there (and compatible) is
   * reused instead of created; otherwise the new map is pinned there.
   */
  setPinPath(path: string): void {
    this.#ensureOpen();
    checkInt("set pin path of", `map ${this.name} to ${path}`, () => ffi.mapSetPinPath(this.#ptr, path));
  }

  get isPinned(): boolean {
    this.#ensureOpen();
    return ffi.mapIsPinned(this.#ptr);
  }

  /** Pins the (loaded) map at `path` on a bpffs, so it outlives this process. */
  pin(path: string): void {
    this.#ensureOpen();
    checkInt("pin", `map ${this.name} at ${path}`, () => ffi.mapPin(this.#ptr, path));
  }

  unpin(path: string): void {
    this.#ensureOpen();
    checkInt("unpin", `map ${this.name} at ${path}`, () => ffi.mapUnpin(this.#ptr, path));
  }

  #lookupBytes(key: Uint8Array, size: number): Uint8Array | undefined {
    this.#checkKey(key, "look up");
    const value = new Uint8Array(size);
    let missing = false;
    checkInt("look up", `map ${this.name}`, () => {
      const ret = ffi.mapLookup(this.#ptr, key, key.length, value, size, 0n);
      missing = ret === -ENOENT;
      return missing ? 0 : ret;
    });
    return missing ? undefined : value;
  }

  // libbpf refuses a value buffer of the wrong size; say which mistake it was instead.
  #checkedValueSize(perCpu: boolean, verb: string): number {
    if (this.isPerCpu !== perCpu) {
      const reason = perCpu ? "map is not per-CPU" : "map is per-CPU: use lookupPerCpu";
      throw usageError(verb, `map ${this.name}`, EINVAL, reason);
    }
    return perCpu ? alignTo8(this.valueSize) * numPossibleCpus() : this.valueSize;
  }

  #checkKey(key: Uint8Array, verb: string): void {
    if (key.length !== this.keySize) {
      throw usageError(
        verb,
        `map ${this.name}`,
        EINVAL,
        `key is ${key.length} bytes, map wants ${this.keySize}`,
      );
    }
  }
}

// The kernel lays per-CPU values out at 8-byte strides.
const alignTo8 = (n: number): number => (n + 7) & ~7;
