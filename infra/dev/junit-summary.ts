// Turns bun's JUnit report plus the shell's lint/type-check counts into the one line CI reads.
// A missing or unreadable report is a failure, never "0 failed".
// Each failure's message is repeated here, next to the summary: CI keeps only the tail of a run's output, and
// bun prints a failure's details where the test ran, minutes of output earlier.
import { existsSync, readFileSync } from "node:fs";

const [reportPath = "", checksPassedArg = "0", checksFailedArg = "0"] = process.argv.slice(2);
let passed = Number(checksPassedArg);
let failed = Number(checksFailedArg);
let skipped = 0;

/** Lines of one failure's text repeated at the end; the rest is in the run's output where the test ran. */
const DETAIL_LINES = 40;

const ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };
const unescapeXml = (s: string): string =>
  s.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (whole, ref: string) => {
    if (ref.startsWith("#x") || ref.startsWith("#X"))
      return String.fromCodePoint(Number.parseInt(ref.slice(2), 16));
    if (ref.startsWith("#")) return String.fromCodePoint(Number(ref.slice(1)));
    return ENTITIES[ref] ?? whole;
  });

const detailOf = (testCase: string): string => {
  const body = /<(?:failure|error)\b[^>]*>([\s\S]*?)<\/(?:failure|error)>/.exec(testCase)?.[1];
  const text = body ?? /<(?:failure|error)\b[^>]*\bmessage="([^"]*)"/.exec(testCase)?.[1] ?? "";
  const lines = unescapeXml(text).trimEnd().split("\n");
  const shown = lines.slice(0, DETAIL_LINES).map((l) => `    ${l}`);
  if (lines.length > DETAIL_LINES) shown.push(`    … ${lines.length - DETAIL_LINES} more lines`);
  return shown.join("\n");
};

if (!existsSync(reportPath)) {
  console.error(`dev: no test report at ${reportPath}: the test runner crashed or found no tests`);
  failed += 1;
} else {
  const xml = readFileSync(reportPath, "utf8");
  const cases = xml.match(/<testcase\b[\s\S]*?(?:\/>|<\/testcase>)/g) ?? [];
  if (cases.length === 0) {
    console.error("dev: the test report lists no test");
    failed += 1;
  }
  for (const testCase of cases) {
    const head = testCase.slice(0, testCase.indexOf(">") + 1);
    const name = unescapeXml(/name="([^"]*)"/.exec(head)?.[1] ?? "?");
    if (/<(failure|error)\b/.test(testCase)) {
      failed += 1;
      const file = unescapeXml(/\bfile="([^"]*)"/.exec(head)?.[1] ?? "?");
      const line = /\bline="(\d+)"/.exec(head)?.[1];
      console.error(`dev: FAILED ${name} (${file}${line ? `:${line}` : ""})\n${detailOf(testCase)}`);
    } else if (/<skipped\b/.test(testCase)) {
      skipped += 1;
      console.error(`dev: skipped ${name}`);
    } else {
      passed += 1;
    }
  }
}

console.log(`${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ""}`);
