// SPDX-License-Identifier: GPL-2.0
/* sock_dye: the seed of the dye engine. A cgroup sock_ops program that gives
 * every TCP connection established in its cgroup (both ends) a per-socket dye,
 * optionally mirrors it into SO_MARK, and counts every callback exactly. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "sock_dye.h"

char LICENSE[] SEC("license") = "GPL";

/* uapi socket constants are macros, so vmlinux.h does not carry them. */
#define SOL_SOCKET 1
#define SO_MARK 36

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sock_dye_config);
} dye_config SEC(".maps");

/* Per-socket state lives in sk storage: the kernel frees it with the socket,
 * and sk->sk_user_data belongs to in-kernel users such as TLS. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sock_dye);
} sock_dye SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SOCK_DYE_CTR_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

static __always_inline void count(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &slot);

	/* Atomic although per-CPU: a softirq callback (e.g. ACTIVE_ESTABLISHED on
	 * loopback) can interrupt a process-context one on the same CPU, and these
	 * counters must be exact. */
	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline void set_mark(struct bpf_sock_ops *skops, const struct sock_dye_config *cfg,
				     __u32 dye)
{
	int mark = (cfg->mark_base & ~cfg->mark_mask) | (dye & cfg->mark_mask);

	if (bpf_setsockopt(skops, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)))
		count(SOCK_DYE_CTR_MARK_FAILED);
	else
		count(SOCK_DYE_CTR_MARKED);
}

static __always_inline void on_established(struct bpf_sock_ops *skops)
{
	struct sock_dye init = {};
	struct sock_dye *state;
	struct bpf_sock *sk;
	__u32 zero = 0;
	struct sock_dye_config *cfg = bpf_map_lookup_elem(&dye_config, &zero);

	sk = skops->sk;
	if (!cfg || !sk)
		return;

	/* A dye set earlier (by a later detection stage) wins over the default. */
	state = bpf_sk_storage_get(&sock_dye, sk, 0, 0);
	if (!state && cfg->default_dye) {
		init.dye = cfg->default_dye;
		init.source = SOCK_DYE_SRC_CGROUP_DEFAULT;
		state = bpf_sk_storage_get(&sock_dye, sk, &init, BPF_SK_STORAGE_GET_F_CREATE);
		if (!state) {
			count(SOCK_DYE_CTR_STORAGE_FAILED);
			return;
		}
	}
	if (!state || !state->dye) {
		count(SOCK_DYE_CTR_UNDYED);
		return;
	}
	count(SOCK_DYE_CTR_DYED);
	if (cfg->flags & SOCK_DYE_F_SET_MARK)
		set_mark(skops, cfg, state->dye);
}

SEC("sockops")
int handle_sock_ops(struct bpf_sock_ops *skops)
{
	__u32 op = skops->op;

	count(op < SOCK_DYE_OP_SLOTS ? op : SOCK_DYE_CTR_OP_OTHER);
	if (skops->family != 2 /* AF_INET */ && skops->family != 10 /* AF_INET6 */)
		return 1;
	if (op == BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB || op == BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB)
		on_established(skops);
	/* 1 = ok; sock_ops return values other than 1 are reserved. */
	return 1;
}
