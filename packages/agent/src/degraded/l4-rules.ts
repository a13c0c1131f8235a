// The rules degraded mode can still apply: L3/L4 only, `{dye, dport?, daddr?}` (at least one of the two),
// TCP. Netfilter sees ports and addresses, never payload, so trace-id / header / SNI / percent rules have
// no degraded form. Kept apart from the cohort rules file on purpose: the engine's rule table cannot hold
// them, and a cohort rule silently weakened to a port would dye traffic that is not in the cohort.
import { isIP } from "node:net";

export interface L4Rule {
  dye: number;
  /** TCP destination port */
  dport?: number;
  /** destination address or CIDR, IPv4 or IPv6 */
  daddr?: string;
}

const FIELDS = ["dye", "dport", "daddr"];

const isObject = (x: unknown): x is Record<string, unknown> =>
  typeof x === "object" && x !== null && !Array.isArray(x);

const checkCidr = (s: string, where: string): string => {
  const [addr, prefix, extra] = s.split("/");
  const family = isIP(addr ?? "");
  if (extra !== undefined || family === 0) {
    throw new Error(`${where}: "daddr" must be an IPv4/IPv6 address or CIDR, got ${JSON.stringify(s)}`);
  }
  if (prefix !== undefined) {
    const bits = Number(prefix);
    if (!/^\d+$/.test(prefix) || bits > (family === 4 ? 32 : 128)) {
      throw new Error(`${where}: prefix length of ${JSON.stringify(s)} is out of range`);
    }
  }
  return s;
};

export const validateL4Rules = (rules: unknown): L4Rule[] => {
  if (!Array.isArray(rules)) throw new Error("L4 rules must be a JSON array");
  return rules.map((raw, i) => {
    const where = `L4 rule ${i}`;
    if (!isObject(raw)) throw new Error(`${where}: must be an object, got ${JSON.stringify(raw)}`);
    for (const key of Object.keys(raw)) {
      if (!FIELDS.includes(key)) {
        throw new Error(
          `${where}: unknown field "${key}" (allowed: ${FIELDS.join(", ")}; payload matchers have no netfilter form)`,
        );
      }
    }
    const { dye, dport, daddr } = raw;
    if (typeof dye !== "number" || !Number.isInteger(dye) || dye < 1 || dye > 0xffff_ffff) {
      throw new Error(`${where}: "dye" must be an integer from 1 to 4294967295, got ${JSON.stringify(dye)}`);
    }
    if (dport === undefined && daddr === undefined)
      throw new Error(`${where}: needs "dport", "daddr" or both`);
    const rule: L4Rule = { dye };
    if (dport !== undefined) {
      if (typeof dport !== "number" || !Number.isInteger(dport) || dport < 1 || dport > 65535) {
        throw new Error(`${where}: "dport" must be a port from 1 to 65535, got ${JSON.stringify(dport)}`);
      }
      rule.dport = dport;
    }
    if (daddr !== undefined) {
      if (typeof daddr !== "string") throw new Error(`${where}: "daddr" must be a string`);
      rule.daddr = checkCidr(daddr, where);
    }
    return rule;
  });
};

export const parseL4Rules = (text: string, file = "L4 rules file"): L4Rule[] => {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: not valid JSON: ${(e as Error).message}`);
  }
  try {
    return validateL4Rules(json);
  } catch (e) {
    throw new Error(`${file}: ${(e as Error).message}`);
  }
};
