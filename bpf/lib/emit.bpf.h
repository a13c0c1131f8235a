/* Event emission, shared by every program that reports: sample by class, reserve, fill the common part,
 * let the caller fill the rest, submit. A failed reserve is counted, never silent. */
#ifndef INDIGO_EMIT_BPF_H
#define INDIGO_EMIT_BPF_H

#include "lib/maps.bpf.h"

/* Event classes (EventClass in proto/indigo/v1/rules.proto). */
#define CLASS_REQUEST 1
#define CLASS_RESPONSE 2
#define CLASS_CONNECTION 3

/* true when this event is to be reported; counters are kept by the caller either way. */
static __always_inline bool sample_keep(__u32 class)
{
	__u32 *rate = bpf_map_lookup_elem(&sampling, &class);

	if (!rate || *rate >= SAMPLING_SCALE)
		return true;
	if (bpf_get_prandom_u32() % SAMPLING_SCALE < *rate)
		return true;
	count(CTR_EVENTS_SAMPLED_OUT);
	return false;
}

/* Reserves an event with ts, pid/tid, comm, cgroup already set; NULL when sampled out or the ring is full. */
static __always_inline struct dye_event *event_reserve(__u32 class)
{
	struct dye_event *e;
	__u64 id;

	if (!sample_keep(class))
		return NULL;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(CTR_RINGBUF_RESERVE_FAILED);
		return NULL;
	}
	__builtin_memset(e, 0, sizeof(*e));
	id = bpf_get_current_pid_tgid();
	e->ts_ns = bpf_ktime_get_ns();
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->cgroup_id = bpf_get_current_cgroup_id();
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	return e;
}

static __always_inline void event_submit(struct dye_event *e)
{
	bpf_ringbuf_submit(e, 0);
	count(CTR_EVENTS_EMITTED);
}

#endif /* INDIGO_EMIT_BPF_H */
