import {
  type AggregateScore,
  bootstrapAggregate,
  type BootstrapOptions,
} from "./bootstrap_aggregate.ts";
import { rouge, type RougeOptions } from "./rouge.ts";
import { rougeMulti } from "./rouge_multi.ts";

/** Options for {@linkcode rougeCorpus}: how to score each pair, and how to aggregate. */
export type RougeCorpusOptions = RougeOptions & BootstrapOptions;

/**
 * Scores a corpus: each prediction against its target (or, when given an
 * array, against its several targets, keeping the best F1 per ROUGE type as
 * {@linkcode rougeMulti}), then aggregates the per-example scores with
 * {@linkcode bootstrapAggregate}: the mean, and a seeded bootstrap interval
 * low / mid / high as rouge_score's BootstrapAggregator reports it.
 *
 * @example
 * ```ts
 * import { rougeCorpus } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const result = rougeCorpus(
 *   ["one two three", ["one two five six", "seven eight"]],
 *   ["one two", "seven eight"],
 *   { rougeTypes: ["rouge1"] },
 * );
 * // Example 1: P 1, R 2/3; example 2: the second target matches exactly.
 * assert.equal(result.rouge1.mean.precision, 1);
 * assert.equal(result.rouge1.mean.recall, (2 / 3 + 1) / 2);
 * ```
 */
export function rougeCorpus(
  targets: readonly (string | readonly string[])[],
  predictions: readonly string[],
  options: RougeCorpusOptions = {},
): Record<string, AggregateScore> {
  if (targets.length !== predictions.length) {
    throw new RangeError(
      `Cannot score ROUGE: ${targets.length} targets but ${predictions.length} predictions`,
    );
  }
  const scores = predictions.map((prediction, i) => {
    const target = targets[i];
    return typeof target === "string"
      ? rouge(target, prediction, options)
      : rougeMulti(target, prediction, options);
  });
  return bootstrapAggregate(scores, options);
}
