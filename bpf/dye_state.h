/* Per-socket and per-thread dye state: the contract between the engine's programs (send, recv, connect,
 * sock_ops, tc) and the agent, which reads it only through bpftool/tests. Fixed-width types only. */
#ifndef INDIGO_DYE_STATE_H
#define INDIGO_DYE_STATE_H

/* Detection sources; the numbers are the DetectionSource enum of proto/indigo/v1/dye_event.proto. */
#define DYE_SRC_NONE 0
#define DYE_SRC_PAYLOAD 1
#define DYE_SRC_SNI 2
#define DYE_SRC_TCP_OPTION 3
#define DYE_SRC_INHERIT 4

/* Payload scanner state carried from one send to the next on the same socket, so a header split across
 * two sends is still recognised. Owned by lib/http_scan.bpf.h; opaque to the other programs. */
#define SCAN_CARRY_MAX 128
#define SCAN_NO_RULE 0xff /* best_slot when no rule matched (yet) */
struct scan_carry {
	__u16 len;         /* bytes of the unfinished header line kept in buf */
	__u8 in_headers;   /* 1 while the current request's header block has not ended */
	__u8 best_slot;    /* lowest rule slot (in the active set) matched so far, SCAN_NO_RULE: none */
	__u32 request_dye; /* dye of best_slot, 0 = none */
	__u32 end_seq;     /* tcp write_seq just past the last send scanned: later hook calls of that same
	                    * send (one per skb it fills) are skipped */
	__u8 skip_line;    /* the unfinished line did not fit buf: ignore bytes up to the next '\n' */
	__u8 trace_id_len; /* trace_id[] of the current request (0 = none seen) */
	__u8 method_len;
	__u8 path_len;
	/* 16 bytes above (SCAN_CARRY_HEAD): all a socket needs between requests */
	char trace_id[64]; /* DYE_EVENT_TRACE_ID_MAX */
	char method[8];    /* DYE_EVENT_METHOD_MAX */
	char path[96];     /* DYE_EVENT_PATH_MAX */
	__u8 buf[SCAN_CARRY_MAX];
};

/* sock_state (BPF_MAP_TYPE_SK_STORAGE): one per TCP socket the engine has seen. */
struct sock_state {
	__u32 egress_dye;     /* dye of the request (or response) this socket is sending now; per request */
	__u32 announced_dye;  /* last dye written into a TCP option to the peer */
	__u32 ingress_dye;    /* dye the peer announced for what it sends now (TCP option) */
	__u32 mark;           /* SO_MARK value last set on the socket (0 = none) */
	__u8 egress_source;   /* DYE_SRC_* of egress_dye */
	__u8 ingress_source;  /* DYE_SRC_* of ingress_dye */
	__u8 flags;           /* SOCK_F_* */
	__u8 pad;
	__u32 announce_seq;   /* sequence number of the data segment that carried the last announcement
	                       * (valid with SOCK_F_ANNOUNCED_AT); this slot held a request count no program
	                       * read, so the layout, and a pinned map, stay as they were */
	struct scan_carry carry;
};

#define SOCK_F_ANNOUNCE (1u << 0) /* egress_dye changed: the next segment carries the option */
#define SOCK_F_SNI_DONE (1u << 1) /* the first send was examined for a TLS ClientHello */
#define SOCK_F_PASSIVE (1u << 2)  /* accepted (server side) socket */
#define SOCK_F_ANNOUNCED_AT (1u << 3) /* announce_seq is the last announcing segment, not followed by another */

/* thread_state (BPF_MAP_TYPE_TASK_STORAGE): the dye of the request a thread has just read. A thread that
 * reads from a dyed socket dyes the sockets it then sends on or connects, for at most
 * dye_config.inherit_window_ns; a read from an undyed socket clears it. */
struct thread_state {
	__u32 dye;
	__u32 source;     /* how the socket it read from got its dye */
	__u64 since_ns;   /* bpf_ktime_get_ns() of the read */
	__u64 from_cookie; /* socket cookie of the socket read from */
};

#endif /* INDIGO_DYE_STATE_H */
