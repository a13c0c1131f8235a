/* Payload scanner: HTTP/1.x request and status lines, request headers (trace headers and header rules), the
 * trace-id matcher, percent cohorts and the TLS ClientHello server_name (lib/scan_work.bpf.h, lib/rule_match.bpf.h,
 * lib/http_header.bpf.h, lib/http_start_line.bpf.h and lib/sni.bpf.h hold the parts this file builds on). Shared by dye_send.bpf.c
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

#include "lib/http_header.bpf.h"
#include "lib/http_start_line.bpf.h"
#include "lib/sni.bpf.h"

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

/* Defined by the file that includes this one: reads bytes [from, to) of the send's window into
 * buf[w->off + from..] and returns the end of what it read (from when nothing could be read). */
static __always_inline __u32 scan_refill(struct scan_work *w, __u32 from, __u32 to);

/* Only the first part of the window is read before the scan starts (SCAN_FIRST_READ): when a line runs
 * past it, the rest of the window is read, once. True when buf grew. */
static __always_inline bool scan_more(struct scan_work *w)
{
	__u32 got;

	if (!w->resume)
		return false;
	w->resume = 0;
	got = scan_refill(w, w->got, w->want);
	if (got <= w->got)
		return false;
	w->got = got;
	w->len = w->off + got;
	w->more = w->left > got;
	return true;
}

/* True when the rest of the header block can no longer change the judgement: a trace id was taken (later
 * trace headers are ignored, id rules have run) and no header rule is left that could beat the best slot so
 * far. Then the lines left (e.g. a long header value, or a header block that goes on in the next send) are
 * not read at all: the request is judged here. A later send of the same block starts with a header line,
 * which is neither a request nor a status line, so it starts nothing. */
static __always_inline bool scan_settled(struct scan_work *w)
{
	__u32 best = w->c.best_slot, open = w->header_rules;

	if (!w->c.trace_id_len)
		return false;
	if (best < DYE_MAX_RULES)
		open &= (1u << best) - 1;
	return !open;
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
		return scan_more(w) ? 0 : 1;
	if (scan_settled(w)) {
		w->pos = w->len;
		w->c.skip_line = 0;
		w->c.in_headers = 0;
		w->judged = 1;
		return 1;
	}
	e = find_nl(w, s);
	if (e >= w->len && scan_more(w))
		return 0; /* the same line again, with the rest of the window after it */
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
	w->resume = 0;
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

/* The line loop stopped: when the window (or the line budget) ended inside the header block, the request is
 * judged on what was seen. */
static __always_inline void scan_end(struct scan_work *w)
{
	if (w->c.in_headers && (w->more || w->pos < w->len)) {
		w->c.in_headers = 0;
		w->c.len = 0;
		w->c.skip_line = 0;
		w->judged = 1;
		w->truncated = 1;
		count(CTR_SCAN_TRUNCATED);
	}
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
	scan_end(w);
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

