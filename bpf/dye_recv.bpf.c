// SPDX-License-Identifier: GPL-2.0
/* dye_recv: what a thread has just read. A read (ret > 0) from a TCP socket the peer dyed (sock_state
 * .ingress_dye, from the TCP option) on an accepted socket — a request — gives the reading thread that dye in
 * thread_state (task storage), for dye_config.inherit_window_ns; the first read of a new request from an
 * undyed accepted socket clears it. Replies read on connecting sockets neither set nor clear it.
 *
 * Request boundaries (one ingress event per request on keep-alive connections): a read starts a new
 * request (or response, on a connecting socket) when
 *   - it is the first read of the socket, or
 *   - the socket sent something since the last boundary (tcp write_seq moved: a response went out), or
 *   - the peer announced a different dye since the last boundary (the TCP option changed ingress_dye).
 * HTTP/1.x without pipelining alternates request and response, so each request gets exactly one event
 * with the dye the peer announced for it (0 for a non-cohort request after a cohort one: the peer's
 * option announced the change back to 0).
 *
 * Scope: only sockets with a sock_state are looked at; sock_ops (attached to the agent's cgroup) creates
 * one for every connection established there, connect4/6 for dyed connects. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "lib/emit.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define MSG_PEEK 2
#define IPPROTO_TCP 6

/* Where the last request boundary of a socket was. Private to this program. */
struct recv_mark {
	__u32 write_seq; /* tcp write_seq at the last boundary */
	__u32 dye;       /* ingress dye at the last boundary */
	__u32 seen;      /* 1 once a boundary was recorded */
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct recv_mark);
} recv_mark SEC(".maps");

static __always_inline void emit_ingress(struct sock *sk, const struct sock_state *st, __u32 dye)
{
	bool passive = st->flags & SOCK_F_PASSIVE;
	struct dye_config *cfg = dye_cfg();
	struct dye_event *e;
	bool wake;

	if (!cfg || (!dye && !report_undyed(cfg)))
		return;
	e = event_reserve(passive ? CLASS_REQUEST : CLASS_RESPONSE, &wake);
	if (!e)
		return;
	e->kind = passive ? EV_KIND_REQUEST : EV_KIND_RESPONSE;
	e->direction = EV_DIR_INGRESS;
	e->dye = dye;
	e->source = dye ? st->ingress_source : DYE_SRC_NONE;
	event_fill_sock(e, sk);
	event_submit(e, wake);
}

static __always_inline void set_thread(struct sock *sk, const struct sock_state *st, __u32 dye)
{
	struct thread_state *ts;

	ts = bpf_task_storage_get(&thread_state, bpf_get_current_task_btf(), NULL,
				  BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!ts) {
		count(CTR_STORAGE_FAILED);
		return;
	}
	ts->dye = dye;
	ts->source = st->ingress_source;
	ts->since_ns = bpf_ktime_get_ns();
	ts->from_cookie = sock_cookie(sk);
	count(CTR_INHERIT_SET);
}

static __always_inline void clear_thread(void)
{
	struct thread_state *ts = bpf_task_storage_get(&thread_state, bpf_get_current_task_btf(), NULL, 0);

	if (ts && ts->dye) {
		ts->dye = 0;
		ts->source = DYE_SRC_NONE;
		count(CTR_INHERIT_CLEARED);
	}
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(handle_sock_recv, struct sock *sk, int ret, int flags)
{
	struct tcp_sock *tp;
	struct sock_state *st;
	struct recv_mark *m;
	bool boundary;
	__u32 dye, seq;

	if (ret <= 0 || (flags & MSG_PEEK) || !sk)
		return 0;
	if (sk->sk_protocol != IPPROTO_TCP)
		return 0;
	st = bpf_sk_storage_get(&sock_state, sk, NULL, 0);
	if (!st)
		return 0;
	count(CTR_RECV_CALLS);
	tp = bpf_skc_to_tcp_sock(sk);
	if (!tp)
		return 0;
	dye = st->ingress_dye;
	seq = tp->write_seq;
	m = bpf_sk_storage_get(&recv_mark, sk, NULL, BPF_SK_STORAGE_GET_F_CREATE);
	if (!m) {
		count(CTR_STORAGE_FAILED);
		return 0;
	}
	boundary = !m->seen || m->write_seq != seq || m->dye != dye;
	if (boundary) {
		m->seen = 1;
		m->write_seq = seq;
		m->dye = dye;
		emit_ingress(sk, st, dye);
	}
	if (dye)
		count(CTR_RECV_DYED);
	/* Only a request read on an accepted socket says what the thread now serves. A reply read on a
	 * connecting socket says nothing about it: a dyed reply must not dye the next request an event loop
	 * sends (node's single thread serves cohort and non-cohort requests in turn), and an undyed reply
	 * (e.g. from a database) must not end the dyed request the thread is serving. */
	if (!(st->flags & SOCK_F_PASSIVE))
		return 0;
	if (dye)
		set_thread(sk, st, dye);
	else if (boundary)
		clear_thread();
	return 0;
}
