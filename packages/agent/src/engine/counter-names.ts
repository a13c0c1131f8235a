// Names of every slot of the engine's `counters` map (bpf/dye_counters.h), and their sum over CPUs.
import type { BpfMap } from "../libbpf/index.ts";

export const CTR_MAX = 128;

/** slot → name, exactly as enum dye_counter (lower case, without CTR_). */
export const COUNTER_NAMES: Readonly<Record<number, string>> = {
  0: "send_calls",
  1: "send_bytes_scanned",
  2: "req_egress",
  3: "req_egress_dyed",
  4: "resp_egress",
  5: "resp_egress_dyed",
  6: "scan_truncated",
  7: "sni_seen",
  8: "sni_dyed",
  9: "dye_payload",
  10: "dye_inherit",
  11: "scan_read_failed",
  12: "send_continued",
  13: "send_appended",
  14: "scan_busy",
  15: "send_iter_other",
  16: "scan_line_skipped",
  17: "resp_status_5xx",
  32: "sockops_calls",
  33: "opt_written_syn",
  34: "opt_written_synack",
  35: "opt_written_data",
  36: "opt_reserve_failed",
  37: "opt_store_failed",
  38: "opt_parsed",
  /** options read from the handshake: the SYN (passive side) or the SYN-ACK (active side) */
  39: "opt_parsed_syn",
  40: "sock_mark_set",
  41: "sock_mark_failed",
  42: "established",
  43: "opt_unechoed",
  44: "late_listener",
  /** connections established before the engine, taken in when it started (dye_adopt.bpf.c) */
  45: "adopted",
  46: "adopt_failed",
  /** retransmitted segments that carried the last announcement again (it may have been lost with them) */
  47: "opt_written_again",
  64: "recv_calls",
  65: "recv_dyed",
  66: "inherit_set",
  67: "inherit_cleared",
  68: "inherit_expired",
  69: "connect_dyed",
  70: "tc_packets",
  71: "tc_marked",
  96: "events_emitted",
  97: "ringbuf_reserve_failed",
  98: "events_sampled_out",
  99: "storage_failed",
  // per event class (EventClass: 1 request, 2 response, 3 connection)
  101: "class_request_wanted",
  102: "class_response_wanted",
  103: "class_connection_wanted",
  105: "class_request_sampled_out",
  106: "class_response_sampled_out",
  107: "class_connection_sampled_out",
  109: "class_request_reserve_failed",
  110: "class_response_reserve_failed",
  111: "class_connection_reserve_failed",
  /** sampled out in the kernel because the ring was filling (also in events_sampled_out and per class) */
  112: "events_shed",
  /** undyed events not reported: ingress, responses, requests without a trace id (reportUndyed off) */
  113: "undyed_skipped",
};

/** The name of any slot; unnamed slots are `slot_<n>` (always zero unless a program forgot its name). */
export const counterName = (slot: number): string => COUNTER_NAMES[slot] ?? `slot_${slot}`;

const slotKey = (slot: number): Uint8Array => {
  const key = new Uint8Array(4);
  new DataView(key.buffer).setUint32(0, slot, true);
  return key;
};

/** Every named counter, summed over possible CPUs. */
export const readCounters = (counters: BpfMap): Record<string, bigint> => {
  const out: Record<string, bigint> = {};
  for (const [slot, name] of Object.entries(COUNTER_NAMES)) {
    const perCpu = counters.lookupPerCpu(slotKey(Number(slot))) ?? [];
    out[name] = perCpu.reduce(
      (sum, v) => sum + new DataView(v.buffer, v.byteOffset, 8).getBigUint64(0, true),
      0n,
    );
  }
  return out;
};
