// The shape every benchmark reports (DESIGN.md "Running it"): a benchmark that cannot run says why in
// `detail` and reports no value.
export interface BenchResult {
  readonly name: string;
  readonly value: number | null;
  readonly unit: string;
  readonly target: number | null;
  readonly better: "lower" | "higher";
  readonly detail: string;
}

export interface Benchmark {
  readonly name: string;
  readonly run: () => Promise<BenchResult[]>;
}
