// Why the engine could not start, in one line an SRE can act on: the reason degraded mode reports.
//   no kernel BTF      /sys/kernel/btf/vmlinux is missing (CO-RE cannot relocate)
//   no BPF capability  bpf() refused with EPERM (or EACCES without a verifier log) and the process lacks
//                      CAP_BPF and CAP_SYS_ADMIN
//   verifier rejected  EACCES with a verifier log: `verifier rejected <prog>: <message> (<file>:<line>)`,
//                      taken from a doctor run on the same object
//   anything else      `eBPF engine failed to start: <message>`
import { existsSync, readFileSync } from "node:fs";
import { runDoctor } from "../doctor/doctor.ts";
import { LibbpfError } from "../libbpf/index.ts";

export const KERNEL_BTF = "/sys/kernel/btf/vmlinux";
const EPERM = 1;
const EACCES = 13;
const LIBBPF_ERRNO_VERIFY = 4007;
const CAP_SYS_ADMIN = 21n;
const CAP_BPF = 39n;

export type Cause = "no-btf" | "no-capability" | "verifier" | "other";

export interface Classification {
  cause: Cause;
  reason: string;
}

/** Effective capabilities of this process (CapEff of /proc/self/status). */
export const effectiveCaps = (status = readFileSync("/proc/self/status", "utf8")): bigint => {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
  return m ? BigInt(`0x${m[1]}`) : 0n;
};

const has = (caps: bigint, cap: bigint): boolean => (caps & (1n << cap)) !== 0n;

export interface ClassifyOptions {
  /** the object the engine tried to load, re-read by doctor for a verifier rejection */
  objectPath?: string;
  btfPath?: string;
  caps?: bigint;
}

export const classifyEngineError = (err: unknown, opts: ClassifyOptions = {}): Classification => {
  const message = err instanceof Error ? err.message : String(err);
  const btf = opts.btfPath ?? KERNEL_BTF;
  if (!existsSync(btf)) return { cause: "no-btf", reason: `no kernel BTF (${btf} is missing): ${message}` };
  const caps = opts.caps ?? effectiveCaps();
  const verifierLog =
    err instanceof LibbpfError && err.log.some((l) => /BEGIN PROG LOAD LOG|processed \d+ insns/.test(l));
  if (
    err instanceof LibbpfError &&
    (err.errno === EPERM || (err.errno === EACCES && !verifierLog)) &&
    !has(caps, CAP_BPF) &&
    !has(caps, CAP_SYS_ADMIN)
  ) {
    return {
      cause: "no-capability",
      reason: `no BPF capability (CAP_BPF and CAP_SYS_ADMIN missing): ${message}`,
    };
  }
  if (err instanceof LibbpfError && (err.errno === EACCES || err.errno === LIBBPF_ERRNO_VERIFY)) {
    const report = opts.objectPath ? runDoctor(opts.objectPath) : undefined;
    if (report && "rejected" in report) {
      const r = report.rejected;
      const at = r.source?.file ? ` (${r.source.file}:${r.source.line}, insn ${r.insn})` : "";
      return { cause: "verifier", reason: `verifier rejected ${r.program}: ${r.message}${at}` };
    }
    const prog = err.log.map((l) => /prog '([^']+)': BPF program load failed/.exec(l)?.[1]).find(Boolean);
    return { cause: "verifier", reason: `verifier rejected ${prog ?? "a program"}: ${message}` };
  }
  return { cause: "other", reason: `eBPF engine failed to start: ${message}` };
};
