import { segmentReferences } from "./_references.ts";
import { chrfFromStatistics, type ChrfOptions, type ChrfScore } from "./chrf_from_statistics.ts";
import { chrfSignature } from "./chrf_signature.ts";
import { chrfStatistics } from "./chrf_statistics.ts";

/** A chrF score together with the signature saying how it was computed. */
export interface ChrfResult extends ChrfScore {
  /** e.g. "nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0". */
  signature: string;
}

/**
 * Corpus chrF (or chrF++ with `wordOrder: 2`) exactly as sacreBLEU 2.x's
 * `CHRF(...).corpus_score(hypotheses, references)`: per-segment statistics
 * from the best reference ({@linkcode chrfStatistics}) are summed and scored
 * once ({@linkcode chrfFromStatistics}). `references` are reference streams
 * as in {@linkcode corpusBleu}.
 *
 * @example
 * ```ts
 * import { corpusChrf } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * // The example of sacreBLEU's README.
 * const refs = [
 *   ["The dog bit the man.", "It was not unexpected.", "The man bit him first."],
 *   ["The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."],
 * ];
 * const sys = ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."];
 * assert.equal(corpusChrf(sys, refs).formatted, "chrF2 = 59.73");
 * ```
 */
export function corpusChrf(
  hypotheses: readonly string[],
  references: readonly (readonly (string | null | undefined)[])[],
  options: ChrfOptions = {},
): ChrfResult {
  const { perSegment, nrefs } = segmentReferences("chrF", hypotheses.length, references);
  let summed: number[] | undefined;
  hypotheses.forEach((hypothesis, i) => {
    const stats = chrfStatistics(hypothesis, perSegment[i], options);
    summed = summed === undefined ? stats : summed.map((value, k) => value + stats[k]);
  });
  return {
    ...chrfFromStatistics(summed!, options),
    signature: chrfSignature({ ...options, nrefs }),
  };
}
