// SPDX-License-Identifier: GPL-2.0
/* dye_send: the payload detection of every TCP send. tp_btf/tcp_sendmsg_locked sees send, sendto, sendmsg,
 * write and writev alike (they all reach tcp_sendmsg_locked) with the socket and the user's iov_iter;
 * fentry/kprobes are refused on this kernel and a syscall tracepoint would miss most of those calls.
 *
 * Per send: the first bytes (dye_config.scan_max_bytes) are read from msg->msg_iter (ITER_UBUF: one user
 * buffer; ITER_IOVEC: up to SCAN_IOV_MAX iovecs) behind the socket's carried partial line, and
 * lib/http_scan.bpf.h judges them:
 *   - a request whose header block ended (or was cut by the window): dye = first matching rule
 *     (DYE_SRC_PAYLOAD), else — only when it carries no trace id of its own — the thread's inherited dye
 *     within inherit_window_ns (DYE_SRC_INHERIT), else 0;
 *     sock_state.egress_dye/egress_source are set, SOCK_F_ANNOUNCE when it differs from announced_dye, and
 *     an egress REQUEST event carries method, path and trace id;
 *   - a status line: an egress RESPONSE event with the status and the dye of the request answered (the
 *     dye the peer announced for it, sock_state.ingress_dye);
 *   - the first send of a connection that is a TLS ClientHello: RULE_SNI → dye (DYE_SRC_SNI).
 * The tracepoint fires once per skb a send fills (inside tcp_sendmsg_locked's copy loop): the later calls
 * of one send are recognised by tcp write_seq + bytes left == the end recorded by the first, and skipped.
 * Scope: only sockets that already have a sock_state (sock_ops creates it in the agent's cgroup). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "lib/emit.bpf.h"
#include "lib/http_scan.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define SCAN_IOV_MAX 8
#define READ_END (SCAN_CARRY_MAX + SCAN_WINDOW_MAX) /* never write past this offset of buf */
#define STATUS_PROBE 16 /* bytes read first from a send outside a header block: "HTTP/1.x NNN" fits */


/* Copies `len` user bytes from `src` to buf[at..]; false when the read faulted. */
static __always_inline bool read_user(struct scan_work *w, __u64 at, __u64 len, const void *src)
{
	/* separate checks the verifier can follow (clang would fuse them) */
	at = forget(w, at);
	len = forget(w, len);
	if (at > READ_END || len > SCAN_WINDOW_MAX)
		return false;
	asm volatile("" : "+r"(len));
	return bpf_probe_read_user(&w->buf[at], len, src) == 0;
}

/* Where a send's bytes are (msg->msg_iter), kept in the scratch as plain numbers: the rest of the window
 * is read from inside the scan (scan_refill, in a bpf_loop callback), where msg is out of reach.
 * false (counted) for an iterator it cannot read. */
static __always_inline bool source_of(struct scan_work *w, const struct msghdr *msg)
{
	/* msg is a trusted BTF pointer here: direct (CO-RE relocated) loads, no helper calls */
	__u8 type = msg->msg_iter.iter_type;

	w->src_skip = msg->msg_iter.iov_offset;
	w->src_nr = 0;
	if (type == bpf_core_enum_value(enum iter_type, ITER_UBUF)) {
		w->src_base = (unsigned long)msg->msg_iter.ubuf;
		w->src_iovec = 0;
		return true;
	}
	if (type == bpf_core_enum_value(enum iter_type, ITER_IOVEC)) {
		w->src_base = (unsigned long)msg->msg_iter.__iov;
		w->src_nr = msg->msg_iter.nr_segs;
		w->src_iovec = 1;
		return true;
	}
	count(CTR_SEND_ITER_OTHER);
	return false;
}

struct iov_read {
	__u64 skip; /* bytes still to skip before `got` */
	__u32 off;
	__u32 got;
	__u32 want;
};

/* bpf_loop body: iovec k → buf, until `want` bytes are in. */
static long iov_read_cb(__u32 k, void *ctx)
{
	struct iov_read *x = ctx;
	struct scan_work *w = scan_work_get();
	struct iovec v;
	__u64 len;

	if (!w || k >= w->src_nr || x->got >= x->want)
		return 1;
	if (bpf_probe_read_kernel(&v, sizeof(v), (void *)(w->src_base + k * sizeof(v))))
		return 1;
	if (v.iov_len <= x->skip) {
		x->skip -= v.iov_len;
		return 0;
	}
	len = v.iov_len - x->skip;
	if (len > x->want - x->got)
		len = x->want - x->got;
	if (!read_user(w, x->off + x->got, len, v.iov_base + x->skip)) {
		count(CTR_SCAN_READ_FAILED);
		return 1;
	}
	x->got += len;
	x->skip = 0;
	return 0;
}

