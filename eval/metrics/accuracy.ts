import type { Metric } from "../metric.ts";
import { exactMatchMetric } from "./exact_match.ts";
import { meanMetric } from "./_mean.ts";

/**
 * Accuracy of a classification answered by generation: the same test as
 * {@linkcode exactMatchMetric} (the trimmed answer equals the trimmed label), reported under
 * the name classification tasks use.
 *
 * @example
 * ```ts
 * import { accuracyMetric, scoreCorpus } from "../metrics.ts";
 * const r = scoreCorpus(accuracyMetric, ["positive", "negative "], [["positive"], ["positive"]]);
 * if (r.score !== 50 || r.formatted !== "Accuracy = 50.00") throw new Error(r.formatted);
 * ```
 */
export const accuracyMetric: Metric = meanMetric({
  name: "accuracy",
  displayName: "Accuracy",
  description:
    "Percent of generated answers that, trimmed, equal the trimmed label (classification by generation).",
  value: (prediction, references) => exactMatchMetric.statistics(prediction, references)[0],
  settings: "norm:trim",
  rightOrWrong: true,
});
