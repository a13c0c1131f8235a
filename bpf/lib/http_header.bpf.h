/* One request header line of the payload scanner (lib/http_scan.bpf.h): its name, the trace id when it is a
 * configured trace header (and the id rules run on it), and the header rules on its name and value. */
#ifndef INDIGO_HTTP_HEADER_BPF_H
#define INDIGO_HTTP_HEADER_BPF_H

#include "lib/rule_match.bpf.h"

static __always_inline bool is_id_delim(__u8 c)
{
	return c == ' ' || c == '\t' || c == ';' || c == ',';
}

/* The trace id in the value [v, ve) of a trace header; the first trace header of a request wins. */
static __always_inline void take_trace_id(struct scan_work *w, __u32 v, __u32 ve, bool traceparent)
{
	__u32 n = 0, k;

	if (traceparent) {
		if (v + 3 > ve || sb(w, v) != '0' || sb(w, v + 1) != '0' || sb(w, v + 2) != '-')
			return;
		v += 3;
	}
	for (k = 0; k <= TRACE_ID_MAX; k++) {
		__u8 c;

		if (v + k >= ve)
			break;
		c = sb(w, v + k);
		if (is_id_delim(c) || (traceparent && c == '-'))
			break;
		n++;
	}
	n = forget(w, n);
	if (n == 0 || n > TRACE_ID_MAX)
		return;
	for (k = 0; k < TRACE_ID_MAX; k++) {
		if (k >= n)
			break;
		w->c.trace_id[k] = sb(w, v + k);
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
