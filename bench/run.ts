// `./dev bench [PREFIX…]`: runs every benchmark in bench/*.bench.ts whose name starts with a prefix (all when
// none is given) and writes bench/results/latest.json.
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Benchmark, BenchResult } from "./benchmark.ts";

const prefixes = process.argv.slice(2);
const selected: Benchmark[] = [];
for (const file of readdirSync(import.meta.dir)
  .filter((f) => f.endsWith(".bench.ts"))
  .sort()) {
  const mod = (await import(join(import.meta.dir, file))) as { benchmarks: Benchmark[] };
  for (const b of mod.benchmarks) {
    if (prefixes.length === 0 || prefixes.some((p) => b.name.startsWith(p))) selected.push(b);
  }
}

const results: BenchResult[] = [];
for (const benchmark of selected) {
  console.error(`bench: ${benchmark.name}`);
  try {
    results.push(...(await benchmark.run()));
  } catch (error) {
    const detail = `failed: ${error instanceof Error ? error.message : String(error)}`;
    results.push({ name: benchmark.name, value: null, unit: "", target: null, better: "higher", detail });
  }
}

const outDir = join(import.meta.dir, "results");
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, "latest.json"), `${JSON.stringify(results, null, 2)}\n`);
for (const r of results) console.log(`${r.name}: ${r.value ?? "n/a"} ${r.unit} — ${r.detail}`);
process.exit(0);
