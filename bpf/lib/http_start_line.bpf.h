/* The start line of a send, for the payload scanner (lib/http_scan.bpf.h): an HTTP/1.x status line (a
 * response and its status) or a request line (method and path; it starts a new judgement). */
#ifndef INDIGO_HTTP_START_LINE_BPF_H
#define INDIGO_HTTP_START_LINE_BPF_H

#include "lib/scan_work.bpf.h"

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

#endif /* INDIGO_HTTP_START_LINE_BPF_H */
