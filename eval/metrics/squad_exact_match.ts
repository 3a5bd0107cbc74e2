import type { Metric } from "../metric.ts";
import { exactMatch } from "../exact_match.ts";
import { meanMetric } from "./_mean.ts";

/**
 * SQuAD v1.1 exact match: prediction and references normalised first (lowercase, punctuation
 * and English articles removed, whitespace collapsed; {@linkcode exactMatch}).
 *
 * @example
 * ```ts
 * import { scoreCorpus, squadExactMatchMetric } from "../metrics.ts";
 * const r = scoreCorpus(squadExactMatchMetric, ["Paris!", "the big cat"], [["paris"], ["a big dog"]]);
 * if (r.score !== 50 || r.signature !== "nrefs:1|norm:squad") throw new Error();
 * ```
 */
export const squadExactMatchMetric: Metric = meanMetric({
  name: "squad_exact_match",
  displayName: "SQuAD-EM",
  description:
    "Percent of predictions equal to a reference after SQuAD v1.1 normalisation (lowercase, no punctuation or articles).",
  value: (prediction, references) => exactMatch(prediction, references),
  settings: "norm:squad",
  rightOrWrong: true,
});
