// The decoder's layout against the C compiler: offsetof/sizeof of struct dye_event from bpf/dye_event.h,
// compiled for the host (x86-64 and BPF agree on the layout of fixed-width types). The bytes the kernel
// produces are decoded in ../engine/engine.int.test.ts (addresses, ports, comm of real connections).
import { expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DYE_EVENT_OFFSETS, DYE_EVENT_SIZE } from "./decode-dye-event.ts";

const BPF_DIR = join(import.meta.dir, "../../../../bpf");
const hasClang = spawnSync("sh", ["-c", "command -v clang"]).status === 0;
const CI = process.env.CI === "true";
if (!hasClang && !CI) console.warn("skipping dye_event layout test: clang is not installed");
const it = !hasClang && !CI ? test.skip : test;

it("DYE_EVENT_OFFSETS and DYE_EVENT_SIZE match offsetof/sizeof of the C struct", () => {
  const dir = mkdtempSync(join(tmpdir(), "indigo-layout-"));
  try {
    const fields = Object.keys(DYE_EVENT_OFFSETS);
    writeFileSync(
      join(dir, "layout.c"),
      [
        "#include <stdio.h>",
        "#include <stddef.h>",
        "#include <linux/types.h>",
        '#include "dye_event.h"',
        "int main(void) {",
        '  printf("size %zu\\n", sizeof(struct dye_event));',
        ...fields.map((f) => `  printf("${f} %zu\\n", offsetof(struct dye_event, ${f}));`),
        "  return 0;",
        "}",
      ].join("\n"),
    );
    const cc = spawnSync("clang", ["-I", BPF_DIR, "-o", join(dir, "layout"), join(dir, "layout.c")], {
      encoding: "utf8",
    });
    expect(cc.stderr).toBe("");
    const run = spawnSync(join(dir, "layout"), { encoding: "utf8" });
    const got = Object.fromEntries(
      run.stdout
        .trim()
        .split("\n")
        .map((l) => l.split(" "))
        .map(([k, v]) => [k, Number(v)]),
    );
    expect(got).toEqual({ size: DYE_EVENT_SIZE, ...DYE_EVENT_OFFSETS });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 30_000);
