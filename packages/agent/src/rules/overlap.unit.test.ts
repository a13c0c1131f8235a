// cohortOverlap against the matchers themselves: every example it gives is matched by both rules, and where it
// says "none", a brute-force search over the rules' own ids finds none either.
import { expect, test } from "bun:test";
import { inPercentCohort } from "./compile.ts";
import { type CohortMatcher, cohortOverlap, sniMatches } from "./overlap.ts";
import { compilePattern } from "./pattern.ts";

const matchesPattern = (id: string, pattern: string): boolean => {
  const { positions, classes } = compilePattern(pattern);
  if (id.length !== positions.length) return false;
  return positions.every((k, i) => {
    const c = id.charCodeAt(i);
    return (((classes[k]?.[c >> 3] ?? 0) >> (c & 7)) & 1) === 1;
  });
};
const idOf = (example: string | undefined) => example?.replace(/^trace id /, "") ?? "";

test("trace-id patterns: an id in both when every position's classes meet, none otherwise", () => {
  const cases: [string, string, boolean][] = [
    ["^t-[a-f0-9]{8}-[a-f0-9]{4}", "^t-[a-f0-9]{8}-[a-f0-9]{4}$", true], // the demo's, written twice
    ["^t-[a-f0-9]{8}$", "^t-[0-9]{8}$", true],
    ["^t-[a-f]{8}$", "^t-[0-9]{8}$", false], // no byte in both classes
    ["^t-[a-f0-9]{8}$", "^t-[a-f0-9]{9}$", false], // lengths differ
    ["^qa-\\d{6}$", "^..\\d{6}$", false], // 9 bytes against 8
    ["^qa-\\d{6}$", "^..-\\d{6}$", true],
    ["^qa-\\d{6}$", "^...\\d{6}$", true],
    ["^canary-\\w{4}$", "^stable-\\w{4}$", false],
  ];
  for (const [p, q, overlap] of cases) {
    const example = cohortOverlap({ traceIdPattern: p }, { traceIdPattern: q });
    expect([p, q, example !== undefined]).toEqual([p, q, overlap]);
    if (example) {
      expect(matchesPattern(idOf(example), p)).toBe(true);
      expect(matchesPattern(idOf(example), q)).toBe(true);
    }
  }
  expect(cohortOverlap({ traceIdPattern: "^t-[a-f0-9]{8}$" }, { traceIdPattern: "^t-[0-9]{8}$" })).toBe(
    "trace id t-00000000",
  );
});

test("small random patterns: an overlap is reported exactly when enumerating one pattern's ids finds one the other matches", () => {
  const units = ["a", "b", "[ab]", "[bc]", "[a-c]", "\\d", "[0-2]", "."];
  let seed = 7;
  const pick = <T>(xs: readonly T[]): T => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return xs[seed % xs.length] as T;
  };
  const randomPattern = () =>
    `^${Array.from({ length: 1 + (pick([0, 1, 2]) ?? 0) }, () => pick(units)).join("")}$`;
  const idsOf = (pattern: string): string[] => {
    const { positions, classes } = compilePattern(pattern);
    let ids = [""];
    for (const k of positions) {
      const members = Array.from({ length: 128 }, (_, c) => c).filter(
        (c) => (((classes[k]?.[c >> 3] ?? 0) >> (c & 7)) & 1) === 1,
      );
      ids = ids.flatMap((id) => members.map((c) => id + String.fromCharCode(c)));
    }
    return ids;
  };
  const verdicts = { shared: 0, apart: 0 };
  for (let i = 0; i < 300; i++) {
    const [p, q] = [randomPattern(), randomPattern()];
    const shared = idsOf(p).some((id) => matchesPattern(id, q));
    const example = cohortOverlap({ traceIdPattern: p }, { traceIdPattern: q });
    expect([p, q, example !== undefined]).toEqual([p, q, shared]);
    verdicts[shared ? "shared" : "apart"] += 1;
  }
  // both answers are exercised, not one of them 300 times
  expect(verdicts.shared).toBeGreaterThan(30);
  expect(verdicts.apart).toBeGreaterThan(30);
});

test("percent shares always meet; a pattern meets a share when one of its ids hashes into it", () => {
  const both = cohortOverlap({ percent: 0.01 }, { percent: 50 });
  expect(inPercentCohort(idOf(both), 0.01)).toBe(true);
  const wide = cohortOverlap({ percent: 10 }, { traceIdPattern: "^t-[a-f0-9]{8}$" });
  expect(matchesPattern(idOf(wide), "^t-[a-f0-9]{8}$")).toBe(true);
  expect(inPercentCohort(idOf(wide), 10)).toBe(true);
  // A pattern of 4 ids: the search covers them all and decides exactly.
  const few = "^id-[ab][01]$";
  const ids = ["id-a0", "id-a1", "id-b0", "id-b1"];
  for (const percent of [0.01, 1, 5, 30, 100]) {
    const example = cohortOverlap({ traceIdPattern: few }, { percent });
    const inShare = ids.filter((id) => inPercentCohort(id, percent));
    expect(example === undefined).toBe(inShare.length === 0);
    if (example) expect(inShare).toContain(idOf(example));
  }
});

test("headers: the same name in any case and the same value; SNI suffixes on label boundaries", () => {
  const h = (name: string, value: string): CohortMatcher => ({ header: { name, value } });
  expect(cohortOverlap(h("X-Canary", "1"), h("x-canary", "1"))).toBe("header X-Canary: 1");
  expect(cohortOverlap(h("x-canary", "1"), h("x-canary", "2"))).toBeUndefined();
  expect(cohortOverlap(h("x-canary", "1"), h("x-beta", "1"))).toBeUndefined();

  const sniCases: [string, string, boolean][] = [
    ["canary.example.com", "canary.example.com", true],
    ["example.com", "canary.example.com", true],
    ["example.com", ".example.com", true],
    [".example.com", "api.example.com", true],
    ["Canary.Example.com", ".example.COM", true],
    ["example.com", "badexample.com", false],
    [".a.example.com", ".b.example.com", false],
    ["canary.example.com", ".canary.example.net", false],
  ];
  for (const [a, b, overlap] of sniCases) {
    const example = cohortOverlap({ sni: a }, { sni: b });
    expect([a, b, example !== undefined]).toEqual([a, b, overlap]);
    if (example) {
      const name = example.replace(/^TLS server name /, "");
      expect(sniMatches(name, a.toLowerCase()) && sniMatches(name, b.toLowerCase())).toBe(true);
    }
  }
});

test("rules on different things are not judged: a header and a trace id, an SNI and a percent", () => {
  expect(cohortOverlap({ header: { name: "x-canary", value: "1" } }, { traceIdPattern: "^t-\\d{4}$" })).toBe(
    undefined,
  );
  expect(cohortOverlap({ sni: "canary.example.com" }, { percent: 100 })).toBeUndefined();
});
