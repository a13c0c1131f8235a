/* Exact per-CPU counters (counters map, __u64 per slot, summed over CPUs by the agent). Slots are grouped by
 * the program that owns them; add a counter only inside your program's range, and name it in
 * packages/agent/src/engine/counter-names.ts. */
#ifndef INDIGO_DYE_COUNTERS_H
#define INDIGO_DYE_COUNTERS_H

enum dye_counter {
	/* 0..31: send path (dye_send.bpf.c, lib/http_scan.bpf.h) */
	CTR_SEND_CALLS = 0,
	CTR_SEND_BYTES_SCANNED = 1,
	CTR_REQ_EGRESS = 2,
	CTR_REQ_EGRESS_DYED = 3,
	CTR_RESP_EGRESS = 4,
	CTR_RESP_EGRESS_DYED = 5,
	CTR_SCAN_TRUNCATED = 6,      /* a header block went past scan_max_bytes */
	CTR_SNI_SEEN = 7,
	CTR_SNI_DYED = 8,
	CTR_DYE_PAYLOAD = 9,
	CTR_DYE_INHERIT = 10,
	CTR_SCAN_READ_FAILED = 11,   /* bpf_probe_read_user of the send buffer failed */
	CTR_SEND_CONTINUED = 12,     /* a later hook call of a send already scanned (one call per skb filled) */
	CTR_SEND_APPENDED = 13,      /* a scanned send whose first bytes go into an unsent tail skb */
	CTR_SCAN_BUSY = 14,          /* the per-CPU scratch was in use (preempted scan): send not scanned */
	CTR_SEND_ITER_OTHER = 15,    /* msg_iter neither ITER_UBUF nor ITER_IOVEC (kernel sender): not scanned */
	CTR_SCAN_LINE_SKIPPED = 16,  /* a header line longer than the carry buffer was split across sends */
	CTR_RESP_STATUS_5XX = 17,    /* responses sent with a 5xx status */

	/* 32..63: sock_ops (dye_sockops.bpf.c) */
	CTR_SOCKOPS_CALLS = 32,
	CTR_OPT_WRITTEN_SYN = 33,
	CTR_OPT_WRITTEN_SYNACK = 34,
	CTR_OPT_WRITTEN_DATA = 35,
	CTR_OPT_RESERVE_FAILED = 36,
	CTR_OPT_STORE_FAILED = 37,
	CTR_OPT_PARSED = 38,
	CTR_OPT_PARSED_SYN = 39,
	CTR_SOCK_MARK_SET = 40,
	CTR_SOCK_MARK_FAILED = 41,
	CTR_ESTABLISHED = 42,
	CTR_OPT_UNECHOED = 43,       /* our SYN's option came back without the peer's echo: announced again */
	CTR_LATE_LISTENER = 44,      /* accepted from a listener that predates the engine: flags set on the child */
	CTR_ADOPTED = 45,            /* established before the engine: sock_state and option callbacks given */
	CTR_ADOPT_FAILED = 46,       /* ... but bpf_setsockopt(TCP_BPF_SOCK_OPS_CB_FLAGS) refused */
	CTR_OPT_WRITTEN_AGAIN = 47,  /* on a retransmitted segment: what was announced last, said again */

	/* 64..95: recv, connect, tc */
	CTR_RECV_CALLS = 64,
	CTR_RECV_DYED = 65,
	CTR_INHERIT_SET = 66,
	CTR_INHERIT_CLEARED = 67,
	CTR_INHERIT_EXPIRED = 68,
	CTR_CONNECT_DYED = 69,
	CTR_TC_PACKETS = 70,
	CTR_TC_MARKED = 71,

	/* 96..127: common */
	CTR_EVENTS_EMITTED = 96,
	CTR_RINGBUF_RESERVE_FAILED = 97,
	CTR_EVENTS_SAMPLED_OUT = 98,
	CTR_STORAGE_FAILED = 99,
	/* per event class (CLASS_* in lib/emit.bpf.h, 1..3), for the per-class sampling controller: events a
	 * program wanted to report (before sampling), sampled out, and lost to a full ring */
	CTR_CLASS_WANTED = 100,      /* + class */
	CTR_CLASS_SAMPLED_OUT = 104, /* + class */
	CTR_CLASS_RESERVE_FAILED = 108, /* + class */
	CTR_EVENTS_SHED = 112,       /* sampled out because the ring was filling (lib/emit.bpf.h shed_above) */
	CTR_UNDYED_SKIPPED = 113,    /* undyed events not reported (CFG_F_REPORT_UNDYED off) */

	CTR_MAX = 128,
};

#endif /* INDIGO_DYE_COUNTERS_H */
