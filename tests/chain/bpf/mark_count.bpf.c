// SPDX-License-Identifier: GPL-2.0
/* The chain test's own witness of skb->mark at tc egress: attached after the engine's tc program (which
 * returns TC_ACT_UNSPEC, so later filters run), it counts IPv4 TCP packets per skb->mark in a hash map the test
 * reads back with bpftool. It changes nothing and lets every packet through (TC_ACT_UNSPEC). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} mark_counts SEC(".maps");

SEC("tc")
int count_marks(struct __sk_buff *skb)
{
	__u32 mark = skb->mark;
	__u64 one = 1;
	__u64 *n;
	__u8 proto = 0;

	/* IPv4 TCP only (veth: Ethernet header, then IP; protocol byte at 14 + 9). */
	if (skb->protocol != __builtin_bswap16(0x0800))
		return -1;
	if (bpf_skb_load_bytes(skb, 14 + 9, &proto, 1) || proto != 6)
		return -1;
	n = bpf_map_lookup_elem(&mark_counts, &mark);

	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&mark_counts, &mark, &one, BPF_NOEXIST);
	return -1; /* TC_ACT_UNSPEC */
}

char LICENSE[] SEC("license") = "GPL";
