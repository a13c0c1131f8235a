// SPDX-License-Identifier: GPL-2.0
/* dye_adopt: takes in the TCP connections of the agent's cgroup that were established before the engine
 * was attached. No sock_ops callback ever runs on them (the flags are set at LISTEN/CONNECT/ESTABLISHED),
 * and the send path only judges sockets that have a sock_state, so without this a pooled connection opened
 * before the agent started (a service's keep-alive pool, a gRPC channel) would never carry a dye.
 *
 * An iter/tcp program the loader runs once per network namespace of the cgroup's processes, right after
 * attaching sock_ops: the tcp iterator walks the listening sockets first, then the established ones. It
 * notes the ports the cgroup listens on (netns, port); then, for each established socket of the cgroup
 * without a sock_state, it creates one (passive when its local port is a noted listening port: it serves
 * the requests its peer announces) and turns on the option callbacks with bpf_setsockopt
 * (TCP_BPF_SOCK_OPS_CB_FLAGS, 6.10+). From then on the connection is judged, announced and read like one
 * established under the engine. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "lib/maps.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define SOL_TCP 6
#define AF_INET 2
#define AF_INET6 10
#define TCP_ESTABLISHED 1
#define TCP_LISTEN 10
/* cgroup nesting the walk up from a socket's cgroup to the agent's looks through */
#define ADOPT_MAX_DEPTH 32

/* The agent's cgroup (its id: the inode of its cgroup-v2 directory), written by the loader. */
struct adopt_scope {
	__u64 cgroup_id;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct adopt_scope);
} adopt_scope SEC(".maps");

struct listen_key {
	__u32 netns;
	__u32 port;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct listen_key);
	__type(value, __u8);
} adopt_listeners SEC(".maps");

static __always_inline bool in_scope(struct sock *sk, __u64 scope)
{
	struct cgroup *cg = sk->sk_cgrp_data.cgroup;

	for (int i = 0; i < ADOPT_MAX_DEPTH && cg; i++) {
		if (cg->kn && cg->kn->id == scope)
			return true;
		/* a cgroup's `self` css has the parent's `self` css as parent, and each css knows its cgroup */
		struct cgroup_subsys_state *parent = cg->self.parent;

		cg = parent ? parent->cgroup : NULL;
	}
	return false;
}

SEC("iter/tcp")
int adopt_tcp(struct bpf_iter__tcp *ctx)
{
	const __u32 cb = BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG | BPF_SOCK_OPS_PARSE_UNKNOWN_HDR_OPT_CB_FLAG;
	struct sock_common *skc = ctx->sk_common;
	struct listen_key key = {};
	struct adopt_scope *scope;
	struct sock_state *st;
	struct tcp_sock *tp;
	struct sock *sk;
	__u32 zero = 0;
	int flags;

	if (!skc || (skc->skc_family != AF_INET && skc->skc_family != AF_INET6))
		return 0;
	scope = bpf_map_lookup_elem(&adopt_scope, &zero);
	tp = bpf_skc_to_tcp_sock(skc);
	if (!scope || !tp)
		return 0;
	sk = (struct sock *)tp;
	if (!in_scope(sk, scope->cgroup_id))
		return 0;
	key.netns = skc->skc_net.net->ns.inum;
	key.port = skc->skc_num;
	if (skc->skc_state == TCP_LISTEN) {
		__u8 one = 1;

		bpf_map_update_elem(&adopt_listeners, &key, &one, BPF_ANY);
		return 0;
	}
	if (skc->skc_state != TCP_ESTABLISHED)
		return 0;
	st = bpf_sk_storage_get(&sock_state, sk, NULL, 0);
	if (st) /* established under the engine, or adopted by an earlier run */
		return 0;
	st = bpf_sk_storage_get(&sock_state, sk, NULL, BPF_SK_STORAGE_GET_F_CREATE);
	if (!st) {
		count(CTR_STORAGE_FAILED);
		return 0;
	}
	if (bpf_map_lookup_elem(&adopt_listeners, &key))
		st->flags |= SOCK_F_PASSIVE;
	flags = tp->bpf_sock_ops_cb_flags | cb;
	if (bpf_setsockopt(tp, SOL_TCP, TCP_BPF_SOCK_OPS_CB_FLAGS, &flags, sizeof(flags))) {
		count(CTR_ADOPT_FAILED);
		return 0;
	}
	count(CTR_ADOPTED);
	return 0;
}
