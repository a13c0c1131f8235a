// SPDX-License-Identifier: GPL-2.0
/* The floor of the kernel benchmarks: empty programs on exactly the hooks the engine uses, with the same
 * program names and maps, so the agent attaches them the same way. Their run time is what merely being
 * on those hooks costs; the engine's eBPF time is reported as a ratio to it (bench/kernel.bench.ts).
 *
 * Built a second time as floor_option.bpf.c, with FLOOR_OPTION_CALLBACKS: the same empty programs, but
 * sock_ops asks for the header-option callbacks the engine needs on every connection. The kernel then
 * calls it for every MSS computation and every outgoing segment (and for every incoming one carrying an
 * unknown option), and it returns at once: what any carrier of a per-request dye in the TCP header pays
 * before doing anything, since the send path cannot turn those callbacks on when a dye changes. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "lib/maps.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* dye_recv's private map, so the loader finds (and pins) every map it expects. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u32[3]);
} recv_mark SEC(".maps");

SEC("tp_btf/tcp_sendmsg_locked")
int BPF_PROG(handle_tcp_sendmsg, struct sock *sk, struct msghdr *msg, struct sk_buff *skb, int size_goal)
{
	return 0;
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(handle_sock_recv, struct sock *sk, int ret, int flags)
{
	return 0;
}

SEC("sockops")
int handle_sock_ops(struct bpf_sock_ops *skops)
{
#ifdef FLOOR_OPTION_CALLBACKS
	switch (skops->op) {
	case BPF_SOCK_OPS_TCP_LISTEN_CB:
	case BPF_SOCK_OPS_TCP_CONNECT_CB:
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags |
						 BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG |
						 BPF_SOCK_OPS_PARSE_UNKNOWN_HDR_OPT_CB_FLAG);
		break;
	}
#endif
	return 1;
}

SEC("cgroup/connect4")
int handle_connect4(struct bpf_sock_addr *ctx)
{
	return 1;
}

SEC("cgroup/connect6")
int handle_connect6(struct bpf_sock_addr *ctx)
{
	return 1;
}

SEC("tc")
int handle_tc_egress(struct __sk_buff *skb)
{
	return 0; /* TC_ACT_OK */
}
