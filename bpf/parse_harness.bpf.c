// SPDX-License-Identifier: GPL-2.0
/* parse_harness: the payload scanner of lib/http_scan.bpf.h under BPF_PROG_TEST_RUN. Not part of
 * indigo.bpf.o. A tc program treats the test's data_in as one send on one socket:
 *   data_in = 14 bytes (a dummy Ethernet header, ignored) + the bytes the application sends.
 * The socket's state is harness_state[0] (a struct sock_state, the same carry dye_send keeps in sk storage):
 * two runs in a row are two sends on the same socket; the test zeroes it to start a new connection.
 * Rules and config come from the same rules/dye_config maps as the engine. The outcome of the last run is
 * harness_result[0] (struct harness_result below; packages/agent/src/rules/harness.ts decodes it). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "lib/http_scan.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define HARNESS_HDR 14

struct harness_result {
	__u32 runs;          /* test runs so far (the test checks its run was the one recorded) */
	__u32 dye;           /* request dye when judged (0 = no rule), else SNI dye */
	__u8 source;         /* DYE_SRC_PAYLOAD / DYE_SRC_SNI / DYE_SRC_NONE */
	__u8 judged;
	__u8 truncated;
	__u8 response;
	__u16 status;
	__u8 tls;
	__u8 best_slot;
	__u8 in_headers;     /* carry after the run */
	__u8 skip_line;
	__u16 carry_len;
	__u32 lines;
	__u32 scanned;       /* bytes of this send put in the window */
	__u8 trace_id_len;
	__u8 method_len;
	__u8 path_len;
	__u8 sni_len;
	char trace_id[64];
	char method[8];
	char path[96];
	char sni[96];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sock_state);
} harness_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct harness_result);
} harness_result SEC(".maps");

/* The whole payload is loaded into buf up front; the scan is shown only the first part, as dye_send does,
 * and scan_more() then reveals the rest. */
static __always_inline __u32 scan_refill(struct scan_work *w, __u32 from, __u32 to)
{
	return to;
}

SEC("tc")
int harness_send(struct __sk_buff *skb)
{
	struct harness_result *res;
	struct sock_state *st;
	struct dye_config *cfg;
	struct scan_work *w;
	__u32 zero = 0, window, runs;
	__u64 part;
	__u64 n = 0; /* 64-bit: no zero-extension copies the verifier cannot relate to the call argument */
	int off;
	bool first;

	w = scan_work_get();
	st = bpf_map_lookup_elem(&harness_state, &zero);
	res = bpf_map_lookup_elem(&harness_result, &zero);
	cfg = dye_cfg();
	if (!w || !st || !res || !cfg)
		return 0;
	runs = res->runs + 1;
	__builtin_memset(res, 0, sizeof(*res));
	res->runs = runs;

	if (skb->len > HARNESS_HDR)
		n = skb->len - HARNESS_HDR;
	window = scan_window(cfg);
	off = scan_load_carry(w, &st->carry);
	if (off < 0)
		return 0;
	if (n > window) {
		n = window;
		w->more = 1;
	}
	/* two separate checks (clang would fuse them into one the verifier cannot follow) */
	n = forget(w, n);
	if (n > SCAN_WINDOW_MAX)
		n = 0;
	asm volatile("" : "+r"(n));
	if (n > 0 && bpf_skb_load_bytes(skb, HARNESS_HDR, &w->buf[off & (SCAN_CARRY_MAX * 2 - 1)], n) < 0)
		n = 0;
	first = !(st->flags & SOCK_F_SNI_DONE);
	st->flags |= SOCK_F_SNI_DONE;
	/* as dye_send: the first SCAN_FIRST_READ bytes of the window, the rest when a line runs past them */
	part = first || n < SCAN_FIRST_READ ? n : SCAN_FIRST_READ;
	w->off = off;
	w->got = part;
	w->want = n;
	w->left = w->more ? n + 1 : n;
	w->len = off + part;
	w->more = w->left > part;
	w->resume = part < n;
	scan_send(w, cfg, first);
	n = w->got;

	res->scanned = n;
	res->judged = w->judged;
	res->truncated = w->truncated;
	res->response = w->response;
	res->status = w->status;
	res->tls = w->tls;
	res->lines = w->lines;
	if (w->tls && w->sni_slot != SCAN_NO_RULE) {
		res->dye = w->sni_dye;
		res->source = DYE_SRC_SNI;
	} else if (w->judged && w->c.best_slot != SCAN_NO_RULE) {
		res->dye = w->c.request_dye;
		res->source = DYE_SRC_PAYLOAD;
	}
	res->best_slot = w->c.best_slot;
	res->in_headers = w->c.in_headers;
	res->skip_line = w->c.skip_line;
	res->carry_len = w->c.len;
	res->trace_id_len = w->c.trace_id_len;
	res->method_len = w->c.method_len;
	res->path_len = w->c.path_len;
	res->sni_len = w->sni_len;
	__builtin_memcpy(res->trace_id, w->c.trace_id, sizeof(res->trace_id));
	__builtin_memcpy(res->method, w->c.method, sizeof(res->method));
	__builtin_memcpy(res->path, w->c.path, sizeof(res->path));
	__builtin_memcpy(res->sni, w->sni, sizeof(res->sni));
	scan_store_carry(w, &st->carry, true);
	return 0;
}
