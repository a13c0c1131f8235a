// The rules file: a JSON array of `{dye, traceIdPattern? | header?: {name, value} | sni? | percent?}`,
// exactly one matcher per rule, first match (array order) wins. Every error names the rule (by index, from
// 0) and what is wrong with it.
import { readFileSync } from "node:fs";
import { compilePattern } from "./pattern.ts";
import { type CohortRuleInput, DYE_MAX_RULES, HEADER_NAME_MAX, HEADER_VALUE_MAX } from "./types.ts";

const MATCHERS = ["traceIdPattern", "header", "sni", "percent"] as const;
const DYE_MAX = 0xffff_ffff;
/** RFC 9110 token characters (header names). */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Visible ASCII and inner spaces/tabs (header values as the kernel compares them: trimmed, byte-exact). */
const FIELD_VALUE = /^[\x21-\x7e]([\x20-\x7e\t]*[\x21-\x7e])?$/;
const HOSTNAME_SUFFIX = /^\.?([A-Za-z0-9-]+\.)*[A-Za-z0-9-]+$/;

const isObject = (x: unknown): x is Record<string, unknown> =>
  typeof x === "object" && x !== null && !Array.isArray(x);

const byteLength = (s: string): number => new TextEncoder().encode(s).length;

const validateOne = (raw: unknown, i: number): CohortRuleInput => {
  const where = `rule ${i}`;
  if (!isObject(raw)) throw new Error(`${where}: must be an object, got ${JSON.stringify(raw)}`);
  for (const key of Object.keys(raw)) {
    if (key !== "dye" && !(MATCHERS as readonly string[]).includes(key)) {
      throw new Error(`${where}: unknown field "${key}" (allowed: dye, ${MATCHERS.join(", ")})`);
    }
  }
  const dye = raw.dye;
  if (typeof dye !== "number" || !Number.isInteger(dye) || dye < 1 || dye > DYE_MAX) {
    throw new Error(`${where}: "dye" must be an integer from 1 to ${DYE_MAX}, got ${JSON.stringify(dye)}`);
  }
  const present = MATCHERS.filter((m) => raw[m] !== undefined);
  if (present.length !== 1) {
    throw new Error(
      `${where}: needs exactly one of ${MATCHERS.join(", ")}, got ${present.length === 0 ? "none" : present.join(" and ")}`,
    );
  }
  const matcher = present[0];
  switch (matcher) {
    case "traceIdPattern": {
      const p = raw.traceIdPattern;
      if (typeof p !== "string") throw new Error(`${where}: "traceIdPattern" must be a string`);
      try {
        compilePattern(p);
      } catch (e) {
        throw new Error(`${where}: traceIdPattern ${JSON.stringify(p)}: ${(e as Error).message}`);
      }
      return { dye, traceIdPattern: p };
    }
    case "header": {
      const h = raw.header;
      if (!isObject(h) || typeof h.name !== "string" || typeof h.value !== "string") {
        throw new Error(`${where}: "header" must be {"name": string, "value": string}`);
      }
      for (const key of Object.keys(h)) {
        if (key !== "name" && key !== "value") throw new Error(`${where}: unknown field "header.${key}"`);
      }
      if (!TOKEN.test(h.name))
        throw new Error(`${where}: header name ${JSON.stringify(h.name)} is not an HTTP token`);
      if (byteLength(h.name) > HEADER_NAME_MAX) {
        throw new Error(
          `${where}: header name is ${byteLength(h.name)} bytes, at most ${HEADER_NAME_MAX} are allowed`,
        );
      }
      if (!FIELD_VALUE.test(h.value)) {
        throw new Error(
          `${where}: header value ${JSON.stringify(h.value)} must be visible ASCII without leading or trailing whitespace`,
        );
      }
      if (byteLength(h.value) > HEADER_VALUE_MAX) {
        throw new Error(
          `${where}: header value is ${byteLength(h.value)} bytes, at most ${HEADER_VALUE_MAX} are allowed`,
        );
      }
      return { dye, header: { name: h.name, value: h.value } };
    }
    case "sni": {
      const s = raw.sni;
      if (typeof s !== "string" || !HOSTNAME_SUFFIX.test(s)) {
        throw new Error(
          `${where}: "sni" must be a host name or a suffix like ".example.com", got ${JSON.stringify(s)}`,
        );
      }
      if (byteLength(s) > HEADER_VALUE_MAX) {
        throw new Error(`${where}: sni is ${byteLength(s)} bytes, at most ${HEADER_VALUE_MAX} are allowed`);
      }
      return { dye, sni: s };
    }
    case "percent": {
      const p = raw.percent;
      if (
        typeof p !== "number" ||
        !(p > 0 && p <= 100) ||
        !Number.isInteger(Math.round(p * 100 * 1e6) / 1e6)
      ) {
        throw new Error(
          `${where}: "percent" must be a number above 0 and at most 100 with at most 2 decimals, got ${JSON.stringify(p)}`,
        );
      }
      return { dye, percent: p };
    }
    default:
      throw new Error(`${where}: no matcher`);
  }
};

/** Checks rules read from JSON; returns them typed, in order. Throws on the first problem found. */
export const validateRules = (rules: readonly unknown[]): CohortRuleInput[] => {
  if (!Array.isArray(rules)) throw new Error("rules must be a JSON array");
  if (rules.length > DYE_MAX_RULES) {
    throw new Error(`at most ${DYE_MAX_RULES} rules fit one rule set, got ${rules.length}`);
  }
  return rules.map(validateOne);
};

/** Parses the text of a rules file. */
export const parseRulesFile = (text: string, file = "rules file"): CohortRuleInput[] => {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: not valid JSON: ${(e as Error).message}`);
  }
  if (!Array.isArray(json)) throw new Error(`${file}: must be a JSON array of rules`);
  try {
    return validateRules(json);
  } catch (e) {
    throw new Error(`${file}: ${(e as Error).message}`);
  }
};

export const readRulesFile = (path: string): CohortRuleInput[] =>
  parseRulesFile(readFileSync(path, "utf8"), path);
