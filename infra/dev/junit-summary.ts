// Turns bun's JUnit report plus the shell's lint/type-check counts into the one line CI reads.
// A missing or unreadable report is a failure, never "0 failed".
import { existsSync, readFileSync } from "node:fs";

const [reportPath = "", checksPassedArg = "0", checksFailedArg = "0"] = process.argv.slice(2);
let passed = Number(checksPassedArg);
let failed = Number(checksFailedArg);
let skipped = 0;

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
    const name = /name="([^"]*)"/.exec(head)?.[1] ?? "?";
    if (/<(failure|error)\b/.test(testCase)) {
      failed += 1;
      console.error(`dev: FAILED ${name}`);
    } else if (/<skipped\b/.test(testCase)) {
      skipped += 1;
      console.error(`dev: skipped ${name}`);
    } else {
      passed += 1;
    }
  }
}

console.log(`${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ""}`);
