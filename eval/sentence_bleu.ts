import { type BleuOptions, type BleuResult, corpusBleu } from "./corpus_bleu.ts";

/**
 * BLEU of one hypothesis against one or more references, as sacreBLEU 2.x's
 * `sentence_bleu(hypothesis, references)`: the corpus computation on a
 * one-segment corpus, with `effectiveOrder` on by default (so a hypothesis
 * shorter than 4 tokens is not scored 0 for lacking 4-grams). BLEU is a
 * corpus metric; averaging sentence BLEU does not give corpus BLEU.
 *
 * @example
 * ```ts
 * import { sentenceBleu } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const bleu = sentenceBleu("a test", ["a test"]);
 * // exp(log(100)) is 100.00000000000004 in doubles, in sacreBLEU as here.
 * assert.equal(bleu.score.toFixed(2), "100.00");
 * assert.equal(bleu.signature, "nrefs:1|case:mixed|eff:yes|tok:13a|smooth:exp|version:2.6.0");
 * ```
 */
export function sentenceBleu(
  hypothesis: string,
  references: readonly string[],
  options: BleuOptions = {},
): BleuResult {
  return corpusBleu(
    [hypothesis],
    references.map((reference) => [reference]),
    { effectiveOrder: true, ...options },
  );
}
