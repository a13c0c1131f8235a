/* Ring-buffer event: one per request or response the engine judged, and per dyed connect/accept.
 * packages/agent/src/events/decode-dye-event.ts is the only decoder; a test checks it against bytes made here. */
#ifndef INDIGO_DYE_EVENT_H
#define INDIGO_DYE_EVENT_H

#define DYE_EVENT_TRACE_ID_MAX 64
#define DYE_EVENT_PATH_MAX 96
#define DYE_EVENT_METHOD_MAX 8

/* Numbers of the DyeEventKind and Direction enums of proto/indigo/v1/dye_event.proto. */
#define EV_KIND_REQUEST 1
#define EV_KIND_RESPONSE 2
#define EV_KIND_CONNECT 3
#define EV_KIND_ACCEPT 4
#define EV_DIR_EGRESS 1
#define EV_DIR_INGRESS 2

struct dye_event {
	__u64 ts_ns;         /* bpf_ktime_get_ns() */
	__u64 cgroup_id;
	__u64 socket_cookie;
	__u32 pid;           /* tgid */
	__u32 tid;
	__u32 dye;           /* 0 = judged, not in any cohort */
	__u8 source;         /* DYE_SRC_* */
	__u8 direction;      /* EV_DIR_* */
	__u8 kind;           /* EV_KIND_* */
	__u8 family;         /* AF_INET (2) or AF_INET6 (10) */
	__u16 sport;         /* host order */
	__u16 dport;         /* host order */
	__u32 saddr[4];      /* network order; IPv4 in saddr[0] */
	__u32 daddr[4];
	__u16 status;        /* HTTP status of a response, else 0 */
	__u8 trace_id_len;
	__u8 path_len;
	__u8 method_len;
	__u8 pad[3];
	char comm[16];
	char method[DYE_EVENT_METHOD_MAX];
	char trace_id[DYE_EVENT_TRACE_ID_MAX];
	char path[DYE_EVENT_PATH_MAX];
};

#endif /* INDIGO_DYE_EVENT_H */
