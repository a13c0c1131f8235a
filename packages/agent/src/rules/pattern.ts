// Trace-id patterns: the one regular-expression family the kernel matcher can run. A pattern compiles to a
// table (per position, the index of a 256-bit byte class), matched in the kernel by
// bpf/lib/http_scan.bpf.h (pattern_match) and here by matchTraceId, which the tests compare against it.
//
// The family (anything else is rejected with an error naming the offending part and its position):
//
//   pattern := ["^"] atom+ ["$"]        anchored at both ends whether or not "^" / "$" are written:
//                                        the trace id must have exactly as many bytes as the pattern
//   atom    := unit ["{" n "}"]          a fixed count, 1 <= n; no *, +, ?, {m,n}, {m,}
//   unit    := literal                   a printable ASCII byte other than the metacharacters
//            | "\" punctuation           an escaped metacharacter or punctuation, e.g. \. \- \[
//            | "\d" | "\w"               [0-9] and [A-Za-z0-9_]
//            | "."                       any byte a trace id can hold
//            | "[" item+ "]"             a class: chars, ranges a-f, \d, \w, escaped punctuation
//
// A trace id never holds a space, tab, ';' or ',' (they end it in the header value), so patterns may not
// either. Limits: 64 positions, 16 distinct classes (each distinct literal byte is a class of its own).
// No alternation, groups, lookaround, backreferences or negated classes: the kernel has no backtracking.
import { PATTERN_CLASSES, PATTERN_MAX } from "./types.ts";

export interface CompiledPattern {
  /** class index per position */
  positions: number[];
  /** 32-byte bitmaps: bit (c & 7) of byte (c >> 3) set when byte c is in the class */
  classes: Uint8Array[];
}

const DELIMITERS = new Set([" ", "\t", ";", ","]);
const FIXED_COUNTS = "only fixed counts {n} are allowed";

const fail = (what: string, at: number, why: string): never => {
  throw new Error(`unsupported "${what}" at position ${at}: ${why}`);
};

type Bits = Uint8Array;
const newBits = (): Bits => new Uint8Array(32);
const setBit = (b: Bits, c: number): void => {
  b[c >> 3] = (b[c >> 3] ?? 0) | (1 << (c & 7));
};
const hasBit = (b: Bits, c: number): boolean => (((b[c >> 3] ?? 0) >> (c & 7)) & 1) === 1;

/** Bytes a trace id can hold: printable ASCII except the delimiters. */
const isIdByte = (c: number): boolean => c > 0x20 && c < 0x7f && !DELIMITERS.has(String.fromCharCode(c));

const range = (b: Bits, from: number, to: number): void => {
  for (let c = from; c <= to; c++) if (isIdByte(c)) setBit(b, c);
};
const DIGITS = (b: Bits): void => range(b, 0x30, 0x39);
const WORD = (b: Bits): void => {
  DIGITS(b);
  range(b, 0x41, 0x5a);
  range(b, 0x61, 0x7a);
  setBit(b, 0x5f);
};

const checkLiteral = (ch: string, at: number): number => {
  const c = ch.charCodeAt(0);
  if (DELIMITERS.has(ch)) fail(ch, at, "a trace id never contains a space, tab, ';' or ','");
  if (c < 0x21 || c > 0x7e) fail(ch, at, "only printable ASCII characters are allowed");
  return c;
};

/** An escape at `at` (pattern[at] === "\\"): adds its bytes to `b`, returns the index after it. */
const escaped = (p: string, at: number, b: Bits): number => {
  const next = p[at + 1];
  if (next === undefined) fail("\\", at, "a pattern cannot end with a lone backslash");
  const e = `\\${next}`;
  if (next === "d") DIGITS(b);
  else if (next === "w") WORD(b);
  else if (/[1-9]/.test(next as string)) fail(e, at, "backreferences are not allowed");
  else if (/[A-Za-z0-9]/.test(next as string))
    fail(e, at, "only \\d, \\w and escaped punctuation are allowed");
  else setBit(b, checkLiteral(next as string, at + 1));
  return at + 2;
};

/** A class starting at `at` (pattern[at] === "["): its bytes and the index after "]". */
const bracket = (p: string, at: number): [Bits, number] => {
  const b = newBits();
  let i = at + 1;
  if (p[i] === "^") fail("[^", at, "negated classes are not allowed");
  let items = 0;
  while (i < p.length && p[i] !== "]") {
    const ch = p[i] as string;
    if (ch === "\\") {
      i = escaped(p, i, b);
    } else if (p[i + 1] === "-" && p[i + 2] !== undefined && p[i + 2] !== "]") {
      const hi = p[i + 2] as string;
      const from = checkLiteral(ch, i);
      const to = checkLiteral(hi, i + 2);
      if (to < from) fail(`${ch}-${hi}`, i, "a range must go from low to high");
      range(b, from, to);
      i += 3;
    } else {
      if (ch === "[") fail("[", i, 'a "[" inside a class must be escaped');
      setBit(b, checkLiteral(ch, i));
      i += 1;
    }
    items++;
  }
  if (i >= p.length) throw new Error(`unterminated "[" at position ${at}: a class must end with "]"`);
  if (items === 0) fail("[]", at, "a class must hold at least one character");
  return [b, i + 1];
};

