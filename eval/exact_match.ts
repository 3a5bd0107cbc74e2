import { normalizeAnswer, type NormalizeAnswerOptions } from "./normalize_answer.ts";

/**
 * Exact match after {@linkcode normalizeAnswer} (SQuAD's `compute_exact`), the
 * best over the references: 1 if the normalised prediction equals any
 * normalised reference, else 0. Turn normalisation steps off through
 * `options`; with all of them off this is plain string equality.
 *
 * @example
 * ```ts
 * import { exactMatch } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(exactMatch("the Eiffel Tower.", ["Eiffel Tower", "Paris"]), 1);
 * assert.equal(exactMatch("Eiffel", "Eiffel Tower"), 0);
 * assert.equal(exactMatch("Paris.", "paris", { lowercase: false }), 0);
 * ```
 */
export function exactMatch(
  prediction: string,
  references: string | readonly string[],
  options: NormalizeAnswerOptions = {},
): number {
  const refs = typeof references === "string" ? [references] : references;
  if (refs.length === 0) throw new RangeError("Cannot compute exact match: no references given");
  const normalized = normalizeAnswer(prediction, options);
  return refs.some((ref) => normalizeAnswer(ref, options) === normalized) ? 1 : 0;
}
