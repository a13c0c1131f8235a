// SPDX-License-Identifier: GPL-2.0
/* The floor of the kernel benchmarks: empty programs on exactly the hooks the engine uses, with the same
 * program names and maps, so the agent attaches them the same way. Their run time is what merely being
 * on those hooks costs; the engine's eBPF time is reported as a ratio to it (bench/kernel.bench.ts). */
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
