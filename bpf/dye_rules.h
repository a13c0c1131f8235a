/* Cohort rules and engine configuration, written by the agent (packages/agent/src/rules/compile.ts and the
 * loader), read by the kernel programs. Fixed-width types only. */
#ifndef INDIGO_DYE_RULES_H
#define INDIGO_DYE_RULES_H

#define DYE_MAX_RULES 16      /* per rule set; the rules map holds two sets (double-buffered) */
#define PATTERN_MAX 64        /* positions of a compiled trace-id pattern */
#define PATTERN_CLASSES 16    /* distinct character classes in one pattern (a power of two) */
#define HEADER_NAME_MAX 32
#define HEADER_VALUE_MAX 96   /* also the longest SNI suffix */
#define TRACE_HEADERS_MAX 4
#define PERCENT_SCALE 10000   /* percent rules are in basis points of the trace-id hash space */

#define RULE_EMPTY 0
#define RULE_TRACE_ID 1       /* trace id (value of a trace header) matches pattern, anchored at its start */
#define RULE_HEADER 2         /* a request header name (case-insensitive) has exactly this value */
#define RULE_SNI 3            /* the TLS ClientHello server_name ends with value (case-insensitive) */
#define RULE_PERCENT 4        /* fnv1a32(trace id) % PERCENT_SCALE < percent_bp */

struct char_class {
	__u8 bits[32]; /* bit (c & 7) of bits[c >> 3] set: byte c belongs to the class */
};

struct dye_rule {
	__u32 dye;
	__u8 kind;          /* RULE_* */
	__u8 pattern_len;   /* RULE_TRACE_ID: positions used in pattern[] */
	__u8 name_len;      /* RULE_HEADER */
	__u8 value_len;     /* RULE_HEADER value, RULE_SNI suffix */
	__u32 percent_bp;   /* RULE_PERCENT */
	__u8 pattern[PATTERN_MAX];  /* class index per position */
	struct char_class classes[PATTERN_CLASSES];
	char name[HEADER_NAME_MAX];   /* lower case */
	char value[HEADER_VALUE_MAX]; /* header value as sent; SNI suffix in lower case */
};

/* rules map: ARRAY of 2 * DYE_MAX_RULES entries. Set s occupies [s * DYE_MAX_RULES, (s+1) * DYE_MAX_RULES).
 * The agent writes the inactive set, then flips dye_config.active_rule_set: a reader never sees half a
 * rule set, and rules change at run time without a reload. The first matching rule, in slot order, wins.
 * A set is compact: the first RULE_EMPTY slot ends it (the kernel does not look past it). */

struct trace_header {
	char name[HEADER_NAME_MAX]; /* lower case, e.g. "x-trace-id"; "traceparent" skips the W3C "00-" */
	__u8 len;
	__u8 pad[3];
};

/* dye_config map value (one entry, key 0). */
struct dye_config {
	__u32 mark_base;        /* SO_MARK / skb->mark bits kept outside mark_mask */
	__u32 mark_mask;        /* bits that carry the dye: mark = (base & ~mask) | (dye & mask) */
	__u32 flags;            /* CFG_F_* */
	__u32 active_rule_set;  /* 0 or 1 */
	__u64 inherit_window_ns; /* how long a thread's read dye stays valid */
	__u32 scan_max_bytes;   /* payload bytes examined per send at most */
	__u16 option_exid;      /* RFC 6994 experiment id of the TCP option (kind 253) */
	__u8 trace_header_count;
	__u8 pad;
	struct trace_header trace_headers[TRACE_HEADERS_MAX];
};

#define CFG_F_SET_SOCK_MARK (1u << 0) /* bpf_setsockopt(SO_MARK) on dyed sockets */
#define CFG_F_SET_SKB_MARK (1u << 1)  /* tc egress sets skb->mark per packet */
#define CFG_F_WRITE_OPTION (1u << 2)  /* carry the dye to the peer in the TCP option */
/* Also report the undyed events no consumer of indigo.dye.v1 uses: ingress events, responses and requests
 * without a trace id, all undyed (counted exactly either way, CTR_UNDYED_SKIPPED). Without it an undyed
 * request is reported only when it carries a trace id: the projector needs those (a trace may enter a cohort
 * later, and then they are its misses), and nothing of the others. */
#define CFG_F_REPORT_UNDYED (1u << 3)

/* sampling map: ARRAY indexed by EventClass (proto rules.proto): events kept per million. Counters stay
 * exact whatever the rate. The agent initialises every class to 1000000. */
#define SAMPLING_CLASSES 4
#define SAMPLING_SCALE 1000000

#endif /* INDIGO_DYE_RULES_H */
