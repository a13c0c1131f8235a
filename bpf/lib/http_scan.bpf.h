/* Payload scanner: HTTP/1.x request and status lines, request headers (trace headers and header rules), the
 * trace-id matcher, percent cohorts and the TLS ClientHello server_name (lib/scan_work.bpf.h, lib/rule_match.bpf.h,
 * lib/sni.bpf.h hold the parts this file builds on). Shared by dye_send.bpf.c
 * (tp_btf/tcp_sendmsg_locked) and parse_harness.bpf.c (the same code under BPF_PROG_TEST_RUN).
 *
 * Data flow, per send: the caller loads the socket's struct scan_carry into the per-CPU scan_work
 * (scan_load_carry: the unfinished header line of the previous send goes to buf[0..c.len)), appends at most
 * scan_window() bytes of the send after it, sets len/more, calls scan_send(), and stores the carry back.
 * Nothing in buf beyond len is ever read as data, and every per-request field (trace id, method, path,
 * best rule) is cleared when a request line starts a new judgement: a previous request cannot leak in.
 *
 * Semantics (documented in bpf/README.md, "Payload scanner"):
 * - A request or response is recognised only at the start of a send made while no header block is open.
 * - Request judgement ends at the empty line closing the header block; the body is never scanned. When the
 *   window ends inside the header block and the send had more bytes ("more"), the request is judged on what
 *   was seen and CTR_SCAN_TRUNCATED counts it. When the send simply ended, the unfinished line is carried
 *   (up to SCAN_CARRY_MAX bytes) and the header block continues in the next send.
 * - Trace id: the value of the first configured trace header seen, up to the first ' ', '\t', ';' or ','
 *   (for "traceparent": after "00-", up to the next '-'); 1..64 bytes, else it is not a trace id.
 *   RULE_TRACE_ID matches when the id has exactly pattern_len bytes, each in its position's class.
 * - The first matching rule in slot order wins, wherever in the header block its header was. */
#ifndef INDIGO_HTTP_SCAN_BPF_H
#define INDIGO_HTTP_SCAN_BPF_H

#include "lib/rule_match.bpf.h"
#include "lib/sni.bpf.h"

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

#define W8(a, b, c, d, e, f, g, h)                                                                    \
	((__u64)(a) | (__u64)(b) << 8 | (__u64)(c) << 16 | (__u64)(d) << 24 | (__u64)(e) << 32 |     \
	 (__u64)(f) << 40 | (__u64)(g) << 48 | (__u64)(h) << 56)

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

/* Keeps the unfinished line [s, len) for the next send, or marks it skipped when it does not fit. */
static __always_inline void carry_line(struct scan_work *w, __u32 s)
{
	__u32 n = w->len - s;

	if (n > SCAN_CARRY_MAX) {
		w->c.len = 0;
		w->c.skip_line = 1;
		count(CTR_SCAN_LINE_SKIPPED);
		return;
	}
	/* fixed-size copy; only c.len bytes of it are ever used */
	__builtin_memcpy(w->c.buf, &w->buf[s & SCAN_BUF_MASK], SCAN_CARRY_MAX);
	w->c.len = n;
}

/* True when the rest of the header block can no longer change the judgement, and the bytes in buf are
 * known to hold its end: then scanning the lines left (e.g. a long header value) changes nothing.
 *   - decided: a trace id was taken (later trace headers are ignored, id rules have run) and no header
 *     rule is left that could beat the best slot so far;
 *   - the end: buf ends with "\n\r\n" or "\n\n", so an empty line starts at or after pos (the carried line
 *     never holds a '\n'); the request is judged in this send either way;
 *   - the line budget: even if every line left were as short as possible (2 bytes, the empty one 1,
 *     plus a skipped line's tail), the loop would reach the empty line within SCAN_LINES_MAX, so the
 *     full scan would not have been truncated either. */
