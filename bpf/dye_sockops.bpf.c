// SPDX-License-Identifier: GPL-2.0
/* dye_sockops: carries a socket's dye to the peer in a TCP header option and reads the peer's.
 *
 * Option (8 bytes): kind 253 (RFC 6994 experimental), length 8, 16-bit ExID = dye_config.option_exid,
 * 32-bit dye, all in network order. Written on
 *   - the SYN of a socket whose sock_state was dyed before connect (cgroup/connect4/6, inheritance),
 *   - the SYN-ACK answering a SYN that carried it (echo of the SYN's dye, read from the SYN itself),
 *   - the next segment with data (or FIN) after the send path set SOCK_F_ANNOUNCE, when egress_dye differs
 *     from announced_dye (a new request on a pooled connection, a change back to 0 included), or after a
 *     SYN-ACK that did not echo the SYN's option (announced_dye back to 0: the peer did not take it);
 * and nowhere else: never on a pure ACK. Then announced_dye = egress_dye.
 * Read on receipt: PARSE_UNKNOWN_HDR_OPT_CB_FLAG makes the kernel call PARSE_HDR_OPT_CB only for segments
 * that carry an option it does not know; the SYN is read at PASSIVE_ESTABLISHED from the SYN the listener
 * saved (TCP_SAVE_SYN), the SYN-ACK at ACTIVE_ESTABLISHED from the skb in hand.
 *
 * The send path (tp_btf) cannot set sock_ops callback flags, so WRITE_HDR_OPT_CB_FLAG stays on for every
 * socket of the cgroup: HDR_OPT_LEN_CB runs once per outgoing segment and returns at once unless an
 * announcement is pending. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "lib/maps.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define SOL_SOCKET 1
#define SO_MARK 36
#define SOL_TCP 6
#define TCP_SAVE_SYN 27
#define AF_INET 2
#define AF_INET6 10
#define TCPHDR_FIN 0x01
#define TCPHDR_SYN 0x02
#define TCPHDR_ACK 0x10

#define DYE_OPT_KIND 253
#define DYE_OPT_LEN 8

struct dye_opt {
	__u8 kind;
	__u8 len;
	__be16 exid;
	__be32 dye;
} __attribute__((packed));

/* Finds our option in the SYN (flags BPF_LOAD_HDR_OPT_TCP_SYN; the segment in hand: seg_dye). 0 = found. */
static __always_inline int load_dye(struct bpf_sock_ops *skops, const struct dye_config *cfg, __u64 flags,
				    __u32 *dye)
{
	struct dye_opt opt = {
		.kind = DYE_OPT_KIND,
		.len = 4, /* search by kind + 2-byte ExID */
		.exid = bpf_htons(cfg->option_exid),
	};
	int ret = bpf_load_hdr_opt(skops, &opt, sizeof(opt), flags);

	if (ret != DYE_OPT_LEN || opt.len != DYE_OPT_LEN)
		return -1;
	*dye = bpf_ntohl(opt.dye);
	return 0;
}

/* Our option in the segment in hand, read in place instead of with bpf_load_hdr_opt: every parsed segment
 * (each request and each echoing response of the kernel bench) paid that helper's call and return thunk and
 * its search; without it sock_ops took ~120 ns less per round trip (bpf/README.md). The TCP header is
 * [skb_data, skb_data_end) in the option and established callbacks. Same outcome as the kernel's
 * bpf_search_tcp_opt: the first kind-253 option with our ExID decides (length 8 or not found); EOL, a
 * kind-253 option shorter than 4 bytes or a malformed length ends the search. A global function: verified
 * once, on its own; inlined, each of its exits was walked through the rest of the caller (1M instructions
 * exhausted). -1 = not found, else the dye. */
__noinline long long seg_dye_find(struct bpf_sock_ops *skops, __u32 exid)
{
	__u8 *data = (__u8 *)(long)skops->skb_data;
	__u8 *end = (__u8 *)(long)skops->skb_data_end;
	__u32 off = 20; /* sizeof(struct tcphdr); "& 63" below only tells the verifier it stays small */
	int i;

#pragma clang loop unroll(disable)
	for (i = 0; i < 40; i++) { /* at most 40 option bytes; every step consumes at least one */
		__u8 *op = data + off;
		__u8 len;

		if (op + 8 > end) /* our option needs 8 bytes: from here on, only shorter ones could follow */
			break;
		if (op[0] == 0) /* EOL */
			return -1;
		if (op[0] == 1) { /* NOP */
			off = (off + 1) & 63;
			continue;
		}
		len = op[1];
		if (len < 2 || op + len > end) /* malformed: the kernel's search gives up there too */
			return -1;
		if (op[0] == DYE_OPT_KIND) {
			if (len < 4)
				return -1;
			if (*(__u16 *)(op + 2) == (__u16)exid)
				return len == DYE_OPT_LEN ? (long long)bpf_ntohl(*(__be32 *)(op + 4)) : -1;
		}
		off = (off + len) & 63;
	}
	return -1;
}

