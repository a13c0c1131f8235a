// One program of a loaded BPF object, and the ways to attach it.
import { checkInt, checkPtr } from "./errors.ts";
import { ffi, nativeAlloc, nativeFree, nativeText, type Ptr } from "./ffi.ts";
import { BpfLink, objectInfo } from "./link.ts";

export class BpfProgram {
  readonly #ptr: Ptr;
  readonly #ensureOpen: () => void;

  /** @internal made by BpfObject.program() */
  constructor(
    ptr: Ptr,
    readonly name: string,
    ensureOpen: () => void,
  ) {
    this.#ptr = ptr;
    this.#ensureOpen = ensureOpen;
  }

  /** The program fd (negative before load). */
  get fd(): number {
    this.#ensureOpen();
    return ffi.programFd(this.#ptr);
  }

  /**
   * Attaches through a bpf_link (BPF_LINK_CREATE), so that a crash detaches it and nothing else can
   * replace it by accident. The link keeps its own reference to the cgroup: `cgroupFd` may be closed after.
   */
  attachCgroup(cgroupFd: number, cgroupPath = `cgroup fd ${cgroupFd}`): BpfLink {
    this.#ensureOpen();
    const link = checkPtr("attach", `program ${this.name} to ${cgroupPath}`, () =>
      ffi.attachCgroup(this.#ptr, cgroupFd),
    );
    return new BpfLink(link, `${this.name}@${cgroupPath}`);
  }

  /** The ELF section (the program type and attach point as libbpf reads them, e.g. `sockops`). */
  get section(): string {
    this.#ensureOpen();
    return ffi.programSection(this.#ptr);
  }

  /** Instructions in the program as it goes to the kernel (after libbpf's relocations, once loaded). */
  get insnCount(): number {
    this.#ensureOpen();
    return Number(ffi.programInsnCnt(this.#ptr));
  }

  /**
   * Before load: the kernel writes this program's verifier log into a buffer of `size` bytes at `level`
   * (1 = instructions and state, 2 = every state, 4 = statistics; bits combine). libbpf does not print a
   * log it did not allocate, so the caller reads it with the returned `text()` and must `free()` it after
   * the object is loaded or closed.
   */
  captureVerifierLog(level: number, size: number): { text: () => string; free: () => void } {
    this.#ensureOpen();
    let buf: unknown = nativeAlloc(size);
    checkInt("set", `log buffer of program ${this.name}`, () => ffi.programSetLogBuf(this.#ptr, buf, size));
    checkInt("set", `log level of program ${this.name}`, () => ffi.programSetLogLevel(this.#ptr, level));
    return {
      text: () => (buf === null ? "" : nativeText(buf, size)),
      free: () => {
        if (buf !== null) nativeFree(buf);
        buf = null;
      },
    };
  }

  /** Attaches by section type (tp_btf, ...) through a bpf_link. */
  attach(): BpfLink {
    this.#ensureOpen();
    const link = checkPtr("attach", `program ${this.name}`, () => ffi.attachAuto(this.#ptr));
    return new BpfLink(link, this.name);
  }

  /** The kernel's id of the loaded program (struct bpf_prog_info.id), e.g. to compare with a link's prog_id. */
  get id(): number {
    return objectInfo(this.fd, 16, `program ${this.name}`).getUint32(4, true);
  }
}
