// tc clsact attachment through libbpf's bpf_tc_* API (libbpf 1.1 has no tcx links). The hook is created
// when missing and destroyed on detach only if this attachment created it, so other filters survive.
import { checkInt } from "./errors.ts";
import { ffi } from "./ffi.ts";

const BPF_TC_INGRESS = 1;
const BPF_TC_EGRESS = 2;
const EEXIST = 17;
const ENOENT = 2;
/** bpf_tc_attach flag: replace the filter at (handle, priority) in place (one netlink RTM_NEWTFILTER). */
const BPF_TC_F_REPLACE = 1;

// struct bpf_tc_hook { size_t sz; int ifindex; enum bpf_tc_attach_point attach_point; __u32 parent; }
const hookBytes = (ifindex: number, point: number): Uint8Array => {
  const b = new Uint8Array(24);
  const v = new DataView(b.buffer);
  v.setBigUint64(0, 24n, true);
  v.setInt32(8, ifindex, true);
  v.setUint32(12, point, true);
  return b;
};

// struct bpf_tc_opts { size_t sz; int prog_fd; __u32 flags; __u32 prog_id; __u32 handle; __u32 priority; }
const optsBytes = (progFd: number, handle: number, priority: number, flags = 0): Uint8Array => {
  const b = new Uint8Array(32);
  const v = new DataView(b.buffer);
  v.setBigUint64(0, 32n, true);
  v.setInt32(8, progFd, true);
  v.setUint32(12, flags, true);
  v.setUint32(20, handle, true);
  v.setUint32(24, priority, true);
  return b;
};

export class TcAttachment {
  #attached = true;
  private constructor(
    readonly iface: string,
    readonly ifindex: number,
    readonly direction: "ingress" | "egress",
    readonly handle: number,
    readonly priority: number,
    readonly createdHook: boolean,
  ) {}

  /**
   * Attaches `progFd` as a direct-action filter on `iface`'s clsact hook. `replace`: a filter already at
   * (handle, priority) — an earlier agent's — is replaced in place (BPF_TC_F_REPLACE), never removed first.
   */
  static attach(
    progFd: number,
    iface: string,
    ifindex: number,
    direction: "ingress" | "egress" = "egress",
    handle = 1,
    priority = 1,
    replace = false,
  ): TcAttachment {
    const hook = hookBytes(ifindex, direction === "egress" ? BPF_TC_EGRESS : BPF_TC_INGRESS);
    const created = ffi.tcHookCreate(hook);
    if (created < 0 && created !== -EEXIST) {
      checkInt("create", `clsact hook on ${iface}`, () => created);
    }
    const opts = optsBytes(progFd, handle, priority, replace ? BPF_TC_F_REPLACE : 0);
    try {
      checkInt("attach", `tc ${direction} program to ${iface}`, () => ffi.tcAttach(hook, opts));
    } catch (e) {
      if (created === 0) ffi.tcHookDestroy(hook);
      throw e;
    }
    const v = new DataView(opts.buffer);
    return new TcAttachment(
      iface,
      ifindex,
      direction,
      v.getUint32(20, true),
      v.getUint32(24, true),
      created === 0,
    );
  }

  /** The id of the program the filter at (handle, priority) runs now, or undefined when there is none. */
  attachedProgId(): number | undefined {
    const hook = hookBytes(this.ifindex, this.direction === "egress" ? BPF_TC_EGRESS : BPF_TC_INGRESS);
    const opts = optsBytes(0, this.handle, this.priority);
    const rc = ffi.tcQuery(hook, opts);
    if (rc === -ENOENT || rc === -22 /* EINVAL: no clsact qdisc any more */) return undefined;
    checkInt("query", `tc ${this.direction} filter on ${this.iface}`, () => rc);
    return new DataView(opts.buffer).getUint32(16, true);
  }

  /** Forgets the filter without removing it (another agent replaced it and owns it now). */
  forget(): void {
    this.#attached = false;
  }

  /** Removes the filter (and the clsact qdisc if this attachment created it). Idempotent. */
  detach(): void {
    if (!this.#attached) return;
    this.#attached = false;
    const hook = hookBytes(this.ifindex, this.direction === "egress" ? BPF_TC_EGRESS : BPF_TC_INGRESS);
    checkInt("detach", `tc ${this.direction} program from ${this.iface}`, () =>
      ffi.tcDetach(hook, optsBytes(0, this.handle, this.priority)),
    );
    if (this.createdHook) {
      // BPF_TC_INGRESS|BPF_TC_EGRESS destroys the whole clsact qdisc.
      const all = hookBytes(this.ifindex, BPF_TC_INGRESS | BPF_TC_EGRESS);
      checkInt("destroy", `clsact hook on ${this.iface}`, () => ffi.tcHookDestroy(all));
    }
  }
}