static __always_inline int seg_dye(struct bpf_sock_ops *skops, const struct dye_config *cfg, __u32 *dye)
{
	long long found = seg_dye_find(skops, bpf_htons(cfg->option_exid));

	if (found < 0)
		return -1;
	*dye = (__u32)found;
	return 0;
}

/* Passive sockets serve the request their peer announced; active ones carry what they send. */
static __always_inline __u32 mark_dye(const struct sock_state *st)
{
	return (st->flags & SOCK_F_PASSIVE) ? st->ingress_dye : st->egress_dye;
}

/* SO_MARK follows the connection's dye under mark_base/mask; 0 restores an unmarked socket. Only called
 * from callbacks where bpf_setsockopt is allowed on a full socket (see bpf/README.md). */
static __always_inline void sync_mark(struct bpf_sock_ops *skops, const struct dye_config *cfg,
				      struct sock_state *st)
{
	__u32 dye = mark_dye(st);
	int mark = dye ? (cfg->mark_base & ~cfg->mark_mask) | (dye & cfg->mark_mask) : 0;

	if (!(cfg->flags & CFG_F_SET_SOCK_MARK) || (__u32)mark == st->mark)
		return;
	if (bpf_setsockopt(skops, SOL_SOCKET, SO_MARK, &mark, sizeof(mark))) {
		count(CTR_SOCK_MARK_FAILED);
		return;
	}
	st->mark = mark;
	count(CTR_SOCK_MARK_SET);
}

static __always_inline struct sock_state *state_of(struct bpf_sock_ops *skops, __u64 create)
{
	struct bpf_sock *sk = skops->sk;
	struct sock_state *st;

	if (!sk)
		return NULL;
	st = bpf_sk_storage_get(&sock_state, sk, NULL, create);
	if (!st && create)
		count(CTR_STORAGE_FAILED);
	return st;
}

static __always_inline void set_ingress(struct sock_state *st, __u32 dye)
{
	st->ingress_dye = dye;
	st->ingress_source = dye ? DYE_SRC_TCP_OPTION : DYE_SRC_NONE;
}

static __always_inline void on_established(struct bpf_sock_ops *skops, const struct dye_config *cfg,
					   bool passive, __u32 cb)
{
	struct sock_state *st = state_of(skops, BPF_SK_STORAGE_GET_F_CREATE);
	__u32 dye;

	count(CTR_ESTABLISHED);
	if (!st)
		return;
	if (passive) {
		st->flags |= SOCK_F_PASSIVE;
		if ((skops->bpf_sock_ops_cb_flags & cb) != cb) {
			/* The listener was there before the engine (no TCP_LISTEN_CB, so no flags to inherit and no
			 * saved SYN): from now on this connection's options are read and written. */
			count(CTR_LATE_LISTENER);
			bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags | cb);
		}
		/* The SYN, saved by the listener (TCP_SAVE_SYN); our SYN-ACK echoed this dye already. */
		if (!load_dye(skops, cfg, BPF_LOAD_HDR_OPT_TCP_SYN, &dye)) {
			count(CTR_OPT_PARSED_SYN);
			set_ingress(st, dye);
			st->announced_dye = dye;
		}
	} else if (!seg_dye(skops, cfg, &dye)) { /* skb = the SYN-ACK */
		count(CTR_OPT_PARSED_SYN);
		set_ingress(st, dye);
	} else if (st->announced_dye) {
		/* The SYN carried our dye but the SYN-ACK did not echo it: the peer did not take it (its listener
		 * predates its engine, or something stripped the option). As far as the peer knows this
		 * connection is undyed, so the next segment with data announces the dye again. */
		count(CTR_OPT_UNECHOED);
		st->announced_dye = 0;
		if (st->egress_dye)
			st->flags |= SOCK_F_ANNOUNCE;
	}
	sync_mark(skops, cfg, st);
}

extern void *bpf_cast_to_kern_ctx(void *obj) __ksym;

