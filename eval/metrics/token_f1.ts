import type { Metric } from "../metric.ts";
import { tokenF1 } from "../token_f1.ts";
import { meanMetric } from "./_mean.ts";

/**
 * SQuAD v1.1 token F1 against the best reference, averaged over examples ({@linkcode tokenF1}).
 *
 * @example
 * ```ts
 * import { scoreCorpus, tokenF1Metric } from "../metrics.ts";
 * // "big cat" vs "big dog" after dropping articles: P = R = 1/2.
 * const r = scoreCorpus(tokenF1Metric, ["the big cat"], [["a big dog"]]);
 * if (r.score !== 50) throw new Error();
 * ```
 */
export const tokenF1Metric: Metric = meanMetric({
  name: "token_f1",
  displayName: "SQuAD-F1",
  description:
    "SQuAD v1.1 token F1 with the best reference, after SQuAD normalisation, averaged over examples.",
  value: (prediction, references) => tokenF1(prediction, references),
  settings: "norm:squad",
  rightOrWrong: false,
});
