// The trace-id pattern family: what compiles, what is rejected and with which exact message, and the
// TypeScript matcher (the reference the kernel tests compare against).
import { describe, expect, test } from "bun:test";
import { compilePattern, matchTraceId } from "./pattern.ts";

const good: [string, string, { matches: string[]; misses: string[] }][] = [
  [
    "hex id with literal prefix",
    "^t-[a-f0-9]{8}-[a-f0-9]{4}",
    {
      matches: ["t-0123abcd-ffff"],
      misses: ["t-0123abcd-fff", "t-0123abcd-fffff", "t-0123abcD-ffff", "x-0123abcd-ffff"],
    },
  ],
  ["no anchors written", "abc\\d{2}", { matches: ["abc12"], misses: ["abc1", "xabc12", "abc123"] }],
  ["explicit end anchor", "^id-\\d{3}$", { matches: ["id-007"], misses: ["id-0070", "id-07"] }],
  [
    "w3c trace id",
    "^[0-9a-f]{32}",
    { matches: ["4bf92f3577b34da6a3ce929d0e0e4736"], misses: ["4bf92f3577b34da6a3ce929d0e0e473"] },
  ],
  ["dot is any id byte", "a.c", { matches: ["abc", "a-c", "a.c"], misses: ["ac", "a;c", "a c"] }],
  ["escaped punctuation", "v1\\.\\-x", { matches: ["v1.-x"], misses: ["v1a-x"] }],
  ["word class and ranges", "[\\wA-C.-]{2}", { matches: ["_-", "B.", "z9"], misses: ["z!", "z"] }],
  ["64 positions", "[0-9]{64}", { matches: ["1".repeat(64)], misses: ["1".repeat(63), "1".repeat(65)] }],
];

const bad: [string, string, string][] = [
  ["plus", "^t-[a-f0-9]+", 'unsupported "+" at position 11: only fixed counts {n} are allowed'],
  ["star", "ab*", 'unsupported "*" at position 2: only fixed counts {n} are allowed'],
  ["question mark", "ab?", 'unsupported "?" at position 2: only fixed counts {n} are allowed'],
  ["ranged count", "^a{2,5}", 'unsupported "{2,5}" at position 2: only fixed counts {n} are allowed'],
  ["open count", "a{2,}", 'unsupported "{2,}" at position 1: only fixed counts {n} are allowed'],
  ["zero count", "a{0}", 'unsupported "{0}" at position 1: a count must be 1 or more'],
  ["lazy after count", "a{2}?", 'unsupported "?" at position 4: only fixed counts {n} are allowed'],
  ["alternation", "abc|def", 'unsupported "|" at position 3: alternation is not allowed'],
  ["group", "(ab){2}", 'unsupported "(" at position 0: groups and lookaround are not allowed'],
  ["lookahead", "a(?=b)", 'unsupported "(?=" at position 1: groups and lookaround are not allowed'],
  ["backreference", "a\\1", 'unsupported "\\1" at position 1: backreferences are not allowed'],
  [
    "unknown escape",
    "a\\s",
    'unsupported "\\s" at position 1: only \\d, \\w and escaped punctuation are allowed',
  ],
  ["negated class", "[^a]", 'unsupported "[^" at position 0: negated classes are not allowed'],
  ["caret inside", "a^b", 'unsupported "^" at position 1: only allowed at the start of the pattern'],
  ["dollar inside", "a$b", 'unsupported "$" at position 1: only allowed at the end of the pattern'],
  ["space", "a b", "unsupported \" \" at position 1: a trace id never contains a space, tab, ';' or ','"],
  [
    "comma in class",
    "[a,]",
    "unsupported \",\" at position 2: a trace id never contains a space, tab, ';' or ','",
  ],
  ["reversed range", "[f-a]", 'unsupported "f-a" at position 1: a range must go from low to high'],
  ["unterminated class", "ab[cd", 'unterminated "[" at position 2: a class must end with "]"'],
  ["nothing to repeat", "{3}a", '"{3}" at position 0 has nothing to repeat'],
  ["empty", "^$", "empty pattern: at least one character is required"],
  ["non-ascii", "é", 'unsupported "é" at position 0: only printable ASCII characters are allowed'],
  ["too long", "[0-9]{65}", "pattern matches 65 characters, at most 64 are allowed"],
  [
    "too many classes",
    "abcdefghijklmnopq",
    "pattern uses 17 distinct character classes, at most 16 are allowed (each distinct literal character is one)",
  ],
];

describe("compilePattern accepts the family", () => {
  for (const [name, pattern, { matches, misses }] of good) {
    test(name, () => {
      const p = compilePattern(pattern);
      for (const id of matches) expect({ id, match: matchTraceId(p, id) }).toEqual({ id, match: true });
      for (const id of misses) expect({ id, match: matchTraceId(p, id) }).toEqual({ id, match: false });
    });
  }
});

describe("compilePattern rejects everything else, naming the part and its position", () => {
  for (const [name, pattern, message] of bad) {
    test(`${name}: ${pattern}`, () => {
      expect(() => compilePattern(pattern)).toThrow(message);
    });
  }
});

test("classes are shared between positions: a hex id with a literal prefix uses 3 classes", () => {
  const p = compilePattern("^t-[a-f0-9]{8}");
  expect(p.positions).toEqual([0, 1, 2, 2, 2, 2, 2, 2, 2, 2]);
  expect(p.classes.length).toBe(3);
});
