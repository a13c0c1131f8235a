/* The payload scanner's per-CPU scratch (struct scan_work: the bytes of one send behind the socket's carried
 * line, and the judgement being built) and the byte-level tools every parser uses: masked byte and word loads,
 * SWAR zero-byte search and case folding, the newline finder. See lib/http_scan.bpf.h for the data flow. */
#ifndef INDIGO_SCAN_WORK_BPF_H
#define INDIGO_SCAN_WORK_BPF_H

#include "lib/maps.bpf.h"

#define SCAN_WINDOW_MAX 4096 /* dye_config.scan_max_bytes is clamped to this; 0 means this */
#define SCAN_BUF_MASK 8191   /* every buf index is masked: buf holds carry + window with room to spare */
#define SCAN_BUF_SIZE (SCAN_BUF_MASK + 1 + 256)
/* Bytes of a send's window read before scanning starts. Most requests are decided by then (the trace header
 * is near the top); the rest of the window is read only when the scan stops undecided at an unfinished line.
 * Reading the whole window of every send first cost more than the scan itself (user copy, cache lines). */
#define SCAN_FIRST_READ 256
#define SCAN_LINES_MAX 512   /* header lines per send (bpf_loop iterations) */
#define SCAN_WORDS_MAX ((SCAN_WINDOW_MAX + SCAN_CARRY_MAX) / 8 + 2)
#define SNI_KEEP 96          /* last bytes of the server name kept (longest suffix rule: HEADER_VALUE_MAX) */
#define TRACE_ID_MAX 64
#define SCAN_CARRY_HEAD 16   /* struct scan_carry up to (not including) trace_id */

_Static_assert(__builtin_offsetof(struct scan_carry, trace_id) == SCAN_CARRY_HEAD, "scan_carry head");

struct scan_work {
	__u8 buf[SCAN_BUF_SIZE];
	struct scan_carry c; /* working copy of the socket's carry */
	__u32 len;           /* valid bytes in buf: carried line + this send's window */
	__u32 pos;           /* start of the next line to examine */
	__u32 rule_base;     /* first slot of the active rule set */
	__u16 header_rules;  /* bit i: slot i is RULE_HEADER */
	__u16 id_rules;      /* bit i: slot i is RULE_TRACE_ID or RULE_PERCENT */
	__u16 sni_rules;     /* bit i: slot i is RULE_SNI */
	__u32 hdr_name_lens; /* bit n-1: some RULE_HEADER name is n bytes long (a cheap prefilter per line) */
	__u8 more;           /* the send had bytes beyond the window */
	__u8 busy;           /* set while a scan uses this CPU's scratch */
	__u8 resume;         /* the window is only partly in buf: scan_more() reads the rest when a line needs it */
	/* results of one scan_send() */
	__u8 judged;         /* a request's judgement completed in this send (c.request_dye, c.best_slot) */
	__u8 truncated;      /* ... because the window ended inside its header block */
	__u8 response;       /* this send starts with a status line */
	__u8 tls;            /* this send is a TLS ClientHello */
	__u16 status;
	__u8 sni_len;        /* bytes in sni[] (the last SNI_KEEP of the name, lower case) */
	__u8 sni_slot;       /* SCAN_NO_RULE or the RULE_SNI slot that matched */
	__u32 sni_dye;
	__u32 lines;         /* header lines examined in this send */
	/* this send's bytes in buf: buf[off..off + got) of the window [0, want) of a send of `left` bytes */
	__u32 off;
	__u32 got;
	__u32 want;
	__u32 left;
	/* where the includer's scan_refill() finds the rest (dye_send: the user's iov_iter) */
	__u64 src_base;
	__u64 src_nr;
	__u64 src_skip;
	__u8 src_iovec;
	__u32 tmp;           /* see forget() */
	char sni[128];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scan_work);
} scan_work SEC(".maps");

static __always_inline struct scan_work *scan_work_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&scan_work, &zero);
}

static __always_inline __u8 sb(const struct scan_work *w, __u32 i)
{
	return w->buf[i & SCAN_BUF_MASK];
}

/* Unaligned 8-byte load (map values allow it on x86/arm64 without BPF_F_STRICT_ALIGNMENT). */
static __always_inline __u64 sw(const struct scan_work *w, __u32 i)
{
	return *(const __u64 *)&w->buf[i & SCAN_BUF_MASK];
}

static __always_inline __u64 ld64(const void *p)
{
	return *(const __u64 *)p;
}

/* Returns x with every bound the verifier knew about it forgotten (a round trip through map memory).
 * Used on the result of a bounded loop: otherwise each of its exits carries different bounds, so the
 * verifier walks everything after the loop once per exit and runs out of its 1M-instruction budget. Every
 * use of the result is bounds-checked or masked anyway. */
static __always_inline __u32 forget(struct scan_work *w, __u32 x)
{
	*(volatile __u32 *)&w->tmp = x;
	return *(volatile __u32 *)&w->tmp;
}

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* High bit set in every byte of x that is zero (exact for the lowest one; higher ones may be false). */
static __always_inline __u64 zero_bytes(__u64 x)
{
	return (x - ONES) & ~x & HIGHS;
}

/* Index (0..7) of the lowest byte flagged by zero_bytes(); t != 0. */
static __always_inline __u32 first_flagged(__u64 t)
{
	__u32 j = 0;

	if (!(t & 0x80808080ULL)) {
		j += 4;
		t >>= 32;
	}
	if (!(t & 0x8080ULL)) {
		j += 2;
		t >>= 16;
	}
	if (!(t & 0x80ULL))
		j += 1;
	return j;
}

/* 'A'..'Z' → 'a'..'z' in all 8 bytes at once; other bytes unchanged. */
static __always_inline __u64 fold_case(__u64 w)
{
	__u64 hept = w & ~HIGHS;
	__u64 ge_a = hept + (0x80 - 'A') * ONES;
	__u64 gt_z = hept + (0x7f - 'Z') * ONES;
	__u64 upper = (ge_a ^ gt_z) & ~w & HIGHS;

	return w | (upper >> 2);
}

/* Eight bytes as one little-endian word, for comparing 8 bytes of buf at once. */
#define W8(a, b, c, d, e, f, g, h)                                                                    \
	((__u64)(a) | (__u64)(b) << 8 | (__u64)(c) << 16 | (__u64)(d) << 24 | (__u64)(e) << 32 |     \
	 (__u64)(f) << 40 | (__u64)(g) << 48 | (__u64)(h) << 56)

static __always_inline __u8 lower(__u8 c)
{
	return (__u8)(c - 'A') < 26 ? c + 32 : c;
}

/* Index of the first '\n' at or after s, or w->len when there is none. SWAR: 8 bytes per step. */
static __always_inline __u32 find_nl(struct scan_work *w, __u32 s)
{
	__u32 len = w->len, i = s, k, e = len;

	for (k = 0; k < SCAN_WORDS_MAX; k++) {
		__u64 t;

		if (i >= len)
			break;
		t = zero_bytes(sw(w, i) ^ (ONES * '\n'));
		if (t) {
			i += first_flagged(t);
			e = i < len ? i : len;
			break;
		}
		i += 8;
	}
	return forget(w, e);
}


#endif /* INDIGO_SCAN_WORK_BPF_H */