/* Bytes [from, want) of this send → buf[off + from..]. Returns `from` + bytes read (ITER_UBUF: `from` when
 * the read faulted). */
static __always_inline __u32 read_msg(struct scan_work *w, __u32 off, __u32 from, __u32 want)
{
	struct iov_read x = { .skip = w->src_skip + from, .off = off, .got = from, .want = want };

	if (from >= want)
		return from;
	if (!w->src_iovec) {
		if (!read_user(w, off + from, want - from, (void *)(w->src_base + w->src_skip + from))) {
			count(CTR_SCAN_READ_FAILED);
			return from;
		}
		return want;
	}
	bpf_loop(SCAN_IOV_MAX, iov_read_cb, &x, 0);
	return x.got;
}

static __always_inline __u32 scan_refill(struct scan_work *w, __u32 from, __u32 to)
{
	return read_msg(w, w->off, from, to);
}

/* The thread's inherited dye, if still inside the window. */
static __always_inline __u32 thread_dye(const struct dye_config *cfg)
{
	struct thread_state *ts = bpf_task_storage_get(&thread_state, bpf_get_current_task_btf(), NULL, 0);

	if (!ts || !ts->dye || bpf_ktime_get_ns() - ts->since_ns > cfg->inherit_window_ns)
		return 0;
	return ts->dye;
}

static __always_inline void set_egress(struct sock_state *st, __u32 dye, __u8 source)
{
	st->egress_dye = dye;
	st->egress_source = dye ? source : DYE_SRC_NONE;
	if (dye != st->announced_dye)
		st->flags |= SOCK_F_ANNOUNCE;
}

/* Not inlined: its callers (request, response after the status probe or after a scan, SNI) share one copy
 * of the event code, so a request's send and a response's send run the same instructions (i-cache: the
 * program was ~32 KB of JIT code with four copies of this). */
static __noinline int emit_event(struct sock *sk, const struct scan_work *w, __u32 kind, __u32 dye,
				 __u32 source)
{
	/* method, trace_id and path are written in full below, or zeroed here: not twice */
	struct dye_event *e;
	bool wake;

	e = event_reserve_head(kind == EV_KIND_RESPONSE ? CLASS_RESPONSE : CLASS_REQUEST, &wake);
	if (!e)
		return 0;
	e->kind = kind;
	e->direction = EV_DIR_EGRESS;
	e->dye = dye;
	e->source = source;
	event_fill_sock(e, sk);
	if (kind == EV_KIND_RESPONSE || w->tls) {
		e->status = kind == EV_KIND_RESPONSE ? w->status : 0;
		__builtin_memset((char *)e + __builtin_offsetof(struct dye_event, method), 0,
				 sizeof(*e) - __builtin_offsetof(struct dye_event, method));
	} else {
		e->trace_id_len = w->c.trace_id_len;
		e->method_len = w->c.method_len;
		e->path_len = w->c.path_len;
		__builtin_memcpy(e->trace_id, w->c.trace_id, sizeof(e->trace_id));
		__builtin_memcpy(e->method, w->c.method, sizeof(e->method));
		__builtin_memcpy(e->path, w->c.path, sizeof(e->path));
	}
	event_submit(e, wake);
	return 0;
}

static __always_inline void emit(struct sock *sk, const struct scan_work *w, const struct dye_config *cfg,
				 __u8 kind, __u32 dye, __u8 source)
{
	if (!dye && (kind == EV_KIND_RESPONSE || !w->c.trace_id_len) && !report_undyed(cfg))
		return;
	emit_event(sk, w, kind, dye, source);
}

static __always_inline void judge_request(struct sock *sk, struct sock_state *st, const struct scan_work *w,
					  const struct dye_config *cfg)
{
	__u32 dye = 0;
	__u8 source = DYE_SRC_NONE;

	if (w->c.best_slot != SCAN_NO_RULE && w->c.request_dye) {
		dye = w->c.request_dye;
		source = DYE_SRC_PAYLOAD;
		count(CTR_DYE_PAYLOAD);
	} else if (w->c.trace_id_len == 0) {
		/* Only a request that says nothing of its own trace inherits: one that carries a trace id no
		 * rule matched is outside every cohort, whatever the thread served before (an event loop
		 * sends cohort and non-cohort requests in turn). */
		dye = thread_dye(cfg);
		if (dye) {
			source = DYE_SRC_INHERIT;
			count(CTR_DYE_INHERIT);
		}
	}
	set_egress(st, dye, source);
	count(CTR_REQ_EGRESS);
	if (dye)
		count(CTR_REQ_EGRESS_DYED);
	emit(sk, w, cfg, EV_KIND_REQUEST, dye, source);
}

