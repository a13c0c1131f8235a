/* API note for P (engine core): the config accessor is dye_cfg(), not config(): vmlinux.h (6.18) has
 * `typedef struct config_s config`, so config() did not compile.
 *
 * The engine's maps, included by every unit of indigo.bpf.o. __weak identical definitions are merged into
 * one map each when `bpftool gen object` links the units (checked with bpftool 7.1 / libbpf 1.1). */
#ifndef INDIGO_MAPS_BPF_H
#define INDIGO_MAPS_BPF_H

#include "dye_counters.h"
#include "dye_event.h"
#include "dye_rules.h"
#include "dye_state.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dye_config);
} dye_config SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * DYE_MAX_RULES);
	__type(key, __u32);
	__type(value, struct dye_rule);
} rules SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SAMPLING_CLASSES);
	__type(key, __u32);
	__type(value, __u32);
} sampling SEC(".maps") __weak;

/* Per-socket state lives in sk storage: freed with the socket; sk->sk_user_data belongs to in-kernel
 * users such as TLS and is not writable from eBPF. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sock_state);
} sock_state SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct thread_state);
} thread_state SEC(".maps") __weak;

/* 16 MiB: ~60 000 events, ~0.3 s at 200 000 events/s. The agent drains it from one JS thread that a busy
 * 2-core node can leave unscheduled for tens of ms; with 4 MiB (~75 ms) 10-25 % of the events of the agent
 * benchmark were reserve failures, with 16 MiB next to none (bench/README.md). A pinned ring of another
 * size cannot be reused: an agent built with a new size needs its old pins removed (a stop/start). */
#define EVENTS_RING_BYTES (16 * 1024 * 1024)
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, EVENTS_RING_BYTES);
} events SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CTR_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps") __weak;

static __always_inline void count(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &slot);

	/* Atomic although per-CPU: a softirq callback can interrupt a process-context one on the same CPU,
	 * and these counters must be exact. */
	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline void count_n(__u32 slot, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &slot);

	if (v)
		__sync_fetch_and_add(v, n);
}

static __always_inline struct dye_config *dye_cfg(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&dye_config, &zero);
}

#endif /* INDIGO_MAPS_BPF_H */
