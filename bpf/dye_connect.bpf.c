// SPDX-License-Identifier: GPL-2.0
/* dye_connect: a thread that has just read a dyed request passes the dye on to the TCP connections it
 * opens, within dye_config.inherit_window_ns of that read: the new socket gets sock_state.egress_dye (source
 * inherit) and SOCK_F_ANNOUNCE before the SYN is built, so dye_sockops writes the option on the SYN. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "lib/emit.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define SOCK_STREAM 1
#define IPPROTO_TCP 6
#define AF_INET 2
#define AF_INET6 10

static __always_inline void on_connect(struct bpf_sock_addr *ctx, __u32 family)
{
	struct dye_config *cfg = dye_cfg();
	struct thread_state *ts;
	struct sock_state *st;
	struct bpf_sock *sk;
	struct dye_event *e;
	bool wake;
	__u64 now;

	if (!cfg || ctx->type != SOCK_STREAM || ctx->protocol != IPPROTO_TCP)
		return;
	ts = bpf_task_storage_get(&thread_state, bpf_get_current_task_btf(), NULL, 0);
	if (!ts || !ts->dye)
		return;
	now = bpf_ktime_get_ns();
	if (now - ts->since_ns > cfg->inherit_window_ns) {
		count(CTR_INHERIT_EXPIRED);
		return;
	}
	sk = ctx->sk;
	if (!sk)
		return;
	st = bpf_sk_storage_get(&sock_state, sk, NULL, BPF_SK_STORAGE_GET_F_CREATE);
	if (!st) {
		count(CTR_STORAGE_FAILED);
		return;
	}
	st->egress_dye = ts->dye;
	st->egress_source = DYE_SRC_INHERIT;
	st->flags |= SOCK_F_ANNOUNCE;
	count(CTR_CONNECT_DYED);

	e = event_reserve(CLASS_CONNECTION, &wake);
	if (!e)
		return;
	e->kind = EV_KIND_CONNECT;
	e->direction = EV_DIR_EGRESS;
	e->dye = ts->dye;
	e->source = DYE_SRC_INHERIT;
	e->family = family;
	e->dport = bpf_ntohs(ctx->user_port);
	e->socket_cookie = bpf_get_socket_cookie(ctx);
	if (family == AF_INET) {
		e->daddr[0] = ctx->user_ip4;
	} else {
		e->daddr[0] = ctx->user_ip6[0];
		e->daddr[1] = ctx->user_ip6[1];
		e->daddr[2] = ctx->user_ip6[2];
		e->daddr[3] = ctx->user_ip6[3];
	}
	event_submit(e, wake);
}

SEC("cgroup/connect4")
int handle_connect4(struct bpf_sock_addr *ctx)
{
	on_connect(ctx, AF_INET);
	return 1; /* 1 = let connect() proceed */
}

SEC("cgroup/connect6")
int handle_connect6(struct bpf_sock_addr *ctx)
{
	on_connect(ctx, AF_INET6);
	return 1;
}