static __always_inline void judge_response(struct sock *sk, struct sock_state *st, const struct scan_work *w,
					   const struct dye_config *cfg)
{
	/* The dye of the request answered is what the peer announced for it (0 included). Not the thread's:
	 * runtimes that multiplex requests over threads (Go, event loops) answer on whichever thread is free. */
	__u32 dye = st->ingress_dye;
	__u8 source = st->ingress_source;

	set_egress(st, dye, source);
	count(CTR_RESP_EGRESS);
	if (dye)
		count(CTR_RESP_EGRESS_DYED);
	if (w->status >= 500)
		count(CTR_RESP_STATUS_5XX);
	emit(sk, w, cfg, EV_KIND_RESPONSE, dye, dye ? source : DYE_SRC_NONE);
}

SEC("tp_btf/tcp_sendmsg_locked")
int BPF_PROG(handle_tcp_sendmsg, struct sock *sk, struct msghdr *msg, struct sk_buff *skb, int size_goal)
{
	struct dye_config *cfg;
	struct sock_state *st;
	struct scan_work *w;
	struct tcp_sock *tp;
	__u32 seq, left, want, part, window, n;
	int off;
	bool first;

	st = bpf_sk_storage_get(&sock_state, sk, NULL, 0);
	if (!st)
		return 0;
	count(CTR_SEND_CALLS);
	cfg = dye_cfg();
	tp = bpf_skc_to_tcp_sock(sk);
	if (!cfg || !tp)
		return 0;
	seq = tp->write_seq;
	left = msg->msg_iter.count;
	if (left == 0)
		return 0;
	if (st->carry.end_seq == seq + left) {
		/* the same send, filling its next skb: already scanned */
		count(CTR_SEND_CONTINUED);
		return 0;
	}
	st->carry.end_seq = seq + left;
	if (skb && skb->len < size_goal)
		count(CTR_SEND_APPENDED);

	w = scan_work_get();
	if (!w)
		return 0;
	off = scan_load_carry(w, &st->carry);
	if (off < 0)
		return 0;
	window = scan_window(cfg);
	want = left < window ? left : window;
	first = !(st->flags & SOCK_F_SNI_DONE);
	st->flags |= SOCK_F_SNI_DONE;
	/* a ClientHello's server_name can sit anywhere in it: the first send is read whole */
	part = first || want < SCAN_FIRST_READ ? want : SCAN_FIRST_READ;
	if (!source_of(w, msg)) {
		scan_store_carry(w, &st->carry, false);
		return 0;
	}
	n = 0;
	if (!w->c.in_headers && (st->flags & SOCK_F_PASSIVE)) {
		/* A send made outside a header block starts with a status line (a response: nothing after it
		 * is looked at), a request line, or a ClientHello. Its first bytes tell a status line. Only
		 * on accepted sockets, which send responses: on a connecting one (requests) this would be one
		 * more user copy per send for nothing — scan_send tells a status line there. */
		__u32 probe = part < STATUS_PROBE ? part : STATUS_PROBE;

		n = read_msg(w, 0, 0, probe);
		if (n < probe) /* the read faulted (counted): nothing more is read */
			want = part = n;
		w->len = n;
		if (parse_status_line(w)) {
			w->more = left > n;
			count_n(CTR_SEND_BYTES_SCANNED, n);
			judge_response(sk, st, w, cfg);
			scan_store_carry(w, &st->carry, false);
			return 0;
		}
	}
	n = read_msg(w, off, n, part);
	if (n < part) /* the read faulted (counted): nothing more is read */
		want = n;
	w->off = off;
	w->got = n;
	w->want = want;
	w->left = left;
	w->len = off + n;
	w->more = left > n;
	w->resume = n < want;
	scan_send(w, cfg, first);
	n = w->got;
	count_n(CTR_SEND_BYTES_SCANNED, n);

	if (w->tls) {
		count(CTR_SNI_SEEN);
		if (w->sni_slot != SCAN_NO_RULE) {
			count(CTR_SNI_DYED);
			set_egress(st, w->sni_dye, DYE_SRC_SNI);
			emit(sk, w, cfg, EV_KIND_REQUEST, w->sni_dye, DYE_SRC_SNI);
		}
	} else if (w->judged) {
		judge_request(sk, st, w, cfg);
	} else if (w->response) {
		judge_response(sk, st, w, cfg);
	}
	scan_store_carry(w, &st->carry, false);
	return 0;
}
