// An attachment. Destroying an unpinned link detaches the program; a pinned one stays attached
// until its pin is removed too (that is how a new agent version takes over without a gap).
import { checkInt, usageError } from "./errors.ts";
import { ffi, type Ptr } from "./ffi.ts";

const EBADF = 9;

export class BpfLink {
  #ptr: Ptr | null;

  /** @internal made by BpfProgram.attach*() */
  constructor(
    ptr: Ptr,
    readonly description: string,
  ) {
    this.#ptr = ptr;
  }

  get fd(): number {
    return ffi.linkFd(this.#live("use"));
  }

  pin(path: string): void {
    const ptr = this.#live("pin");
    checkInt("pin", `link ${this.description} at ${path}`, () => ffi.linkPin(ptr, path));
  }

  unpin(): void {
    const ptr = this.#live("unpin");
    checkInt("unpin", `link ${this.description}`, () => ffi.linkUnpin(ptr));
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