/** `{n}` at `at`: n and the index after "}". */
const count = (p: string, at: number): [number, number] => {
  const close = p.indexOf("}", at);
  if (close < 0) throw new Error(`unterminated "{" at position ${at}: a count must end with "}"`);
  const body = p.slice(at + 1, close);
  const text = p.slice(at, close + 1);
  if (!/^\d+$/.test(body)) fail(text, at, FIXED_COUNTS);
  const n = Number(body);
  if (n < 1) fail(text, at, "a count must be 1 or more");
  return [n, close + 1];
};

/** Parses and compiles a pattern of the supported family; throws an Error saying why it is not one. */
export const compilePattern = (pattern: string): CompiledPattern => {
  const units: Bits[] = [];
  let total = 0;
  let i = 0;
  if (pattern.startsWith("^")) i = 1;
  let end = pattern.length;
  if (end > i && pattern.endsWith("$") && !pattern.endsWith("\\$")) end -= 1;
  if (end <= i) throw new Error("empty pattern: at least one character is required");
  let last: Bits | undefined;
  while (i < end) {
    const ch = pattern[i] as string;
    let unit: Bits | undefined;
    switch (ch) {
      case "*":
      case "+":
      case "?":
        fail(ch, i, FIXED_COUNTS);
        break;
      case "{": {
        if (!last)
          throw new Error(
            `"${pattern.slice(i, pattern.indexOf("}", i) + 1 || i + 1)}" at position ${i} has nothing to repeat`,
          );
        const [n, next] = count(pattern, i);
        if (next < end && /[*+?{]/.test(pattern[next] as string)) {
          fail(pattern[next] as string, next, FIXED_COUNTS);
        }
        total += n - 1;
        for (let k = 1; k < n && units.length <= PATTERN_MAX; k++) units.push(last);
        last = undefined;
        i = next;
        continue;
      }
      case "}":
        fail("}", i, 'a "}" must be escaped');
        break;
      case "|":
        fail("|", i, "alternation is not allowed");
        break;
      case "(":
        fail(
          pattern.slice(i, i + 3).startsWith("(?") ? pattern.slice(i, i + 3) : "(",
          i,
          "groups and lookaround are not allowed",
        );
        break;
      case ")":
        fail(")", i, "groups are not allowed");
        break;
      case "^":
        fail("^", i, "only allowed at the start of the pattern");
        break;
      case "$":
        fail("$", i, "only allowed at the end of the pattern");
        break;
      case "]":
        fail("]", i, 'a "]" outside a class must be escaped');
        break;
      case ".": {
        unit = newBits();
        range(unit, 0x21, 0x7e);
        i += 1;
        break;
      }
      case "[": {
        const [b, next] = bracket(pattern, i);
        unit = b;
        i = next;
        break;
      }
      case "\\": {
        unit = newBits();
        i = escaped(pattern, i, unit);
        break;
      }
      default:
        unit = newBits();
        setBit(unit, checkLiteral(ch, i));
        i += 1;
    }
    if (unit) {
      total += 1;
      units.push(unit);
      last = unit;
    }
  }
  if (total > PATTERN_MAX) {
    throw new Error(`pattern matches ${total} characters, at most ${PATTERN_MAX} are allowed`);
  }
  const classes: Uint8Array[] = [];
  const positions = units.map((u) => {
    const found = classes.findIndex((c) => c.every((byte, k) => byte === u[k]));
    if (found >= 0) return found;
    classes.push(u);
    return classes.length - 1;
  });
  if (classes.length > PATTERN_CLASSES) {
    throw new Error(
      `pattern uses ${classes.length} distinct character classes, at most ${PATTERN_CLASSES} are allowed (each distinct literal character is one)`,
    );
  }
  return { positions, classes };
};

/** The kernel's RULE_TRACE_ID test, in TypeScript: exactly as many bytes as positions, each in its class. */
export const matchTraceId = (p: CompiledPattern, id: Uint8Array | string): boolean => {
  const bytes = typeof id === "string" ? new TextEncoder().encode(id) : id;
  if (bytes.length !== p.positions.length) return false;
  return p.positions.every((cls, k) => hasBit(p.classes[cls] as Bits, bytes[k] as number));
};
