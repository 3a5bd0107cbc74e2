import type { Metric } from "../../mod.ts";

/**
 * A metric that is not in the table: the prediction's length in code points over its closest
 * reference's, summed over the corpus (so it is a corpus metric like BLEU, not a mean), × 100
 * and capped at 100. Shared by the metric and harness tests.
 */
export const lengthRatio: Metric = {
  name: "length_ratio",
  displayName: "LenRatio",
  description: "Corpus length of the predictions over that of the closest references, × 100.",
  higherIsBetter: true,
  scale: 100,
  mainPart: "length_ratio",
  statistics(prediction, references) {
    const n = [...prediction].length;
    const lengths = references.map((r) => [...r].length);
    const closest = lengths.reduce((a, b) => Math.abs(b - n) < Math.abs(a - n) ? b : a);
    return [n, closest];
  },
  score([predicted, reference]) {
    const score = reference === 0 ? 100 : Math.min(100, 100 * predicted / reference);
    return { score, parts: { length_ratio: score }, formatted: `LenRatio = ${score.toFixed(2)}` };
  },
  signature: ({ nrefs }) => `nrefs:${nrefs}|unit:codepoint`,
};