/* The sequence number of the segment in hand: the first field of its tcp_skb_cb, read from skb->cb a byte at
 * a time (BTF loads stay within one element of the array); bpf_cast_to_kern_ctx is rewritten by the
 * verifier into a plain move. false without an skb. */
static __always_inline bool segment_seq(struct bpf_sock_ops *skops, __u32 *seq)
{
	struct bpf_sock_ops_kern *kctx = bpf_cast_to_kern_ctx(skops);
	struct sk_buff *skb = kctx->skb;

	if (!skb)
		return false;
	/* cb[] is char: each byte as unsigned, or its sign would spread over the others */
	__u32 b0 = (__u8)skb->cb[0], b1 = (__u8)skb->cb[1], b2 = (__u8)skb->cb[2], b3 = (__u8)skb->cb[3];

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	*seq = b0 | b1 << 8 | b2 << 16 | b3 << 24;
#else
	*seq = b0 << 24 | b1 << 16 | b2 << 8 | b3;
#endif
	return true;
}

/* A segment sent before that must say again what was announced last (it may be the segment that announced
 * it, and the state moved on when it was first written):
 *   - a retransmission (RTO, tail-loss probe, fast retransmit) starts before snd_nxt, which the kernel
 *     advances only after transmitting new data;
 *   - the announcing segment itself, tried again after its own host refused it (a netfilter OUTPUT drop, a
 *     full qdisc: "not sent" as far as TCP knows, so snd_nxt did not move and it goes out again as new
 *     data, at the sequence number it was announced at). Any other segment written after it ends that. */
static __always_inline bool sent_before(struct bpf_sock_ops *skops, struct sock_state *st)
{
	__u32 seq;

	if (!segment_seq(skops, &seq))
		return false;
	if ((__s32)(seq - skops->snd_nxt) < 0)
		return true;
	if (!(st->flags & SOCK_F_ANNOUNCED_AT))
		return false;
	if (seq == st->announce_seq)
		return true;
	st->flags &= ~SOCK_F_ANNOUNCED_AT;
	return false;
}

/* What this segment must announce: -1 = nothing. *stp: the socket's state when it was looked up (data
 * segments), else NULL. *again: a segment sent before (sent_before), which says the last announcement again. */
static __always_inline __s64 pending_dye(struct bpf_sock_ops *skops, const struct dye_config *cfg,
					 struct sock_state **stp, bool *again)
{
	__u8 tcp_flags = skops->skb_tcp_flags;
	struct sock_state *st;
	__u32 dye;

	*stp = NULL;
	*again = false;
	if (!(cfg->flags & CFG_F_WRITE_OPTION))
		return -1;
	if ((tcp_flags & (TCPHDR_SYN | TCPHDR_ACK)) == (TCPHDR_SYN | TCPHDR_ACK)) {
		/* SYN-ACK: skops->sk is the request sock (no sk storage); echo the SYN's dye. */
		if (!load_dye(skops, cfg, BPF_LOAD_HDR_OPT_TCP_SYN, &dye) && dye)
			return dye;
		return -1;
	}
	/* Pure ACKs never carry the option (the MSS computation, without flags, is on_hdr_opt_len's). */
	if (tcp_flags && !(tcp_flags & (TCPHDR_SYN | TCPHDR_FIN)) && skops->skb_len == 0)
		return -1;
	st = state_of(skops, 0);
	*stp = st;
	if (!st)
		return -1;
	if (sent_before(skops, st)) {
		*again = true;
		return st->announced_dye;
	}
	if (!(st->flags & SOCK_F_ANNOUNCE))
		return -1;
	if (st->egress_dye == st->announced_dye) {
		/* Nothing new for the peer (e.g. two cohort requests in a row): no option. */
		st->flags &= ~SOCK_F_ANNOUNCE;
		return -1;
	}
	return st->egress_dye;
}

static __always_inline void on_hdr_opt_len(struct bpf_sock_ops *skops, const struct dye_config *cfg)
{
	struct sock_state *st;
	bool again;
	long err;

	if (!skops->skb_tcp_flags) {
		/* The MSS computation (tcp_current_mss: no skb, so no TCP flags): always leave room for the
		 * option. A send sizes its segments with the MSS it computed before the send path judged it, so
		 * reserving only while an announcement is pending left the announcing segment of a full-sized
		 * send 8 bytes over the path MTU (IpFragFails, a resend). Costs 8 bytes of every segment's
		 * payload (0.55 % at MSS 1448) in the agent's cgroup. */
		if (cfg->flags & CFG_F_WRITE_OPTION)
			bpf_reserve_hdr_opt(skops, DYE_OPT_LEN, 0);
		return;
	}
	if (pending_dye(skops, cfg, &st, &again) < 0)
		return;
	err = bpf_reserve_hdr_opt(skops, DYE_OPT_LEN, 0);
	if (err)
		count(CTR_OPT_RESERVE_FAILED); /* -ENOSPC: no room left in this header; tried again next segment */
}

