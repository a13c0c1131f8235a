// One program of a loaded BPF object, and the ways to attach it.
import { checkPtr } from "./errors.ts";
import { ffi, type Ptr } from "./ffi.ts";
import { BpfLink } from "./link.ts";

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

  /** Attaches by section type (tp_btf, ...) through a bpf_link. */
  attach(): BpfLink {
    this.#ensureOpen();
    const link = checkPtr("attach", `program ${this.name}`, () => ffi.attachAuto(this.#ptr));
    return new BpfLink(link, this.name);
  }
}
