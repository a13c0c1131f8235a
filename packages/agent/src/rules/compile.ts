// The rule compiler: cohort rules → the kernel's struct dye_rule slots (bpf/dye_rules.h). The only encoder
// of struct dye_rule; rules.int.test.ts checks its offsets against the BTF of the compiled objects.
//
// struct dye_rule, 716 bytes, little-endian:
//   0 dye u32 | 4 kind u8 | 5 pattern_len u8 | 6 name_len u8 | 7 value_len u8 | 8 percent_bp u32
//   12 pattern[64] (class index per position) | 76 classes[16][32] (byte bitmaps)
//   588 name[32] (lower case) | 620 value[96]
import { compilePattern } from "./pattern.ts";
import { validateRules } from "./rules-file.ts";
import {
  type CohortRuleInput,
  DYE_MAX_RULES,
  HEADER_NAME_MAX,
  HEADER_VALUE_MAX,
  PATTERN_CLASSES,
  PATTERN_MAX,
  PERCENT_SCALE,
  RuleKind,
} from "./types.ts";

export const DyeRuleLayout = {
  size: 12 + PATTERN_MAX + PATTERN_CLASSES * 32 + HEADER_NAME_MAX + HEADER_VALUE_MAX,
  dye: 0,
  kind: 4,
  pattern_len: 5,
  name_len: 6,
  value_len: 7,
  percent_bp: 8,
  pattern: 12,
  classes: 12 + PATTERN_MAX,
  name: 12 + PATTERN_MAX + PATTERN_CLASSES * 32,
  value: 12 + PATTERN_MAX + PATTERN_CLASSES * 32 + HEADER_NAME_MAX,
} as const;

const utf8 = new TextEncoder();

/** One rule → one struct dye_rule. The rule must be valid (validateRules). */
export const encodeRule = (rule: CohortRuleInput): Uint8Array => {
  const L = DyeRuleLayout;
  const b = new Uint8Array(L.size);
  const v = new DataView(b.buffer);
  v.setUint32(L.dye, rule.dye >>> 0, true);
  if ("traceIdPattern" in rule) {
    const p = compilePattern(rule.traceIdPattern);
    b[L.kind] = RuleKind.TRACE_ID;
    b[L.pattern_len] = p.positions.length;
    b.set(p.positions, L.pattern);
    p.classes.forEach((c, i) => {
      b.set(c, L.classes + i * 32);
    });
  } else if ("header" in rule) {
    const name = utf8.encode(rule.header.name.toLowerCase());
    const value = utf8.encode(rule.header.value);
    b[L.kind] = RuleKind.HEADER;
    b[L.name_len] = name.length;
    b[L.value_len] = value.length;
    b.set(name, L.name);
    b.set(value, L.value);
  } else if ("sni" in rule) {
    const suffix = utf8.encode(rule.sni.toLowerCase());
    b[L.kind] = RuleKind.SNI;
    b[L.value_len] = suffix.length;
    b.set(suffix, L.value);
  } else {
    b[L.kind] = RuleKind.PERCENT;
    v.setUint32(L.percent_bp, percentToBasisPoints(rule.percent), true);
  }
  return b;
};

/** 12.5 → 1250 (of PERCENT_SCALE). */
export const percentToBasisPoints = (percent: number): number => Math.round((percent * PERCENT_SCALE) / 100);

/**
 * Validates `rules` (as read from a rules file or the control topic) and encodes them: always
 * DYE_MAX_RULES slots, the unused ones empty (RULE_EMPTY), so writing a whole set clears stale rules.
 * The first matching rule in slot (= array) order wins.
 */
export const compileRules = (rules: readonly unknown[]): Uint8Array[] => {
  const valid = validateRules(rules);
  return Array.from({ length: DYE_MAX_RULES }, (_, i) => {
    const rule = valid[i];
    return rule ? encodeRule(rule) : new Uint8Array(DyeRuleLayout.size);
  });
};

/** FNV-1a, 32 bits: the kernel's percent-cohort hash of a trace id. */
export const fnv1a32 = (bytes: Uint8Array): number => {
  let h = 0x811c9dc5;
  for (const c of bytes) {
    h ^= c;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
};

/** The kernel's RULE_PERCENT test: fnv1a32(trace id) % 10000 < basis points. */
export const inPercentCohort = (traceId: string, percent: number): boolean =>
  fnv1a32(utf8.encode(traceId)) % PERCENT_SCALE < percentToBasisPoints(percent);

/**
 * The trace id the kernel takes from a trace header's value (surrounding whitespace already trimmed):
 * up to the first space, tab, ';' or ','; for traceparent, after "00-" up to the next '-'. 1..64 bytes,
 * else undefined.
 */
export const traceIdOf = (value: string, traceparent: boolean): string | undefined => {
  let v = value;
  if (traceparent) {
    if (!v.startsWith("00-")) return undefined;
    v = v.slice(3);
  }
  const end = v.search(traceparent ? /[ \t;,-]/ : /[ \t;,]/);
  const id = end < 0 ? v : v.slice(0, end);
  return id.length >= 1 && id.length <= 64 ? id : undefined;
};
