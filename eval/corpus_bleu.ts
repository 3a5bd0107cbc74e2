import { segmentReferences } from "./_references.ts";
import {
  bleuFromStatistics,
  type BleuScore,
  type BleuSmoothingOptions,
} from "./bleu_from_statistics.ts";
import { bleuSignature } from "./bleu_signature.ts";
import { bleuStatistics, type BleuStatisticsOptions } from "./bleu_statistics.ts";

/** Options of sacreBLEU's `BLEU(...)`: preprocessing, n-gram order and smoothing. */
export type BleuOptions = BleuStatisticsOptions & BleuSmoothingOptions;

/** A BLEU score together with the signature saying how it was computed. */
export interface BleuResult extends BleuScore {
  /** e.g. "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0". */
  signature: string;
}

/**
 * Corpus BLEU exactly as sacreBLEU 2.x's `BLEU(...).corpus_score(hypotheses,
 * references)`: per-segment statistics ({@linkcode bleuStatistics}) are summed
 * and scored once ({@linkcode bleuFromStatistics}); it is not an average of
 * sentence scores.
 *
 * `references` is a list of reference streams, each as long as `hypotheses`:
 * `references[k][i]` is the k-th reference of segment i. Null or undefined
 * there means segment i has one reference fewer (the signature then says
 * `nrefs:var`); a segment with no reference at all is an error. An empty
 * string is a reference of length 0, as in sacreBLEU 2.6 (only Python's
 * `None` is dropped there). Empty hypotheses are kept and count as length 0.
 *
 * @example
 * ```ts
 * import { corpusBleu } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * // The example of sacreBLEU's README.
 * const refs = [
 *   ["The dog bit the man.", "It was not unexpected.", "The man bit him first."],
 *   ["The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."],
 * ];
 * const sys = ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."];
 * const bleu = corpusBleu(sys, refs);
 * assert.equal(bleu.formatted, "BLEU = 48.53 82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)");
 * assert.equal(bleu.signature, "nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0");
 * ```
 */
export function corpusBleu(
  hypotheses: readonly string[],
  references: readonly (readonly (string | null | undefined)[])[],
  options: BleuOptions = {},
): BleuResult {
  const { perSegment, nrefs } = segmentReferences("BLEU", hypotheses.length, references);
  let summed: number[] | undefined;
  hypotheses.forEach((hypothesis, i) => {
    const stats = bleuStatistics(hypothesis, perSegment[i], options);
    summed = summed === undefined ? stats : summed.map((value, k) => value + stats[k]);
  });
  return {
    ...bleuFromStatistics(summed!, options),
    signature: bleuSignature({ ...options, nrefs }),
  };
}
