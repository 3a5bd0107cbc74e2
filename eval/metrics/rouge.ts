import { pyFormatFixed } from "../_python.ts";
import { bootstrapAggregate } from "../bootstrap_aggregate.ts";
import type { Metric, MetricOptions, MetricScore } from "../metric.ts";
import { sumStatistics } from "../metric.ts";
import { DEFAULT_ROUGE_TYPES, type RougeScores } from "../rouge.ts";
import { rougeMulti } from "../rouge_multi.ts";

const MEASURES = ["precision", "recall", "fmeasure"] as const;

/** Per-example ROUGE scores back from their statistics (precision, recall, F1 per type). */
function exampleScores(statistics: readonly number[]): RougeScores {
  const scores: RougeScores = {};
  DEFAULT_ROUGE_TYPES.forEach((type, t) => {
    const [precision, recall, fmeasure] = statistics.slice(3 * t, 3 * t + 3);
    scores[type] = { precision, recall, fmeasure };
  });
  return scores;
}

function meanScore(summed: readonly number[]): MetricScore {
  const n = summed[3 * DEFAULT_ROUGE_TYPES.length];
  if (summed.length !== 3 * DEFAULT_ROUGE_TYPES.length + 1 || !(n > 0)) {
    throw new RangeError(
      `Cannot score ROUGE: expected ${
        3 * DEFAULT_ROUGE_TYPES.length + 1
      } statistics ending in a positive count, got ${summed.length}`,
    );
  }
  const parts: Record<string, number> = {};
  // 100 · (sum of F1) / n, as the mean of rouge_score's per-example F1.
  DEFAULT_ROUGE_TYPES.forEach((type, t) => parts[type] = 100 * summed[3 * t + 2] / n);
  return {
    score: parts.rougeL,
    parts,
    formatted: `ROUGE = ${pyFormatFixed(parts.rougeL, 2)} ` +
      DEFAULT_ROUGE_TYPES.map((type) => `${type} ${pyFormatFixed(parts[type], 2)}`).join(" "),
  };
}

/**
 * ROUGE as google-research rouge_score 0.1.2 computes it (`RougeScorer(["rouge1", "rouge2",
 * "rougeL", "rougeLsum"])`, `score_multi` keeping the best reference per type): the mean F1 of
 * each type × 100; the score is rougeL. The corpus score also carries rouge_score's
 * `BootstrapAggregator` interval (1,000 resamples, seed 0) in its line and `details`. Reads
 * `stem` from the options.
 *
 * @example
 * ```ts
 * import { rougeMetric, scoreCorpus } from "../metrics.ts";
 * const r = scoreCorpus(rougeMetric, ["the cat sat", "a dog"], [["the cat"], ["a dog"]]);
 * // rouge1 F1: 2·(2/3·1)/(2/3+1) = 0.8 and 1: mean 90.
 * if (Math.abs(r.parts.rouge1 - 90) > 1e-12 || r.score !== r.parts.rougeL) throw new Error();
 * ```
 */
export const rougeMetric: Metric = Object.freeze<Metric>({
  name: "rouge",
  displayName: "ROUGE",
  description:
    "Mean ROUGE-1/2/L/Lsum F1 (× 100) as rouge_score 0.1.2 computes it, best reference per type; the score is ROUGE-L.",
  higherIsBetter: true,
  scale: 100,
  mainPart: "rougeL",
  statistics(prediction: string, references: readonly string[], options: MetricOptions = {}) {
    const scores = rougeMulti(references, prediction, { useStemmer: options.stem });
    return [
      ...DEFAULT_ROUGE_TYPES.flatMap((type) => MEASURES.map((m) => scores[type][m])),
      1,
    ];
  },
  score: meanScore,
  aggregate(statistics: readonly (readonly number[])[]): MetricScore {
    const mean = meanScore(sumStatistics(statistics));
    const interval = bootstrapAggregate(statistics.map(exampleScores));
    const bounds = (type: string) =>
      `[${pyFormatFixed(100 * interval[type].low.fmeasure, 2)}–${
        pyFormatFixed(100 * interval[type].high.fmeasure, 2)
      }]`;
    return {
      ...mean,
      formatted: `ROUGE = ${pyFormatFixed(mean.score, 2)} ` +
        DEFAULT_ROUGE_TYPES.map((type) =>
          `${type} ${pyFormatFixed(mean.parts[type], 2)} ${bounds(type)}`
        ).join(" ") + " (F1 × 100, 95% bootstrap interval)",
      details: interval,
    };
  },
  signature: ({ nrefs, stem }) =>
    `nrefs:${nrefs}|stem:${stem ? "yes" : "no"}|impl:rouge_score-0.1.2`,
});
