/* One request header line of the payload scanner (lib/http_scan.bpf.h): its name, the trace id when it is a
 * configured trace header (and the id rules run on it), and the header rules on its name and value. */
#ifndef INDIGO_HTTP_HEADER_BPF_H
#define INDIGO_HTTP_HEADER_BPF_H

#include "lib/rule_match.bpf.h"

/* High bit set in the bytes of x that end a trace id: ' ', '\t', ';', ',' and, in a traceparent, '-'. Only
 * the lowest flagged byte is exact (zero_bytes()), which is the one used. */
static __always_inline __u64 id_delims(__u64 x, bool traceparent)
{
	__u64 t = zero_bytes(x ^ (ONES * ' ')) | zero_bytes(x ^ (ONES * '\t')) | zero_bytes(x ^ (ONES * ';')) |
		  zero_bytes(x ^ (ONES * ','));

	if (traceparent)
		t |= zero_bytes(x ^ (ONES * '-'));
	return t;
}

#define TRACE_ID_WORDS (TRACE_ID_MAX / 8 + 1) /* one word more than an id may have: tells a longer one */

/* The trace id in the value [v, ve) of a trace header; the first trace header of a request wins. Searched
 * and copied 8 bytes at a time: byte by byte, this was the costliest part of a header line. */
static __always_inline void take_trace_id(struct scan_work *w, __u32 v, __u32 ve, bool traceparent)
{
	__u32 n = TRACE_ID_WORDS * 8, room, k;

	if (traceparent) {
		if (v + 3 > ve || sb(w, v) != '0' || sb(w, v + 1) != '0' || sb(w, v + 2) != '-')
			return;
		v += 3;
	}
	room = ve - v;
	/* not unrolled: both loops unrolled made the line callback a third larger for ~2 iterations run */
#pragma clang loop unroll(disable)
	for (k = 0; k < TRACE_ID_WORDS; k++) {
		__u64 t;

		if (k * 8 >= room)
			break;
		t = id_delims(sw(w, v + k * 8), traceparent);
		if (t) {
			n = k * 8 + first_flagged(t);
			break;
		}
	}
	if (n > room)
		n = room;
	n = forget(w, n);
	if (n == 0 || n > TRACE_ID_MAX)
		return;
	/* whole words; the bytes of the last one past n are cleared, as the request line left them */
#pragma clang loop unroll(disable)
	for (k = 0; k < TRACE_ID_MAX / 8; k++) {
		__u64 x;

		if (k * 8 >= n)
			break;
		x = sw(w, v + k * 8);
		if (n - k * 8 < 8)
			x &= (1ULL << ((n - k * 8) * 8)) - 1;
		*(__u64 *)&w->c.trace_id[k * 8] = x;
	}
	w->c.trace_id_len = n;
	if (w->id_rules)
		match_id_rules(w);
}

/* Header name at s (up to ':'), lower case, zero-padded to 32 bytes in four words; its length or 0. */
static __always_inline __u32 header_name(struct scan_work *w, __u32 s, __u32 e, __u64 name[4])
{
	__u32 nl = 0, k;

	for (k = 0; k < 5; k++) {
		__u64 t = zero_bytes(sw(w, s + k * 8) ^ (ONES * ':'));

		if (t) {
			nl = k * 8 + first_flagged(t);
			break;
		}
	}
	nl = forget(w, nl);
	if (nl == 0 || nl > HEADER_NAME_MAX || s + nl >= e)
		return 0;
	for (k = 0; k < 4; k++) {
		__u64 x = fold_case(sw(w, s + k * 8));

		if (nl <= k * 8)
			x = 0;
		else if (nl - k * 8 < 8)
			x &= (1ULL << ((nl - k * 8) * 8)) - 1;
		name[k] = x;
	}
	return nl;
}

static __always_inline bool name_eq(const __u64 a[4], const char *b)
{
	return a[0] == ld64(b) && a[1] == ld64(b + 8) && a[2] == ld64(b + 16) && a[3] == ld64(b + 24);
}

static __always_inline bool value_eq(const struct scan_work *w, __u32 v, __u32 vlen, const struct dye_rule *r)
{
	__u32 k;

	if (r->value_len != vlen || vlen > HEADER_VALUE_MAX)
		return false;
	for (k = 0; k < HEADER_VALUE_MAX; k++) {
		if (k >= vlen)
			break;
		if (sb(w, v + k) != (__u8)r->value[k])
			return false;
	}
	return true;
}

struct hdr_rule_ctx {
	__u64 name[4];
	__u32 nl;
	__u32 v;
	__u32 vlen;
};

/* bpf_loop body: rule slot idx against one header (name and value); stops at the first match. */
static long hdr_rule_cb(__u32 idx, void *ctx)
{
	struct hdr_rule_ctx *x = ctx;
	struct scan_work *w = scan_work_get();
	struct dye_rule *r;

	if (!w || idx >= w->c.best_slot)
		return 1;
	if (!(w->header_rules & (1 << idx)))
		return 0;
	r = rule_at(w, idx);
	if (!r || r->name_len != x->nl || !name_eq(x->name, r->name) || !value_eq(w, x->v, x->vlen, r))
		return 0;
	w->c.best_slot = idx;
	w->c.request_dye = r->dye;
	return 1;
}

/* One header line [s, e) (e excludes the "\r\n"). */
static __always_inline void header_line(struct scan_work *w, __u32 s, __u32 e)
{
	struct hdr_rule_ctx x;
	struct dye_config *cfg;
	__u32 nl, v, ve, k, i, hit = TRACE_HEADERS_MAX;

	nl = header_name(w, s, e, x.name);
	if (!nl)
		return;
	/* value: after ':' and optional whitespace, without trailing whitespace */
	v = s + nl + 1;
	for (k = 0; k < 8; k++) {
		__u8 c = sb(w, v);

		if (v >= e || (c != ' ' && c != '\t'))
			break;
		v++;
	}
	ve = e;
	for (k = 0; k < 8; k++) {
		__u8 c = sb(w, ve - 1);

		if (ve <= v || (c != ' ' && c != '\t'))
			break;
		ve--;
	}
	v = forget(w, v);
	ve = forget(w, ve);
	if (ve < v)
		ve = v;

	cfg = dye_cfg();
	if (cfg && !w->c.trace_id_len) {
		for (i = 0; i < TRACE_HEADERS_MAX; i++) {
			const struct trace_header *th;

			if (i >= cfg->trace_header_count)
				break;
			th = &cfg->trace_headers[i];
			if (th->len == nl && name_eq(x.name, th->name)) {
				hit = i;
				break;
			}
		}
	}
	if (hit < TRACE_HEADERS_MAX)
		take_trace_id(w, v, ve,
			      nl == 11 && x.name[0] == W8('t', 'r', 'a', 'c', 'e', 'p', 'a', 'r') &&
				      x.name[1] == W8('e', 'n', 't', 0, 0, 0, 0, 0));
	if (!(w->hdr_name_lens & (1u << (nl - 1))))
		return;
	x.nl = nl;
	x.v = v;
	x.vlen = ve - v;
	bpf_loop(rule_span(w->header_rules), hdr_rule_cb, &x, 0);
}

#endif /* INDIGO_HTTP_HEADER_BPF_H */
