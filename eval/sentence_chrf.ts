import type { ChrfOptions } from "./chrf_from_statistics.ts";
import { type ChrfResult, corpusChrf } from "./corpus_chrf.ts";

/**
 * chrF of one hypothesis against one or more references, as sacreBLEU 2.x's
 * `sentence_chrf(hypothesis, references)` (the corpus computation on one
 * segment; the best reference wins).
 *
 * @example
 * ```ts
 * import { sentenceChrf } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(sentenceChrf("a b c", ["abc"]).score, 100);
 * assert.equal(sentenceChrf("xyz", ["abc"]).formatted, "chrF2 = 0.00");
 * ```
 */
export function sentenceChrf(
  hypothesis: string,
  references: readonly string[],
  options: ChrfOptions = {},
): ChrfResult {
  return corpusChrf([hypothesis], references.map((reference) => [reference]), options);
}
