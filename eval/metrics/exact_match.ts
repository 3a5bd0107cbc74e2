import type { Metric } from "../metric.ts";
import { meanMetric } from "./_mean.ts";

/**
 * Exact match: the trimmed prediction equals one trimmed reference exactly; case and
 * punctuation count (BIG-bench's `exact_str_match`). Score: percent of examples matched.
 *
 * @example
 * ```ts
 * import { exactMatchMetric, scoreCorpus } from "../metrics.ts";
 * const r = scoreCorpus(exactMatchMetric, [" 4 ", "FIVE"], [["4"], ["five"]]);
 * if (r.score !== 50 || r.signature !== "nrefs:1|norm:trim") throw new Error();
 * ```
 */
export const exactMatchMetric: Metric = meanMetric({
  name: "exact_match",
  displayName: "EM",
  description:
    "Percent of predictions that, trimmed, equal a trimmed reference exactly (BIG-bench exact_str_match).",
  value: (prediction, references) =>
    references.some((ref) => ref.trim() === prediction.trim()) ? 1 : 0,
  settings: "norm:trim",
  rightOrWrong: true,
});
