/**
 * Perplexity from per-token losses: exp of the mean negative log-likelihood
 * (natural log), i.e. `exp(sum(losses) / losses.length)`. Pass the loss of
 * every predicted token of the corpus (not per-sequence means, unless all
 * sequences have the same length).
 *
 * An infinite loss (a token given probability 0) gives an infinite
 * perplexity. Empty input, NaN and -Infinity are errors, since they mean the
 * losses are broken rather than high.
 *
 * @example
 * ```ts
 * import { perplexity } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * // Every token predicted with probability 1/4.
 * assert.ok(Math.abs(perplexity([Math.log(4), Math.log(4)]) - 4) < 1e-12);
 * assert.throws(() => perplexity([]), /Cannot compute perplexity/);
 * ```
 */
export function perplexity(losses: ArrayLike<number>): number {
  if (losses.length === 0) throw new RangeError("Cannot compute perplexity: no token losses given");
  let sum = 0;
  for (let i = 0; i < losses.length; i++) {
    const loss = losses[i];
    if (Number.isNaN(loss) || loss === -Infinity) {
      throw new RangeError(`Cannot compute perplexity: the loss of token ${i} is ${loss}`);
    }
    sum += loss;
  }
  return Math.exp(sum / losses.length);
}
