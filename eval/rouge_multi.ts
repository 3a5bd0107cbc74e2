import { DEFAULT_ROUGE_TYPES, rouge, type RougeOptions, type RougeScores } from "./rouge.ts";

/**
 * Scores one prediction against several targets as rouge_score 0.1.2's
 * `RougeScorer.score_multi(targets, prediction)` does: for each ROUGE type
 * separately, the target with the highest F1 wins (the first one on a tie, as
 * `np.argmax`), and its precision, recall and F1 are reported together. So
 * rouge1 and rougeL may come from different targets.
 *
 * @example
 * ```ts
 * import { rougeMulti } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const scores = rougeMulti(["first text", "first something"], "text first");
 * assert.equal(scores.rouge1.fmeasure, 1);
 * assert.equal(scores.rougeL.fmeasure, 0.5);
 * ```
 */
export function rougeMulti(
  targets: readonly string[],
  prediction: string,
  options: RougeOptions = {},
): RougeScores {
  if (targets.length === 0) throw new RangeError("Cannot score ROUGE: no targets given");
  const perTarget = targets.map((target) => rouge(target, prediction, options));
  const best: RougeScores = {};
  for (const rougeType of options.rougeTypes ?? DEFAULT_ROUGE_TYPES) {
    let winner = perTarget[0][rougeType];
    for (const scores of perTarget) {
      if (scores[rougeType].fmeasure > winner.fmeasure) winner = scores[rougeType];
    }
    best[rougeType] = winner;
  }
  return best;
}