static __always_inline bool scan_settled(struct scan_work *w, __u32 idx, __u32 s)
{
	__u32 len = w->len, best = w->c.best_slot, open = w->header_rules;

	if (!w->c.trace_id_len)
		return false;
	if (best < DYE_MAX_RULES)
		open &= (1u << best) - 1;
	if (open || len < s + 2 || idx + (len - s) / 2 + 2 > SCAN_LINES_MAX)
		return false;
	if (sb(w, len - 1) != '\n')
		return false;
	if (sb(w, len - 2) == '\n')
		return true;
	return len >= s + 3 && sb(w, len - 2) == '\r' && sb(w, len - 3) == '\n';
}

/* bpf_loop body: one header line per iteration. */
static long scan_line_cb(__u32 idx, void *ctx)
{
	struct scan_work *w = scan_work_get();
	__u32 s, e, le;

	if (!w)
		return 1;
	s = w->pos;
	if (s >= w->len)
		return 1;
	if (scan_settled(w, idx, s)) {
		/* as if the remaining lines were scanned up to the empty line */
		w->pos = w->len;
		w->c.skip_line = 0;
		w->c.in_headers = 0;
		w->judged = 1;
		return 1;
	}
	e = find_nl(w, s);
	if (e >= w->len) {
		/* the line continues in the next send, or beyond the window (then it is truncated) */
		if (!w->more)
			carry_line(w, s);
		w->pos = w->len;
		return 1;
	}
	w->pos = e + 1;
	w->lines++;
	if (w->c.skip_line) {
		w->c.skip_line = 0;
		return 0;
	}
	le = e;
	if (le > s && sb(w, le - 1) == '\r')
		le--;
	if (le == s) {
		/* the empty line: the header block is over, the request is judged */
		w->c.in_headers = 0;
		w->judged = 1;
		return 1;
	}
	header_line(w, s, le);
	return 0;
}

/* "HTTP/1.x NNN" at the start of the send. */
static __always_inline bool parse_status_line(struct scan_work *w)
{
	__u8 d0, d1, d2, v;

	if (w->len < 12)
		return false;
	if ((sw(w, 0) & 0x00ffffffffffffffULL) != W8('H', 'T', 'T', 'P', '/', '1', '.', 0))
		return false;
	v = sb(w, 7);
	d0 = sb(w, 9) - '0';
	d1 = sb(w, 10) - '0';
	d2 = sb(w, 11) - '0';
	if ((v != '0' && v != '1') || sb(w, 8) != ' ' || d0 > 9 || d1 > 9 || d2 > 9)
		return false;
	w->response = 1;
	w->status = d0 * 100 + d1 * 10 + d2;
	return true;
}

/* "METHOD SP target ... HTTP/1.x" at the start of the send: starts a new judgement. The method is 1..8
 * upper-case letters; the target starts with '/', '*' or 'h' (absolute form). When the line is complete in
 * the window it must end with "HTTP/1.x". */
static __always_inline bool parse_request_line(struct scan_work *w)
{
	__u32 len = w->len, mlen = 0, e, le, k;
	__u8 t;

	for (k = 0; k < DYE_EVENT_METHOD_MAX + 1; k++) {
		__u8 c = sb(w, k);

		if (k >= len)
			return false;
		if (c == ' ') {
			mlen = k;
			break;
		}
		if ((__u8)(c - 'A') >= 26)
			return false;
	}
	mlen = forget(w, mlen);
	if (mlen == 0 || mlen > DYE_EVENT_METHOD_MAX || mlen + 1 >= len)
		return false;
	t = sb(w, mlen + 1);
	if (t != '/' && t != '*' && t != 'h')
		return false;
	e = find_nl(w, 0);
	if (e < len) {
		le = e;
		if (sb(w, le - 1) == '\r')
			le--;
		if (le < mlen + 2 + 9 || (sw(w, le - 8) & 0x00ffffffffffffffULL) != W8('H', 'T', 'T', 'P', '/', '1', '.', 0))
			return false;
	}

	/* a new request: nothing of the previous one survives */
	__builtin_memset(w->c.trace_id, 0, sizeof(w->c.trace_id));
	__builtin_memset(w->c.method, 0, sizeof(w->c.method));
	__builtin_memset(w->c.path, 0, sizeof(w->c.path));
	w->c.trace_id_len = 0;
	w->c.best_slot = SCAN_NO_RULE;
	w->c.request_dye = 0;
	w->c.in_headers = 1;
	w->c.skip_line = 0;
	w->c.len = 0;
	for (k = 0; k < DYE_EVENT_METHOD_MAX; k++) {
		if (k >= mlen)
			break;
		w->c.method[k] = sb(w, k);
	}
	w->c.method_len = mlen;
	for (k = 0; k < DYE_EVENT_PATH_MAX; k++) {
		__u32 p = mlen + 1 + k;
		__u8 c = sb(w, p);

		if (p >= len || c == ' ' || c == '\r' || c == '\n')
			break;
		w->c.path[k] = c;
	}
	w->c.path_len = forget(w, k);
	if (e < len) {
		w->pos = e + 1;
	} else {
		/* the request line itself continues in the next send */
		w->pos = len;
		w->c.skip_line = 1;
	}
	return true;
}


