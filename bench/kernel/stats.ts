// Paired-comparison statistics for noisy timing: medians and a distribution-free confidence interval of the
// median (order statistics of the binomial), so no normality is assumed of a VM's latency.

export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error("median of no values");
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function binomialCdf(k: number, n: number): number {
  // P(X <= k) for X ~ Binomial(n, 1/2), summed in log space so n in the hundreds stays exact enough.
  let total = 0;
  let logChoose = 0;
  for (let i = 0; i <= k; i++) {
    if (i > 0) logChoose += Math.log(n - i + 1) - Math.log(i);
    total += Math.exp(logChoose - n * Math.LN2);
  }
  return total;
}

/**
 * The [lower, upper] confidence interval of the median of `values` at `confidence` (e.g. 0.95): the sorted
 * values at ranks k and n-k+1 where k is the largest rank with P(X < k) <= (1-confidence)/2.
 */
export function medianConfidenceInterval(values: readonly number[], confidence = 0.95): [number, number] {
  const n = values.length;
  if (n < 6)
    throw new Error(`a ${confidence * 100} % interval of the median needs at least 6 values, got ${n}`);
  const sorted = [...values].sort((a, b) => a - b);
  const alpha = (1 - confidence) / 2;
  let k = 0;
  while (binomialCdf(k, n) <= alpha) k++;
  // k values lie strictly below the lower bound with probability <= alpha: the bound is the k-th smallest.
  const lower = Math.max(k - 1, 0);
  return [sorted[lower]!, sorted[n - 1 - lower]!];
}
