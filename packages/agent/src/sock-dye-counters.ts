// The sock_dye program's `counters` map (per-CPU u64, exact): slot numbers from bpf/sock_dye.h,
// and the sum across CPUs that user space reports.
import type { BpfMap } from "./libbpf/index.ts";

/** Slots 0..31 count sock_ops callbacks by op (enum BPF_SOCK_OPS_*_CB, uapi). */
export const SockOp = {
  TIMEOUT_INIT: 1,
  RWND_INIT: 2,
  TCP_CONNECT: 3,
  ACTIVE_ESTABLISHED: 4,
  PASSIVE_ESTABLISHED: 5,
  NEEDS_ECN: 6,
  BASE_RTT: 7,
  RTO: 8,
  RETRANS: 9,
  STATE: 10,
  TCP_LISTEN: 11,
  RTT: 12,
  PARSE_HDR_OPT: 13,
  HDR_OPT_LEN: 14,
  WRITE_HDR_OPT: 15,
} as const;

export const SOCK_DYE_OP_SLOTS = 32;
export const SockDyeCounter = {
  OP_OTHER: 32,
  DYED: 33,
  UNDYED: 34,
  STORAGE_FAILED: 35,
  MARKED: 36,
  MARK_FAILED: 37,
} as const;
export const SOCK_DYE_CTR_MAX = 38;

export interface SockDyeCounters {
  /** callbacks by op number (index = BPF_SOCK_OPS_*_CB); ops ≥ 32 are in opOther */
  readonly byOp: readonly bigint[];
  readonly opOther: bigint;
  /** established sockets that carry a dye */
  readonly dyed: bigint;
  readonly undyed: bigint;
  readonly storageFailed: bigint;
  readonly marked: bigint;
  readonly markFailed: bigint;
}

const slotKey = (slot: number): Uint8Array => {
  const key = new Uint8Array(4);
  new DataView(key.buffer).setUint32(0, slot, true);
  return key;
};

/** Sum of one u64 slot over every possible CPU. */
export const sumPerCpuU64 = (perCpu: readonly Uint8Array[]): bigint =>
  perCpu.reduce((sum, v) => sum + new DataView(v.buffer, v.byteOffset, 8).getBigUint64(0, true), 0n);

export const readSockDyeCounters = (counters: BpfMap): SockDyeCounters => {
  const slot = (n: number): bigint => sumPerCpuU64(counters.lookupPerCpu(slotKey(n)) ?? []);
  return {
    byOp: Array.from({ length: SOCK_DYE_OP_SLOTS }, (_, op) => slot(op)),
    opOther: slot(SockDyeCounter.OP_OTHER),
    dyed: slot(SockDyeCounter.DYED),
    undyed: slot(SockDyeCounter.UNDYED),
    storageFailed: slot(SockDyeCounter.STORAGE_FAILED),
    marked: slot(SockDyeCounter.MARKED),
    markFailed: slot(SockDyeCounter.MARK_FAILED),
  };
};
