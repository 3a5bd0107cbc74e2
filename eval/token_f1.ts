import { pySplit } from "./_python.ts";
import { normalizeAnswer, type NormalizeAnswerOptions } from "./normalize_answer.ts";

/**
 * SQuAD-style token F1, the best over the references: both sides are
 * normalised ({@linkcode normalizeAnswer}) and split on whitespace; matches are
 * the bag-of-tokens overlap. Follows the SQuAD v2.0 script's `compute_f1`:
 * when either side has no tokens, F1 is 1 if both have none and 0 otherwise.
 * (The v1.1 script gave 0 in both cases.)
 *
 * @example
 * ```ts
 * import { tokenF1 } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * // "eiffel tower" vs "eiffel tower in paris": P = 2/2, R = 2/4, F1 = 2/3.
 * assert.equal(tokenF1("The Eiffel Tower", ["Eiffel Tower in Paris", "Paris"]), 2 / 3);
 * assert.equal(tokenF1("", [""]), 1);
 * ```
 */
export function tokenF1(
  prediction: string,
  references: string | readonly string[],
  options: NormalizeAnswerOptions = {},
): number {
  const refs = typeof references === "string" ? [references] : references;
  if (refs.length === 0) throw new RangeError("Cannot compute token F1: no references given");
  const predTokens = pySplit(normalizeAnswer(prediction, options));
  return Math.max(...refs.map((ref) => f1(predTokens, pySplit(normalizeAnswer(ref, options)))));
}

function f1(pred: readonly string[], gold: readonly string[]): number {
  if (pred.length === 0 || gold.length === 0) return pred.length === gold.length ? 1 : 0;
  const goldCounts = new Map<string, number>();
  for (const token of gold) goldCounts.set(token, (goldCounts.get(token) ?? 0) + 1);
  let same = 0;
  for (const token of pred) {
    const left = goldCounts.get(token) ?? 0;
    if (left > 0) {
      same++;
      goldCounts.set(token, left - 1);
    }
  }
  if (same === 0) return 0;
  const precision = same / pred.length;
  const recall = same / gold.length;
  return 2 * precision * recall / (precision + recall);
}
