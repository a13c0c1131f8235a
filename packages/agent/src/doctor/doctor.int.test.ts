// `indigo-agent doctor` against the real verifier: the deliberately broken program in testdata/ (compiled
// here with clang against bpf/build/vmlinux.h) must be reported at the right instruction and source line,
// and every program of the real engine object must verify. Root + BPF only: skips with a reason
// elsewhere, except under CI=true where it must run.
import { beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bpfObjectPath } from "../bpf-objects.ts";
import { buildBpf, skipping } from "../testing/kernel-gate.ts";
import type { DoctorReport } from "./doctor.ts";

const T = 120_000;
const REPO = join(import.meta.dir, "../../../..");
const CLI = join(REPO, "packages/agent/src/cli/main.ts");
const BROKEN_SRC = join(import.meta.dir, "testdata/broken.bpf.c");
const CI = process.env.CI === "true";

const has = (cmd: string): boolean => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;
const missing = (): string | undefined => {
  if (process.getuid?.() !== 0) return "needs root (CAP_BPF to load programs)";
  if (!existsSync("/sys/kernel/btf/vmlinux")) return "kernel has no BTF (/sys/kernel/btf/vmlinux)";
  for (const tool of ["make", "clang", "bpftool"]) if (!has(tool)) return `${tool} is not installed`;
  return undefined;
};
const skipReason = missing();
if (skipReason && !CI) console.warn(`skipping doctor integration tests: ${skipReason}`);
const it = skipReason && !CI ? test.skip : test;

/** The line of broken.bpf.c marked BROKEN (1-based), so the test follows edits of the file. */
const brokenLine = (): number =>
  readFileSync(BROKEN_SRC, "utf8")
    .split("\n")
    .findIndex((l) => l.includes("BROKEN:")) + 1;

let brokenObj = "";

const doctor = (...args: string[]) => {
  const run = spawnSync("bun", [CLI, "doctor", ...args], { encoding: "utf8", timeout: T });
  return { code: run.status, out: run.stdout, err: run.stderr };
};

beforeAll(() => {
  if (skipping("doctor integration tests", skipReason)) return;
  buildBpf();
  const dir = mkdtempSync(join(tmpdir(), "indigo-doctor-"));
  brokenObj = join(dir, "broken.bpf.o");
  const cc = spawnSync(
    "clang",
    ["-target", "bpf", "-g", "-O2", "-I", join(REPO, "bpf/build"), "-c", BROKEN_SRC, "-o", brokenObj],
    { encoding: "utf8" },
  );
  if (cc.status !== 0) throw new Error(`clang failed:\n${cc.stderr}`);
  process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
}, T);

describe("indigo-agent doctor", () => {
  it(
    "names the instruction, source line, message, registers and hint of an unchecked map lookup",
    () => {
      const { code, out } = doctor("--json", "--object", brokenObj);
      expect(code).toBe(2);
      const report = JSON.parse(out) as DoctorReport;
      expect(report.ok).toBe(false);
      if (!("rejected" in report)) throw new Error(`expected a rejection, got ${out}`);
      // The checked program before it verifies and is listed as OK.
      expect(report.programs.map((p) => p.name)).toEqual(["count_ok"]);
      const r = report.rejected;
      expect(r.program).toBe("count_unchecked");
      expect(r.section).toBe("sockops");
      expect(r.source).toEqual({
        file: "broken.bpf.c",
        line: brokenLine(),
        text: "*n += 1; /* BROKEN: no NULL check */",
      });
      // clang -O2: r0 = lookup result; insn 7 loads through it (ld_imm64 of the map takes 2 slots).
      expect(r.insn).toBe(7);
      expect(r.insnText).toBe("r1 = *(u64 *)(r0 +0)");
      expect(r.message).toBe("R0 invalid mem access 'map_value_or_null'");
      expect(r.registers.R0).toStartWith("map_value_or_null(");
      expect(r.registers.R10).toBe("fp0");
      expect(r.cause).toBe("missing null check");
      expect(r.hint).toContain("NULL");
      expect(r.stats.processed).toBeGreaterThan(0);
    },
    T,
  );

  it(
    "prints the same rejection for people",
    () => {
      const { code, out } = doctor("--object", brokenObj);
      expect(code).toBe(2);
      expect(out).toContain("count_ok (sockops):");
      expect(out).toContain("count_unchecked (sockops): REJECTED by the verifier");
      expect(out).toContain(`source      broken.bpf.c:${brokenLine()}: *n += 1;`);
      expect(out).toContain("instruction 7: r1 = *(u64 *)(r0 +0)");
      expect(out).toContain("cause       missing null check");
    },
    T,
  );

  it(
    "reports OK with instruction counts for every program of the engine object",
    () => {
      const { code, out, err } = doctor("--json");
      expect(err).toBe("");
      expect(code).toBe(0);
      const report = JSON.parse(out) as DoctorReport;
      expect(report.ok).toBe(true);
      expect(report.object).toBe(bpfObjectPath("indigo"));
      const names = report.programs.map((p) => p.name).sort();
      for (const prog of [
        "handle_connect4",
        "handle_connect6",
        "handle_sock_ops",
        "handle_sock_recv",
        "handle_tc_egress",
      ])
        expect(names).toContain(prog);
      for (const p of report.programs) {
        expect(p.insns).toBeGreaterThan(0);
        expect(p.processed).toBeGreaterThan(0);
      }
      const human = doctor();
      expect(human.code).toBe(0);
      expect(human.out).toContain(`all ${report.programs.length} programs verified`);
    },
    T,
  );

  it(
    "exits 1 with the libbpf error for an object it cannot open",
    () => {
      const { code, out } = doctor("--json", "--object", "/nonexistent/x.bpf.o");
      expect(code).toBe(1);
      const report = JSON.parse(out) as { ok: boolean; error: string };
      expect(report.ok).toBe(false);
      expect(report.error).toStartWith("failed to open BPF object /nonexistent/x.bpf.o:");
    },
    T,
  );
});
