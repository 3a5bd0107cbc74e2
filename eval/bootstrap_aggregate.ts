import { Mt19937 } from "./_mt19937.ts";
import type { RougeScore, RougeScores } from "./rouge.ts";

/** Options for {@linkcode bootstrapAggregate}. */
export interface BootstrapOptions {
  /** Width of the interval, in [0, 1]; low and high are its two percentiles. Default 0.95. */
  confidenceInterval?: number;
  /** Number of bootstrap resamples. Default 1000. */
  nSamples?: number;
  /**
   * Seed of the resampling generator, an integer in [0, 2^32 - 1]. Default 0.
   * The draws are numpy's legacy Mersenne Twister, so seed s reproduces
   * rouge_score run after `np.random.seed(s)` with the same examples and ROUGE
   * types in the same order.
   */
  seed?: number;
}

/** The mean of a score over a corpus, and its bootstrap interval. */
export interface AggregateScore {
  /** The plain mean over examples. */
  mean: RougeScore;
  /** Lower percentile of the bootstrap means ((1 - confidenceInterval) / 2). */
  low: RougeScore;
  /** Median of the bootstrap means (rouge_score's "mid"; close to, not equal to, the mean). */
  mid: RougeScore;
  /** Upper percentile of the bootstrap means ((1 + confidenceInterval) / 2). */
  high: RougeScore;
}

const MEASURES = ["precision", "recall", "fmeasure"] as const;

/**
 * Aggregates per-example ROUGE scores like rouge_score 0.1.2's
 * `BootstrapAggregator(confidence_interval, n_samples)`: for each ROUGE type
 * (in the order first seen), `nSamples` times draw as many examples as there
 * are, with replacement, and average them; then take the low, 50th and high
 * percentiles of those averages (numpy's linear interpolation). The plain
 * mean is reported as well.
 *
 * @example
 * ```ts
 * import { bootstrapAggregate } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const result = bootstrapAggregate([
 *   { rouge1: { precision: 1, recall: 1 / 3, fmeasure: 1 / 2 } },
 *   { rouge1: { precision: 0, recall: 0, fmeasure: 0 } },
 *   { rouge1: { precision: 1, recall: 1, fmeasure: 1 } },
 * ], { confidenceInterval: 0.9, seed: 123 });
 * assert.equal(result.rouge1.mean.precision, 2 / 3);
 * assert.ok(result.rouge1.low.precision <= result.rouge1.high.precision);
 * ```
 */
export function bootstrapAggregate(
  scores: readonly RougeScores[],
  options: BootstrapOptions = {},
): Record<string, AggregateScore> {
  const confidenceInterval = options.confidenceInterval ?? 0.95;
  const nSamples = options.nSamples ?? 1000;
  if (!(confidenceInterval >= 0 && confidenceInterval <= 1)) {
    throw new RangeError(
      `Cannot aggregate scores: confidenceInterval must be in [0, 1], got ${confidenceInterval}`,
    );
  }
  if (!Number.isInteger(nSamples) || nSamples <= 0) {
    throw new RangeError(
      `Cannot aggregate scores: nSamples must be a positive integer, got ${nSamples}`,
    );
  }
  if (scores.length === 0) throw new RangeError("Cannot aggregate scores: no scores given");
  const rng = new Mt19937(options.seed ?? 0);
  const delta = (1 - confidenceInterval) / 2;
  const quantiles = [100 * delta, 100 * 0.5, 100 * (1 - delta)].map((q) => q / 100);
  const byType = new Map<string, RougeScore[]>();
  for (const example of scores) {
    for (const [rougeType, score] of Object.entries(example)) {
      if (!byType.has(rougeType)) byType.set(rougeType, []);
      byType.get(rougeType)!.push(score);
    }
  }
  const result: Record<string, AggregateScore> = {};
  for (const [rougeType, rows] of byType) {
    // means[k][s]: measure k averaged over bootstrap sample s.
    const means = MEASURES.map(() => new Float64Array(nSamples));
    for (let s = 0; s < nSamples; s++) {
      const picks = rng.integersBelow(rows.length, rows.length);
      MEASURES.forEach((measure, k) => {
        let sum = 0;
        for (const pick of picks) sum += rows[pick][measure];
        means[k][s] = sum / rows.length;
      });
    }
    const [low, mid, high] = quantiles.map((q) =>
      toScore(means.map((column) => percentile(column, q)))
    );
    const mean = toScore(MEASURES.map((measure) => {
      let sum = 0;
      for (const row of rows) sum += row[measure];
      return sum / rows.length;
    }));
    result[rougeType] = { mean, low, mid, high };
  }
  return result;
}

function toScore([precision, recall, fmeasure]: number[]): RougeScore {
  return { precision, recall, fmeasure };
}

// numpy.percentile's default "linear" method, with its lerp written the same
// way so results agree to the last bit.
function percentile(values: Float64Array, quantile: number): number {
  const sorted = values.slice().sort();
  const n = sorted.length;
  const virtualIndex = (n - 1) * quantile;
  if (virtualIndex >= n - 1) return sorted[n - 1];
  const below = Math.floor(virtualIndex);
  const t = virtualIndex - below;
  const a = sorted[below];
  const b = sorted[below + 1];
  const diff = b - a;
  return t >= 0.5 ? b - diff * (1 - t) : a + diff * t;
}
