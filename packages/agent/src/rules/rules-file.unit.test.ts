// The rules file and the struct dye_rule encoding: accepted shapes, rejected ones with their messages, and
// the bytes of each kind of rule.
import { describe, expect, test } from "bun:test";
import { compileRules, DyeRuleLayout, fnv1a32, percentToBasisPoints, traceIdOf } from "./compile.ts";
import { parseRulesFile } from "./rules-file.ts";
import { DYE_MAX_RULES, RuleKind } from "./types.ts";

const bad: [string, unknown, string][] = [
  ["not an array", { dye: 1 }, "rules.json: must be a JSON array of rules"],
  ["not an object", [3], "rules.json: rule 0: must be an object, got 3"],
  [
    "no dye",
    [{ sni: "a.com" }],
    'rules.json: rule 0: "dye" must be an integer from 1 to 4294967295, got undefined',
  ],
  ["dye 0", [{ dye: 0, sni: "a.com" }], 'rule 0: "dye" must be an integer from 1 to 4294967295, got 0'],
  [
    "dye too big",
    [{ dye: 2 ** 32, sni: "a.com" }],
    'rule 0: "dye" must be an integer from 1 to 4294967295, got 4294967296',
  ],
  ["no matcher", [{ dye: 1 }], "rule 0: needs exactly one of traceIdPattern, header, sni, percent, got none"],
  [
    "two matchers",
    [{ dye: 1 }, { dye: 2, sni: "a.com", percent: 5 }],
    "rules.json: rule 0: needs exactly one of traceIdPattern, header, sni, percent, got none",
  ],
  [
    "two matchers (second rule)",
    [{ dye: 2, sni: "a.com", percent: 5 }],
    "rule 0: needs exactly one of traceIdPattern, header, sni, percent, got sni and percent",
  ],
  ["unknown field", [{ dye: 1, sni: "a.com", colour: "red" }], 'rule 0: unknown field "colour"'],
  [
    "bad pattern",
    [{ dye: 1, traceIdPattern: "^t-[a-f0-9]+" }],
    'rule 0: traceIdPattern "^t-[a-f0-9]+": unsupported "+" at position 11: only fixed counts {n} are allowed',
  ],
  [
    "header name not a token",
    [{ dye: 1, header: { name: "x trace", value: "a" } }],
    'rule 0: header name "x trace" is not an HTTP token',
  ],
  [
    "header value with outer space",
    [{ dye: 1, header: { name: "x-cohort", value: " a" } }],
    'rule 0: header value " a" must be visible ASCII without leading or trailing whitespace',
  ],
  [
    "header value too long",
    [{ dye: 1, header: { name: "x-cohort", value: "a".repeat(97) } }],
    "rule 0: header value is 97 bytes, at most 96 are allowed",
  ],
  [
    "sni with a path",
    [{ dye: 1, sni: "a.com/x" }],
    'rule 0: "sni" must be a host name or a suffix like ".example.com", got "a.com/x"',
  ],
  [
    "percent zero",
    [{ dye: 1, percent: 0 }],
    'rule 0: "percent" must be a number above 0 and at most 100 with at most 2 decimals, got 0',
  ],
  [
    "percent with 3 decimals",
    [{ dye: 1, percent: 1.234 }],
    'rule 0: "percent" must be a number above 0 and at most 100 with at most 2 decimals, got 1.234',
  ],
  [
    "too many rules",
    Array.from({ length: 17 }, () => ({ dye: 1, sni: "a.com" })),
    "at most 16 rules fit one rule set, got 17",
  ],
];

describe("parseRulesFile rejects", () => {
  for (const [name, json, message] of bad) {
    test(name, () => {
      expect(() => parseRulesFile(JSON.stringify(json), "rules.json")).toThrow(message);
    });
  }
  test("invalid JSON", () => {
    expect(() => parseRulesFile("[{", "rules.json")).toThrow("rules.json: not valid JSON:");
  });
});

test("parseRulesFile accepts one rule of each kind, in order", () => {
  const rules = [
    { dye: 7, traceIdPattern: "^t-[a-f0-9]{8}" },
    { dye: 8, header: { name: "X-Cohort", value: "canary" } },
    { dye: 9, sni: ".Example.com" },
    { dye: 10, percent: 12.5 },
  ];
  expect(parseRulesFile(JSON.stringify(rules))).toEqual(rules);
});

test("compileRules: DYE_MAX_RULES slots of struct dye_rule, unused ones empty", () => {
  const slots = compileRules([
    { dye: 7, traceIdPattern: "^t-[a-f0-9]{2}" },
    { dye: 0x01020304, header: { name: "X-Cohort", value: "canary" } },
    { dye: 9, sni: ".Example.com" },
    { dye: 10, percent: 12.5 },
  ]);
  const L = DyeRuleLayout;
  expect(L.size).toBe(716);
  expect(slots.length).toBe(DYE_MAX_RULES);
  for (const s of slots) expect(s.length).toBe(716);
  const [id, header, sni, pct, empty] = slots as [Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array];
  expect(Array.from(id.subarray(0, 6))).toEqual([7, 0, 0, 0, RuleKind.TRACE_ID, 4]);
  expect(Array.from(id.subarray(L.pattern, L.pattern + 5))).toEqual([0, 1, 2, 2, 0]);
  // class 0 = {'t'}: bit 't' & 7 of byte 't' >> 3
  expect(id[L.classes + (0x74 >> 3)]).toBe(1 << (0x74 & 7));
  // class 2 = [a-f0-9]: digits are bytes 6 (0x30-0x37) and 7 (0x38, 0x39) of the bitmap
  expect(Array.from(id.subarray(L.classes + 64 + 6, L.classes + 64 + 8))).toEqual([0xff, 0x03]);
  expect(Array.from(header.subarray(0, 8))).toEqual([4, 3, 2, 1, RuleKind.HEADER, 0, 8, 6]);
  expect(new TextDecoder().decode(header.subarray(L.name, L.name + 8))).toBe("x-cohort");
  expect(new TextDecoder().decode(header.subarray(L.value, L.value + 6))).toBe("canary");
  expect(header[L.name + 8]).toBe(0);
  expect(sni[L.kind]).toBe(RuleKind.SNI);
  expect(new TextDecoder().decode(sni.subarray(L.value, L.value + sni[L.value_len]!))).toBe(".example.com");
  expect(pct[L.kind]).toBe(RuleKind.PERCENT);
  expect(new DataView(pct.buffer).getUint32(L.percent_bp, true)).toBe(1250);
  expect(empty.every((b) => b === 0)).toBe(true);
});

test("percent and trace-id helpers", () => {
  expect(percentToBasisPoints(0.07)).toBe(7);
  expect(percentToBasisPoints(100)).toBe(10000);
  // FNV-1a test vectors
  expect(fnv1a32(new TextEncoder().encode(""))).toBe(0x811c9dc5);
  expect(fnv1a32(new TextEncoder().encode("a"))).toBe(0xe40c292c);
  expect(fnv1a32(new TextEncoder().encode("foobar"))).toBe(0xbf9cf968);
  expect(traceIdOf("t-1; x", false)).toBe("t-1");
  expect(traceIdOf("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", true)).toBe(
    "4bf92f3577b34da6a3ce929d0e0e4736",
  );
  expect(traceIdOf("01-4bf9-00", true)).toBeUndefined();
  expect(traceIdOf("x".repeat(65), false)).toBeUndefined();
});
