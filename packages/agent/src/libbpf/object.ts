// A BPF object file, from open to close. Programs and maps found in it are borrowed: they stay valid
// until close(), and using one afterwards throws instead of touching freed memory.
import { checkInt, checkPtr, usageError } from "./errors.ts";
import { ffi, type Ptr } from "./ffi.ts";
import { BpfMap } from "./map.ts";
import { BpfProgram } from "./program.ts";

const EBADF = 9;

export class BpfObject {
  #ptr: Ptr | null;
  readonly name: string;

  private constructor(ptr: Ptr, name: string) {
    this.#ptr = ptr;
    this.name = name;
  }

  /** Parses the ELF file; nothing reaches the kernel until load(). */
  static open(path: string): BpfObject {
    const ptr = checkPtr("open", `BPF object ${path}`, () => ffi.objectOpenFile(path, null));
    return new BpfObject(ptr, ffi.objectName(ptr));
  }

  /** Creates the maps and loads (verifies) every program. A verifier log, if any, is in the error's `log`. */
  load(): void {
    const ptr = this.#live("load", `BPF object ${this.name}`);
    checkInt("load", `BPF object ${this.name}`, () => ffi.objectLoad(ptr));
  }

  program(name: string): BpfProgram {
    const ptr = this.#live("find", `program ${name} in ${this.name}`);
    const prog = checkPtr("find", `program ${name} in ${this.name}`, () => ffi.findProgram(ptr, name));
    return new BpfProgram(prog, name, () => this.#live("use", `program ${name} of ${this.name}`));
  }

  /** Every program of the object, in ELF order (the order libbpf loads them). */
  programs(): BpfProgram[] {
    const ptr = this.#live("list", `programs of ${this.name}`);
    const out: BpfProgram[] = [];
    for (let p = ffi.nextProgram(ptr, null); p !== null; p = ffi.nextProgram(ptr, p)) {
      const name = ffi.programName(p);
      out.push(new BpfProgram(p, name, () => this.#live("use", `program ${name} of ${this.name}`)));
    }
    return out;
  }

  map(name: string): BpfMap {
    const ptr = this.#live("find", `map ${name} in ${this.name}`);
    const map = checkPtr("find", `map ${name} in ${this.name}`, () => ffi.findMap(ptr, name));
    return new BpfMap(map, name, () => this.#live("use", `map ${name} of ${this.name}`));
  }

  /** Frees the object and closes its program and map fds. Links and pins keep what they hold alive. Idempotent. */
  close(): void {
    if (this.#ptr === null) return;
    ffi.objectClose(this.#ptr);
    this.#ptr = null;
  }

  #live(verb: string, what: string): Ptr {
    if (this.#ptr === null) throw usageError(verb, what, EBADF, "object is closed");
    return this.#ptr;
  }
}
