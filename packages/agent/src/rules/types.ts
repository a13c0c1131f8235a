// Cohort rules as people write them (the rules file, the control topic) and the limits of the kernel
// tables they compile to (bpf/dye_rules.h).

/** One cohort rule: a dye and exactly one matcher. */
export type CohortRuleInput =
  | { dye: number; traceIdPattern: string }
  | { dye: number; header: { name: string; value: string } }
  | { dye: number; sni: string }
  | { dye: number; percent: number };

/** Limits of bpf/dye_rules.h. */
export const DYE_MAX_RULES = 16;
export const PATTERN_MAX = 64;
export const PATTERN_CLASSES = 16;
export const HEADER_NAME_MAX = 32;
export const HEADER_VALUE_MAX = 96;
export const PERCENT_SCALE = 10_000;

/** RULE_* kinds of bpf/dye_rules.h. */
export const RuleKind = { EMPTY: 0, TRACE_ID: 1, HEADER: 2, SNI: 3, PERCENT: 4 } as const;
