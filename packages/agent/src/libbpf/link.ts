// An attachment. Destroying an unpinned link detaches the program; a pinned one stays attached
// until its pin is removed too (that is how a new agent version takes over without a gap).
import { closeSync, readSync } from "node:fs";
import { checkInt, checkPtr, usageError } from "./errors.ts";
import { ffi, type Ptr } from "./ffi.ts";

const EBADF = 9;

/** bpf_obj_get_info_by_fd into a `size`-byte buffer (the kernel fills what fits, the rest stays 0). */
export const objectInfo = (fd: number, size: number, what: string): DataView => {
  const info = new Uint8Array(size);
  const len = new Uint8Array(4);
  new DataView(len.buffer).setUint32(0, size, true);
  checkInt("query", what, () => ffi.objGetInfoByFd(fd, info, len));
  return new DataView(info.buffer);
};

/** What the kernel says of a link (struct bpf_link_info: type, id, prog_id, then the per-type union). */
export interface LinkInfo {
  /** enum bpf_link_type: 1 RAW_TRACEPOINT, 2 TRACING, 3 CGROUP, ... */
  type: number;
  id: number;
  progId: number;
  /** for cgroup links: the cgroup id (the cgroup directory's inode number) */
  cgroupId?: bigint;
}

export const LINK_TYPE_CGROUP = 3;

export class BpfLink {
  #ptr: Ptr | null;
  #pinPath: string | undefined;

  /** @internal made by BpfProgram.attach*() */
  constructor(
    ptr: Ptr,
    readonly description: string,
    pinPath?: string,
  ) {
    this.#ptr = ptr;
    this.#pinPath = pinPath;
  }

  /** A link pinned at `path` (by this process or an earlier one): bpf_link__open. It stays pinned. */
  static openPinned(path: string, description = path): BpfLink {
    const ptr = checkPtr("open", `pinned link ${path}`, () => ffi.linkOpen(path));
    return new BpfLink(ptr, description, path);
  }

  get fd(): number {
    return ffi.linkFd(this.#live("use"));
  }

  /** Where the link is pinned (undefined when not pinned, or after unpin). */
  get pinPath(): string | undefined {
    return this.#pinPath;
  }

  info(): LinkInfo {
    const v = objectInfo(this.fd, 48, `link ${this.description}`);
    const type = v.getUint32(0, true);
    return {
      type,
      id: v.getUint32(4, true),
      progId: v.getUint32(8, true),
      ...(type === LINK_TYPE_CGROUP ? { cgroupId: v.getBigUint64(16, true) } : {}),
    };
  }

  /**
   * BPF_LINK_UPDATE: the link runs `progFd` from now on, atomically (no moment with neither program).
   * Cgroup links support it; the kernel refuses it (EOPNOTSUPP) for link types without update_prog.
   */
  updateProgram(progFd: number, progName = `fd ${progFd}`): void {
    const fd = this.fd;
    checkInt("update", `link ${this.description} to program ${progName}`, () =>
      ffi.linkUpdateFd(fd, progFd, null),
    );
  }

  /**
   * Runs an iterator link once: a new seq file (bpf_iter_create), read to its end, closed. The program runs
   * for every object the iterator walks in the calling thread's namespaces (tcp: its network namespace).
   * Returns what the program printed.
   */
  runIterator(): Buffer {
    const fd = checkInt("create", `iterator of ${this.description}`, () => ffi.iterCreate(this.fd));
    const chunks: Buffer[] = [];
    try {
      const buf = Buffer.alloc(4096);
      for (let n = readSync(fd, buf); n > 0; n = readSync(fd, buf))
        chunks.push(Buffer.from(buf.subarray(0, n)));
    } finally {
      closeSync(fd);
    }
    return Buffer.concat(chunks);
  }

  /** BPF_LINK_DETACH: detaches now, whoever else holds the link (EOPNOTSUPP for some link types). */
  detachNow(): void {
    const fd = this.fd;
    checkInt("detach", `link ${this.description}`, () => ffi.linkDetachFd(fd));
  }

  pin(path: string): void {
    const ptr = this.#live("pin");
    checkInt("pin", `link ${this.description} at ${path}`, () => ffi.linkPin(ptr, path));
    this.#pinPath = path;
  }

  unpin(): void {
    const ptr = this.#live("unpin");
    checkInt("unpin", `link ${this.description}`, () => ffi.linkUnpin(ptr));
    this.#pinPath = undefined;
  }

  /** Closes the link (and frees it). Idempotent, so one cleanup path can call it from any point. */
  destroy(): void {
    if (this.#ptr === null) return;
    const ptr = this.#ptr;
    this.#ptr = null;
    checkInt("destroy", `link ${this.description}`, () => ffi.linkDestroy(ptr));
  }

  #live(verb: string): Ptr {
    if (this.#ptr === null) throw usageError(verb, `link ${this.description}`, EBADF, "link is destroyed");
    return this.#ptr;
  }
}
