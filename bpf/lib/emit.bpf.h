/* API note for P (added by the engine core, compatible): event_fill_sock(e, sk) fills family, addresses,
 * ports and socket_cookie from a kernel struct sock (BTF pointer, e.g. tp_btf arguments). Nothing else changed.
 *
 * Event emission, shared by every program that reports: sample by class, reserve, fill the common part,
 * let the caller fill the rest, submit. A failed reserve is counted, never silent. */
#ifndef INDIGO_EMIT_BPF_H
#define INDIGO_EMIT_BPF_H

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "lib/maps.bpf.h"
#include "lib/sock.bpf.h"

/* Event classes (EventClass in proto/indigo/v1/rules.proto). */
#define CLASS_REQUEST 1
#define CLASS_RESPONSE 2
#define CLASS_CONNECTION 3

/* Unread bytes in the ring above which a class is shed in the kernel, before the ring overflows: the
 * sampling controller (packages/api/src/sampling.ts) reacts within a control period or two, a burst fills
 * the ring faster than that, and an overflow loses events of every class alike. Shedding the less useful
 * classes first keeps request events (coverage, trace timelines) flowing. Shed events are counted as
 * sampled out, per class, and in CTR_EVENTS_SHED. */
static __always_inline __u64 shed_above(__u32 class)
{
	if (class == CLASS_CONNECTION)
		return EVENTS_RING_BYTES / 2;
	if (class == CLASS_RESPONSE)
		return EVENTS_RING_BYTES / 4 * 3;
	return EVENTS_RING_BYTES; /* requests: never shed, only the full ring refuses them */
}

/* Unread bytes in the ring at which a submit wakes the consumer. Only the submit whose record crosses it
 * wakes (an irq_work, i.e. a self-IPI, per event cost more than all the rest of the emission; waking on
 * every event above it would be as bad); no other submit does. The agent's drain loop wakes on its own
 * every EVENTS_DRAIN_MS (packages/agent/src/engine/engine.ts), so no event waits longer than that, and a
 * crossing missed by racing producers only delays the drain to that timeout. */
#define EVENTS_WAKE_BYTES (64 * 1024)
#define EVENTS_RECORD_BYTES (sizeof(struct dye_event) + 8) /* + the ring's record header */

/* true when this event is to be reported; counters are kept by the caller either way. *wake: the submit
 * must wake the consumer. One bpf_ringbuf_query serves both decisions (each helper call costs a call and a
 * return thunk on this kind of CPU): the unread bytes before this record's reserve, plus the record, are
 * what a query at submit would have seen. */
static __always_inline bool sample_keep(__u32 class, bool *wake)
{
	__u32 *rate = bpf_map_lookup_elem(&sampling, &class);
	__u64 avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);

	count(CTR_CLASS_WANTED + (class & 3));
	if (avail > shed_above(class)) {
		count(CTR_EVENTS_SHED);
		count(CTR_EVENTS_SAMPLED_OUT);
		count(CTR_CLASS_SAMPLED_OUT + (class & 3));
		return false;
	}
	*wake = avail < EVENTS_WAKE_BYTES && avail + EVENTS_RECORD_BYTES >= EVENTS_WAKE_BYTES;
	if (!rate || *rate >= SAMPLING_SCALE)
		return true;
	if (bpf_get_prandom_u32() % SAMPLING_SCALE < *rate)
		return true;
	count(CTR_EVENTS_SAMPLED_OUT);
	count(CTR_CLASS_SAMPLED_OUT + (class & 3));
	return false;
}

/* = bpf_get_current_cgroup_id() (task_dfl_cgroup(current)->kn->id) as plain BTF loads: no helper call,
 * no rcu_read_lock of its own (the program already runs under RCU). */
static __always_inline __u64 current_cgroup_id(struct task_struct *task)
{
	return task->cgroups->dfl_cgrp->kn->id;
}

/* Reserves an event with ts, pid/tid, comm, cgroup already set and the bytes before `zero_end` zeroed;
 * NULL when sampled out or the ring is full. *wake goes to event_submit(). */