static __always_inline __u32 scan_window(const struct dye_config *cfg)
{
	__u32 n = cfg->scan_max_bytes;

	return n == 0 || n > SCAN_WINDOW_MAX ? SCAN_WINDOW_MAX : n;
}

/* Loads the socket's carry into the scratch; returns where this send's bytes go (after the carried line),
 * or -1 when the scratch is busy (a scan on this CPU was preempted: the send is not scanned). */
static __always_inline int scan_load_carry(struct scan_work *w, const struct scan_carry *c)
{
	__u32 clen;

	if (w->busy) {
		count(CTR_SCAN_BUSY);
		return -1;
	}
	w->busy = 1;
	/* the per-request fields and the line buffer matter only while a header block is open; otherwise
	 * copy just the 16-byte head (the rest is reset by the next request line before it is read) */
	if (c->in_headers)
		w->c = *c;
	else
		__builtin_memcpy(&w->c, c, SCAN_CARRY_HEAD);
	clen = w->c.len;
	if (clen > SCAN_CARRY_MAX || !w->c.in_headers)
		clen = 0;
	w->c.len = clen;
	if (clen)
		__builtin_memcpy(w->buf, w->c.buf, SCAN_CARRY_MAX);
	w->len = clen;
	w->more = 0;
	w->judged = w->truncated = w->response = w->tls = 0;
	w->status = 0;
	w->sni_len = 0;
	w->sni_slot = SCAN_NO_RULE;
	w->sni_dye = 0;
	w->lines = 0;
	return clen;
}

/* Stores the carry back: all of it while a header block is open (the next send continues it), else the
 * head, plus trace id/method/path when `keep_request` (the parse harness reports them). */
static __always_inline void scan_store_carry(struct scan_work *w, struct scan_carry *c, bool keep_request)
{
	if (w->c.in_headers || keep_request)
		*c = w->c;
	else
		__builtin_memcpy(c, &w->c, SCAN_CARRY_HEAD);
	w->busy = 0;
}

/* The HTTP part of a send. */
static __always_inline void scan_http(struct scan_work *w, const struct dye_config *cfg)
{
	int unused = 0;

	if (!w->c.in_headers) {
		if (parse_status_line(w))
			return;
		if (!parse_request_line(w))
			return;
	} else {
		w->pos = 0;
	}
	load_rule_masks(w, cfg);
	/* the carried line has been copied to buf: from here on c.len is the line carried out */
	w->c.len = 0;
	bpf_loop(SCAN_LINES_MAX, scan_line_cb, &unused, 0);
	if (w->c.in_headers && (w->more || w->pos < w->len)) {
		/* the window (or the line budget) ended inside the header block: judge on what was seen */
		w->c.in_headers = 0;
		w->c.len = 0;
		w->c.skip_line = 0;
		w->judged = 1;
		w->truncated = 1;
		count(CTR_SCAN_TRUNCATED);
	}
}

/* One send: a ClientHello when it is the first send of the connection, else HTTP. w->buf/len/more are set. */
static __always_inline void scan_send(struct scan_work *w, const struct dye_config *cfg, bool first_send)
{
	if (first_send && w->len > 0 && sb(w, 0) == 0x16) {
		parse_client_hello(w, cfg);
		if (w->tls)
			return;
	}
	scan_http(w, cfg);
}

#endif /* INDIGO_HTTP_SCAN_BPF_H */

