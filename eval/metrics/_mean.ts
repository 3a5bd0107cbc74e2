// Metrics that average one value per example: their statistics are [value, 1], so summed
// statistics hold the total and the count. Internal to eval/.
import { pyFormatFixed } from "../_python.ts";
import type { Metric, MetricOptions } from "../metric.ts";

/** What an averaged metric declares; {@linkcode meanMetric} adds the statistics and the score. */
export interface MeanMetricSpec {
  name: string;
  displayName: string;
  description: string;
  /** The example's value in [0, 1]. */
  value(prediction: string, references: readonly string[], options: MetricOptions): number;
  /** The signature's settings after `nrefs`, e.g. "norm:trim". */
  settings: string;
  /** Whether the value is right (1) or wrong (0), so the harness can report per-example correctness. */
  rightOrWrong: boolean;
}

/** An averaged metric: the mean of the examples' values, × 100. */
export function meanMetric(spec: MeanMetricSpec): Metric {
  const metric: Metric = {
    name: spec.name,
    displayName: spec.displayName,
    description: spec.description,
    higherIsBetter: true,
    scale: 100,
    mainPart: spec.name,
    statistics: (prediction, references, options = {}) => [
      spec.value(prediction, references, options),
      1,
    ],
    score(summed) {
      const [total, n] = summed;
      if (summed.length !== 2 || !(n > 0)) {
        throw new RangeError(
          `Cannot score ${spec.name}: expected [total, count] with a positive count, got [${
            summed.join(", ")
          }]`,
        );
      }
      // 100 · total / n, in this order, so a mean of 0/1 values is exact (1 of 2 → 50).
      const score = 100 * total / n;
      return {
        score,
        parts: { [spec.name]: score },
        formatted: `${spec.displayName} = ${pyFormatFixed(score, 2)}`,
      };
    },
    signature: ({ nrefs }) => `nrefs:${nrefs}|${spec.settings}`,
  };
  if (spec.rightOrWrong) metric.correct = (statistics) => statistics[0] === 1;
  return Object.freeze(metric);
}
