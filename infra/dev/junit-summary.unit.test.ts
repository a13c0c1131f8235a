// The summary CI reads: counts from bun's JUnit report, and each failure's message repeated before the line.
import { expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const summarise = (xml: string | undefined, checksPassed = 2, checksFailed = 0) => {
  const dir = mkdtempSync(join(tmpdir(), "indigo-junit-"));
  try {
    const report = join(dir, "report.xml");
    if (xml !== undefined) writeFileSync(report, xml);
    const r = Bun.spawnSync([
      process.execPath,
      join(import.meta.dir, "junit-summary.ts"),
      report,
      `${checksPassed}`,
      `${checksFailed}`,
    ]);
    return { out: r.stdout.toString(), err: r.stderr.toString() };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
};

const REPORT = `<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="bun test" tests="3" failures="1" skipped="1">
  <testsuite name="a.test.ts" file="a.test.ts" tests="3">
    <testcase name="passes" classname="" time="0.1" file="a.test.ts" line="2" assertions="1" />
    <testcase name="a &quot;quoted&quot; name fails" classname="" time="0.1" file="a.test.ts" line="7" assertions="1">
      <failure type="AssertionError" message="short">AssertionError: expect(received).toBe(expected)&#10;&#10;Expected: 2&#10;Received: 3&#10;      at a.test.ts:9:14&#10;</failure>
    </testcase>
    <testcase name="skipped one" classname="" time="0" file="a.test.ts" line="12"><skipped /></testcase>
  </testsuite>
</testsuites>`;

test("counts passes, failures and skips with the shell's checks; a failure's message is repeated, decoded", () => {
  const { out, err } = summarise(REPORT, 2, 1);
  expect(out).toBe("3 passed, 2 failed, 1 skipped\n");
  expect(err).toContain('dev: FAILED a "quoted" name fails (a.test.ts:7)\n');
  expect(err).toContain("    Expected: 2\n    Received: 3\n");
  expect(err).toContain("    at a.test.ts:9:14");
  expect(err).toContain("dev: skipped skipped one");
});

test("a long failure is cut to its first lines", () => {
  const body = Array.from({ length: 100 }, (_, i) => `line ${i}`).join("&#10;");
  const xml = REPORT.replace(/AssertionError: expect[\s\S]*?<\/failure>/, `${body}</failure>`);
  const { err } = summarise(xml);
  expect(err).toContain("    line 39\n");
  expect(err).not.toContain("line 40\n");
  expect(err).toContain("… 60 more lines");
});

test("no report, or one without tests, is a failure, never 0 failed", () => {
  const missing = summarise(undefined);
  expect(missing.out).toBe("2 passed, 1 failed\n");
  expect(missing.err).toContain("no test report");
  const empty = summarise("<testsuites></testsuites>");
  expect(empty.out).toBe("2 passed, 1 failed\n");
  expect(empty.err).toContain("lists no test");
});
