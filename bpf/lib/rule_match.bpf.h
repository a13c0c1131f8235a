/* Cohort rules against what a send carries: the active rule set's slots by kind, the trace-id pattern
 * matcher (RULE_TRACE_ID), percent cohorts by fnv1a32 of the trace id (RULE_PERCENT), run under bpf_loop. */
#ifndef INDIGO_RULE_MATCH_BPF_H
#define INDIGO_RULE_MATCH_BPF_H

#include "lib/scan_work.bpf.h"

static __always_inline struct dye_rule *rule_at(const struct scan_work *w, __u32 slot)
{
	__u32 key = w->rule_base + slot;

	return bpf_map_lookup_elem(&rules, &key);
}

/* Which slots of the active set hold which kind of rule: lets a send skip what no rule asks for. */
static __always_inline void load_rule_masks(struct scan_work *w, const struct dye_config *cfg)
{
	__u32 i;

	w->rule_base = (cfg->active_rule_set & 1) * DYE_MAX_RULES;
	w->header_rules = w->id_rules = w->sni_rules = 0;
	w->hdr_name_lens = 0;
	for (i = 0; i < DYE_MAX_RULES; i++) {
		struct dye_rule *r = rule_at(w, i);

		/* a set is compact (compile.ts fills slots 0..n-1): the first empty slot ends it, so a send
		 * touches only the rules that exist */
		if (!r || r->kind == RULE_EMPTY)
			break;
		if (!r->dye)
			continue;
		if (r->kind == RULE_HEADER) {
			w->header_rules |= 1 << i;
			if (r->name_len >= 1 && r->name_len <= HEADER_NAME_MAX)
				w->hdr_name_lens |= 1u << (r->name_len - 1);
		}
		else if (r->kind == RULE_TRACE_ID || r->kind == RULE_PERCENT)
			w->id_rules |= 1 << i;
		else if (r->kind == RULE_SNI)
			w->sni_rules |= 1 << i;
	}
}

/* Slots a rule loop must visit for `mask` (bit i: slot i): up to its highest set bit, no further — every
 * callback skips the slots not in its mask anyway, so the loop does not run one callback per empty slot. */
static __always_inline __u32 rule_span(__u32 mask)
{
	__u32 n = 0;

	mask &= (1u << DYE_MAX_RULES) - 1;
	if (mask >> 8) {
		n += 8;
		mask >>= 8;
	}
	if (mask >> 4) {
		n += 4;
		mask >>= 4;
	}
	if (mask >> 2) {
		n += 2;
		mask >>= 2;
	}
	if (mask >> 1) {
		n += 1;
		mask >>= 1;
	}
	return n + mask;
}

static __always_inline __u32 fnv1a32(const char *s, __u32 n)
{
	__u32 h = 2166136261u, k;

	for (k = 0; k < TRACE_ID_MAX; k++) {
		if (k >= n)
			break;
		h ^= (__u8)s[k];
		h *= 16777619u;
	}
	return h;
}

/* RULE_TRACE_ID: exactly pattern_len bytes, byte k in class pattern[k]. */
static __always_inline bool pattern_match(const struct dye_rule *r, const char *id, __u32 n)
{
	__u32 k;

	if (r->pattern_len != n)
		return false;
	for (k = 0; k < PATTERN_MAX; k++) {
		__u8 c, cls;

		if (k >= n)
			break;
		c = id[k];
		cls = r->pattern[k] & (PATTERN_CLASSES - 1);
		if (!((r->classes[cls].bits[c >> 3] >> (c & 7)) & 1))
			return false;
	}
	return true;
}

struct id_rule_ctx {
	__u32 hash;
	__u32 hashed;
};

/* bpf_loop body: rule slot idx against the request's trace id; stops at the first match. */
static long id_rule_cb(__u32 idx, void *ctx)
{
	struct id_rule_ctx *x = ctx;
	struct scan_work *w = scan_work_get();
	struct dye_rule *r;
	bool ok = false;

	if (!w || idx >= w->c.best_slot)
		return 1;
	if (!(w->id_rules & (1 << idx)))
		return 0;
	r = rule_at(w, idx);
	if (!r)
		return 0;
	if (r->kind == RULE_TRACE_ID) {
		ok = pattern_match(r, w->c.trace_id, w->c.trace_id_len);
	} else if (r->kind == RULE_PERCENT) {
		if (!x->hashed) {
			x->hash = fnv1a32(w->c.trace_id, w->c.trace_id_len);
			x->hashed = 1;
		}
		ok = x->hash % PERCENT_SCALE < r->percent_bp;
	}
	if (!ok)
		return 0;
	w->c.best_slot = idx;
	w->c.request_dye = r->dye;
	return 1;
}

static __always_inline void match_id_rules(struct scan_work *w)
{
	struct id_rule_ctx x = {};

	bpf_loop(rule_span(w->id_rules), id_rule_cb, &x, 0);
}


#endif /* INDIGO_RULE_MATCH_BPF_H */
