// SPDX-License-Identifier: GPL-2.0
/* dye_tc: tc egress (clsact) sets skb->mark = (mark_base & ~mark_mask) | (dye & mark_mask) on every packet
 * of a dyed socket, per packet, from the socket's sock_state (sk storage is readable from sched_cls on
 * this kernel through skb->sk + bpf_sk_fullsock). The dye is the connection's: a connecting socket's
 * egress dye, an accepted socket's ingress dye (the request it serves). Packets without a full socket
 * (time-wait, request socks answering SYNs) and undyed sockets pass untouched. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "lib/maps.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* TC_ACT_UNSPEC: go on with the next filter, so the engine never short-circuits the node's own tc filters. */
#define TC_ACT_UNSPEC (-1)

SEC("tc")
int handle_tc_egress(struct __sk_buff *skb)
{
	struct dye_config *cfg = dye_cfg();
	struct sock_state *st;
	struct bpf_sock *sk;
	__u32 dye;

	count(CTR_TC_PACKETS);
	if (!cfg || !(cfg->flags & CFG_F_SET_SKB_MARK))
		return TC_ACT_UNSPEC;
	sk = skb->sk;
	if (!sk)
		return TC_ACT_UNSPEC;
	sk = bpf_sk_fullsock(sk);
	if (!sk)
		return TC_ACT_UNSPEC;
	st = bpf_sk_storage_get(&sock_state, sk, NULL, 0);
	if (!st)
		return TC_ACT_UNSPEC;
	dye = (st->flags & SOCK_F_PASSIVE) ? st->ingress_dye : st->egress_dye;
	if (!dye)
		return TC_ACT_UNSPEC;
	skb->mark = (cfg->mark_base & ~cfg->mark_mask) | (dye & cfg->mark_mask);
	count(CTR_TC_MARKED);
	return TC_ACT_UNSPEC;
}