static __always_inline void on_write_hdr_opt(struct bpf_sock_ops *skops, const struct dye_config *cfg)
{
	__u8 tcp_flags = skops->skb_tcp_flags;
	struct sock_state *st;
	struct dye_opt opt = { .kind = DYE_OPT_KIND, .len = DYE_OPT_LEN };
	bool again;
	__s64 dye = pending_dye(skops, cfg, &st, &again);

	if (dye < 0)
		return;
	opt.exid = bpf_htons(cfg->option_exid);
	opt.dye = bpf_htonl((__u32)dye);
	if (bpf_store_hdr_opt(skops, &opt, sizeof(opt), 0)) {
		count(CTR_OPT_STORE_FAILED); /* e.g. nothing reserved (-ENOSPC) */
		return;
	}
	if ((tcp_flags & (TCPHDR_SYN | TCPHDR_ACK)) == (TCPHDR_SYN | TCPHDR_ACK)) {
		count(CTR_OPT_WRITTEN_SYNACK);
		return;
	}
	if (again) { /* the announcement stands as it was: nothing to update */
		count(CTR_OPT_WRITTEN_AGAIN);
		return;
	}
	count(tcp_flags & TCPHDR_SYN ? CTR_OPT_WRITTEN_SYN : CTR_OPT_WRITTEN_DATA);
	if (!st) /* looked up by pending_dye(): every path that returns a dye >= 0 but the SYN-ACK's does */
		return;
	st->announced_dye = (__u32)dye;
	st->flags &= ~SOCK_F_ANNOUNCE;
	if (!(tcp_flags & TCPHDR_SYN) && segment_seq(skops, &st->announce_seq))
		st->flags |= SOCK_F_ANNOUNCED_AT;
	/* The socket mark follows a per-request dye change here, before ip_queue_xmit copies sk_mark into
	 * this very segment's skb->mark. */
	sync_mark(skops, cfg, st);
}

static __always_inline void on_parse_hdr_opt(struct bpf_sock_ops *skops, const struct dye_config *cfg)
{
	struct sock_state *st;
	__u32 dye;

	if (seg_dye(skops, cfg, &dye))
		return;
	count(CTR_OPT_PARSED);
	st = state_of(skops, BPF_SK_STORAGE_GET_F_CREATE);
	if (!st)
		return;
	set_ingress(st, dye);
	sync_mark(skops, cfg, st);
}

SEC("sockops")
int handle_sock_ops(struct bpf_sock_ops *skops)
{
	const __u32 cb = BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG | BPF_SOCK_OPS_PARSE_UNKNOWN_HDR_OPT_CB_FLAG;
	struct dye_config *cfg;
	int one = 1;

	count(CTR_SOCKOPS_CALLS);
	if (skops->family != AF_INET && skops->family != AF_INET6)
		return 1;
	cfg = dye_cfg();
	if (!cfg)
		return 1;
	switch (skops->op) {
	case BPF_SOCK_OPS_TCP_LISTEN_CB:
		/* Children inherit the listener's callback flags; the saved SYN is read at PASSIVE_ESTABLISHED. */
		bpf_setsockopt(skops, SOL_TCP, TCP_SAVE_SYN, &one, sizeof(one));
		bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags | cb);
		break;
	case BPF_SOCK_OPS_TCP_CONNECT_CB:
		/* Before the SYN is built: the SYN carries the option when connect() dyed the socket. */
		bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags | cb);
		break;
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		on_established(skops, cfg, false, cb);
		break;
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		on_established(skops, cfg, true, cb);
		break;
	case BPF_SOCK_OPS_HDR_OPT_LEN_CB:
		on_hdr_opt_len(skops, cfg);
		break;
	case BPF_SOCK_OPS_WRITE_HDR_OPT_CB:
		on_write_hdr_opt(skops, cfg);
		break;
	case BPF_SOCK_OPS_PARSE_HDR_OPT_CB:
		on_parse_hdr_opt(skops, cfg);
		break;
	}
	return 1;
}
