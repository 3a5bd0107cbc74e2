import { bleuFromStatistics } from "../bleu_from_statistics.ts";
import { bleuSignature } from "../bleu_signature.ts";
import { bleuStatistics } from "../bleu_statistics.ts";
import type { Metric } from "../metric.ts";

/**
 * Corpus BLEU as sacreBLEU 2.6's `BLEU(tokenize="13a", smooth_method="exp")` computes it: the
 * statistics are {@linkcode bleuStatistics}, their sum is scored by
 * {@linkcode bleuFromStatistics}. Reads `lowercase` and `tokenize` from the options.
 *
 * @example
 * ```ts
 * import { bleuMetric, scoreCorpus } from "../metrics.ts";
 * // sacreBLEU's README example, references regrouped per sentence.
 * const r = scoreCorpus(
 *   bleuMetric,
 *   ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."],
 *   [
 *     ["The dog bit the man.", "The dog had bit the man."],
 *     ["It was not unexpected.", "No one was surprised."],
 *     ["The man bit him first.", "The man had bitten the dog."],
 *   ],
 * );
 * if (r.score.toFixed(2) !== "48.53") throw new Error(r.formatted);
 * if (r.signature !== "nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0") throw new Error();
 * ```
 */
export const bleuMetric: Metric = Object.freeze<Metric>({
  name: "bleu",
  displayName: "BLEU",
  description:
    "Corpus BLEU exactly as sacreBLEU 2.6 (13a tokenizer, exp smoothing, n-grams up to 4, closest reference length).",
  higherIsBetter: true,
  scale: 100,
  mainPart: "bleu",
  statistics: (prediction, references, options = {}) =>
    bleuStatistics(prediction, references, {
      lowercase: options.lowercase,
      tokenize: options.tokenize,
    }),
  score(summed) {
    const { formatted, ...details } = bleuFromStatistics(summed);
    return { score: details.score, parts: { bleu: details.score }, formatted, details };
  },
  signature: ({ nrefs, lowercase, tokenize }) => bleuSignature({ nrefs, lowercase, tokenize }),
});