static __always_inline struct dye_event *event_reserve_zeroed(__u32 class, const __u32 zero_end, bool *wake)
{
	struct task_struct *task;
	struct dye_event *e;

	if (!sample_keep(class, wake))
		return NULL;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(CTR_RINGBUF_RESERVE_FAILED);
		count(CTR_CLASS_RESERVE_FAILED + (class & 3));
		return NULL;
	}
	__builtin_memset(e, 0, zero_end);
	e->ts_ns = bpf_ktime_get_ns();
	/* = bpf_get_current_pid_tgid() and bpf_get_current_cgroup_id(), from the task as plain loads */
	task = bpf_get_current_task_btf();
	e->pid = task->tgid;
	e->tid = task->pid;
	e->cgroup_id = current_cgroup_id(task);
	/* = bpf_get_current_comm(), without its strscpy: task->comm is always NUL-padded (set_task_comm
	 * copies with strscpy_pad), and the decoder reads up to the first NUL */
	__builtin_memcpy(e->comm, task->comm, sizeof(e->comm));
	return e;
}

/* The whole event zeroed, then as above. */
static __always_inline struct dye_event *event_reserve(__u32 class, bool *wake)
{
	return event_reserve_zeroed(class, sizeof(struct dye_event), wake);
}

/* For a caller that writes method, trace_id and path in full itself: only what precedes them is zeroed. */
#define EVENT_PATH_END (__builtin_offsetof(struct dye_event, path) + DYE_EVENT_PATH_MAX)
static __always_inline struct dye_event *event_reserve_head(__u32 class, bool *wake)
{
	struct dye_event *e = event_reserve_zeroed(class, __builtin_offsetof(struct dye_event, method), wake);

	if (e && sizeof(*e) > EVENT_PATH_END) /* the struct's tail padding: no stale ring bytes */
		__builtin_memset((char *)e + EVENT_PATH_END, 0, sizeof(*e) - EVENT_PATH_END);
	return e;
}

static __always_inline void event_submit(struct dye_event *e, bool wake)
{
	bpf_ringbuf_submit(e, wake ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
	count(CTR_EVENTS_EMITTED);
}

/* false (counted) for an undyed event no consumer needs, unless the agent asked for every event. */
static __always_inline bool report_undyed(const struct dye_config *cfg)
{
	if (cfg->flags & CFG_F_REPORT_UNDYED)
		return true;
	count(CTR_UNDYED_SKIPPED);
	return false;
}

/* Family, addresses (network order), ports (host order) and cookie of a kernel socket. sk is a trusted BTF
 * pointer (tp_btf arguments): plain loads, no bpf_probe_read_kernel call per field. The address words not
 * written stay as event_reserve*() zeroed them. */
static __always_inline void event_fill_sock(struct dye_event *e, struct sock *sk)
{
	const struct sock_common *skc = &sk->__sk_common;
	__u16 family = skc->skc_family;

	e->family = family;
	e->sport = skc->skc_num;
	e->dport = bpf_ntohs(skc->skc_dport);
	if (family == 10 /* AF_INET6 */) {
		e->saddr[0] = skc->skc_v6_rcv_saddr.in6_u.u6_addr32[0];
		e->saddr[1] = skc->skc_v6_rcv_saddr.in6_u.u6_addr32[1];
		e->saddr[2] = skc->skc_v6_rcv_saddr.in6_u.u6_addr32[2];
		e->saddr[3] = skc->skc_v6_rcv_saddr.in6_u.u6_addr32[3];
		e->daddr[0] = skc->skc_v6_daddr.in6_u.u6_addr32[0];
		e->daddr[1] = skc->skc_v6_daddr.in6_u.u6_addr32[1];
		e->daddr[2] = skc->skc_v6_daddr.in6_u.u6_addr32[2];
		e->daddr[3] = skc->skc_v6_daddr.in6_u.u6_addr32[3];
	} else {
		e->saddr[0] = skc->skc_rcv_saddr;
		e->daddr[0] = skc->skc_daddr;
	}
	e->socket_cookie = sock_cookie(sk);
}

#endif /* INDIGO_EMIT_BPF_H */
