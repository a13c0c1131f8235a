// SPDX-License-Identifier: GPL-2.0
/* mark_probe: a test-only tc classifier that counts packets by skb->mark. Attached after the engine's
 * handle_tc_egress (which returns TC_ACT_UNSPEC), it is an observer independent of the engine's own
 * counters; this kernel has neither cls_fw nor u32 mark matching nor em_meta to do it without BPF. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} marks SEC(".maps");

SEC("tc")
int count_marks(struct __sk_buff *skb)
{
	__u32 mark = skb->mark;
	__u64 one = 1, *n = bpf_map_lookup_elem(&marks, &mark);

	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&marks, &mark, &one, BPF_NOEXIST);
	return -1; /* TC_ACT_UNSPEC */
}
