// Whether two cohort rules can claim the same request, with an example request that both match. The kernel
// gives a request the dye of the first matching rule in dye order, so of two running releases whose cohorts
// overlap, the one with the higher dye never sees the shared requests: a release whose cohort equals another's
// gets no traffic at all, and its coverage says nothing ("expected 0"). The API refuses to run such a pair.
//
// Certain overlaps only, on what identifies a request the same way in both rules:
//   trace-id pattern × pattern   a trace id in every position's class of both (exact: same length, classes meet)
//   percent × percent            always (both take the trace ids that hash below their share)
//   percent × pattern            a trace id of the pattern that hashes into the share (searched; a pattern
//                                with few ids may have none, then there is no overlap)
//   header × header              the same name (any case) and the same value
//   sni × sni                    one suffix within the other, on a label boundary
// Rules on different things (a header and a trace id, an SNI and anything) overlap only for requests that
// carry both, which nothing here can rule in or out: they are allowed, and the lower dye wins those.
import { inPercentCohort } from "./compile.ts";
import { compilePattern } from "./pattern.ts";

/** A rule's matcher, without its dye (the rules file's and the release's cohort alike). */
export type CohortMatcher =
  | { readonly traceIdPattern: string }
  | { readonly header: { readonly name: string; readonly value: string } }
  | { readonly sni: string }
  | { readonly percent: number };

/** A request both rules match, in words ("trace id t-00000000"), or undefined when they cannot share one. */
export function cohortOverlap(a: CohortMatcher, b: CohortMatcher): string | undefined {
  if ("traceIdPattern" in a && "traceIdPattern" in b) return patternsMeet(a.traceIdPattern, b.traceIdPattern);
  if ("percent" in a && "percent" in b) return percentsMeet(Math.min(a.percent, b.percent));
  if ("percent" in a && "traceIdPattern" in b) return patternInPercent(b.traceIdPattern, a.percent);
  if ("traceIdPattern" in a && "percent" in b) return patternInPercent(a.traceIdPattern, b.percent);
  if ("header" in a && "header" in b) {
    const same =
      a.header.name.toLowerCase() === b.header.name.toLowerCase() && a.header.value === b.header.value;
    return same ? `header ${a.header.name}: ${a.header.value}` : undefined;
  }
  if ("sni" in a && "sni" in b) return snisMeet(a.sni.toLowerCase(), b.sni.toLowerCase());
  return undefined;
}

const hasBit = (bits: Uint8Array, c: number): boolean => (((bits[c >> 3] ?? 0) >> (c & 7)) & 1) === 1;

/** The members of each position's class, in byte order. */
function positionMembers(pattern: string): number[][] {
  const { positions, classes } = compilePattern(pattern);
  const members = classes.map((bits) =>
    Array.from({ length: 256 }, (_, c) => c).filter((c) => hasBit(bits, c)),
  );
  return positions.map((k) => members[k] ?? []);
}

function patternsMeet(p: string, q: string): string | undefined {
  const a = positionMembers(p);
  const b = positionMembers(q);
  if (a.length !== b.length) return undefined; // ids of a pattern have exactly its length
  const id: number[] = [];
  for (const [i, members] of a.entries()) {
    const other = new Set(b[i]);
    const common = members.find((c) => other.has(c));
    if (common === undefined) return undefined;
    id.push(common);
  }
  return `trace id ${String.fromCharCode(...id)}`;
}

const SEARCH = 50_000; // ids tried; a share of 0.01 % (the smallest) takes ~10 000 on average

function percentsMeet(percent: number): string | undefined {
  for (let n = 0; n < SEARCH; n++) if (inPercentCohort(`id-${n}`, percent)) return `trace id id-${n}`;
  return undefined;
}

/** The pattern's ids in order (the last position varies fastest), up to SEARCH of them. */
function patternInPercent(pattern: string, percent: number): string | undefined {
  const members = positionMembers(pattern);
  const digits = members.map(() => 0);
  for (let n = 0; n < SEARCH; n++) {
    const id = String.fromCharCode(...digits.map((d, i) => members[i]?.[d] ?? 0));
    if (inPercentCohort(id, percent)) return `trace id ${id}`;
    let i = digits.length - 1;
    for (; i >= 0; i--) {
      const next = (digits[i] ?? 0) + 1;
      if (next < (members[i]?.length ?? 0)) {
        digits[i] = next;
        break;
      }
      digits[i] = 0;
    }
    if (i < 0) return undefined; // every id of the pattern tried
  }
  return undefined;
}

/** As the kernel matches a server name: "example.com" is the name or any subdomain, ".example.com" only the
 * subdomains (bpf/lib/sni.bpf.h). */
export const sniMatches = (name: string, rule: string): boolean =>
  rule.startsWith(".")
    ? name.length > rule.length && name.endsWith(rule)
    : name === rule || name.endsWith(`.${rule}`);

/** A name both match exists exactly when one rule's narrowest name matches the other. */
function snisMeet(a: string, b: string): string | undefined {
  const narrowest = (rule: string) => (rule.startsWith(".") ? `x${rule}` : rule);
  for (const name of [narrowest(a), narrowest(b)]) {
    if (sniMatches(name, a) && sniMatches(name, b)) return `TLS server name ${name}`;
  }
  return undefined;
}
