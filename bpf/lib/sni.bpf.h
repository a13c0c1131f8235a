/* The first send of a connection that is a TLS ClientHello: its server_name against RULE_SNI suffixes. */
#ifndef INDIGO_SNI_BPF_H
#define INDIGO_SNI_BPF_H

#include "lib/rule_match.bpf.h"

static __always_inline __u32 be16(const struct scan_work *w, __u32 p)
{
	return (__u32)sb(w, p) << 8 | sb(w, p + 1);
}

struct sni_rule_ctx {
	__u32 host; /* offset of the name in buf */
	__u32 nlen; /* its full length */
};

/* RULE_SNI: the name ends with the suffix (case-insensitive) on a label boundary: "example.com" matches
 * "example.com" and "api.example.com", not "badexample.com"; ".example.com" matches subdomains only.
 * bpf_loop body: rule slot idx; stops at the first match. */
static long sni_rule_cb(__u32 idx, void *ctx)
{
	struct sni_rule_ctx *x = ctx;
	struct scan_work *w = scan_work_get();
	struct dye_rule *r;
	__u32 sl, vlen, k;

	if (!w)
		return 1;
	if (!(w->sni_rules & (1 << idx)))
		return 0;
	r = rule_at(w, idx);
	if (!r)
		return 0;
	sl = w->sni_len;
	vlen = r->value_len;
	if (vlen == 0 || vlen > sl || vlen > HEADER_VALUE_MAX)
		return 0;
	for (k = 0; k < HEADER_VALUE_MAX; k++) {
		if (k >= vlen)
			break;
		if (w->sni[(sl - vlen + k) & 127] != r->value[k])
			return 0;
	}
	if (vlen < x->nlen && r->value[0] != '.' && sb(w, x->host + x->nlen - vlen - 1) != '.')
		return 0;
	w->sni_slot = idx;
	w->sni_dye = r->dye;
	return 1;
}

/* TLS record 0x16 (handshake) holding a ClientHello (type 1): find the server_name extension. */
static __always_inline void parse_client_hello(struct scan_work *w, const struct dye_config *cfg)
{
	struct sni_rule_ctx x = {};
	__u32 len = w->len, p, end, k, keep, j;

	if (len < 44 || sb(w, 0) != 0x16 || sb(w, 1) != 3 || sb(w, 5) != 1)
		return;
	w->tls = 1;
	p = 43;
	p += 1 + sb(w, p);           /* session id */
	if (p + 2 > len)
		return;
	p += 2 + be16(w, p);         /* cipher suites */
	if (p + 1 > len)
		return;
	p += 1 + sb(w, p);           /* compression methods */
	if (p + 2 > len)
		return;
	end = p + 2 + be16(w, p);    /* extensions */
	p += 2;
	if (end > len)
		end = len;
	for (k = 0; k < 32; k++) {
		if (p + 4 > end)
			return;
		if (be16(w, p) == 0)
			break;
		p += 4 + be16(w, p + 2);
	}
	/* server_name: list length (2), name type 0 = host_name (1), name length (2), name */
	p = forget(w, p);
	if (k == 32 || p + 9 > end || sb(w, p + 6) != 0)
		return;
	x.nlen = be16(w, p + 7);
	x.host = p + 9;
	if (x.nlen == 0 || x.host + x.nlen > end)
		return;
	keep = x.nlen < SNI_KEEP ? x.nlen : SNI_KEEP;
	for (j = 0; j < SNI_KEEP; j++) {
		if (j >= keep)
			break;
		w->sni[j] = lower(sb(w, x.host + x.nlen - keep + j));
	}
	w->sni_len = keep;
	load_rule_masks(w, cfg);
	if (w->sni_rules)
		bpf_loop(rule_span(w->sni_rules), sni_rule_cb, &x, 0);
}

#endif /* INDIGO_SNI_BPF_H */
