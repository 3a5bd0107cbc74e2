import { chrfFromStatistics } from "../chrf_from_statistics.ts";
import { chrfSignature } from "../chrf_signature.ts";
import { chrfStatistics } from "../chrf_statistics.ts";
import type { Metric } from "../metric.ts";

/**
 * Corpus chrF as sacreBLEU 2.6's `CHRF()` computes it (character 6-grams, β 2, whitespace
 * removed): the statistics of the best reference ({@linkcode chrfStatistics}), summed and scored
 * by {@linkcode chrfFromStatistics}. Reads `lowercase` from the options.
 *
 * @example
 * ```ts
 * import { chrfMetric, scoreCorpus } from "../metrics.ts";
 * const r = scoreCorpus(chrfMetric, ["a b c", "xyz"], [["abc"], ["abc"]]);
 * if (r.signature !== "nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0") throw new Error();
 * if (!(r.score > 0 && r.score < 100)) throw new Error(r.formatted);
 * ```
 */
export const chrfMetric: Metric = Object.freeze<Metric>({
  name: "chrf",
  displayName: "chrF2",
  description:
    "Corpus chrF (character n-gram F-score, β = 2) exactly as sacreBLEU 2.6 computes it.",
  higherIsBetter: true,
  scale: 100,
  mainPart: "chrf",
  statistics: (prediction, references, options = {}) =>
    chrfStatistics(prediction, references, { lowercase: options.lowercase }),
  score(summed, options = {}) {
    const { score, formatted } = chrfFromStatistics(summed, { lowercase: options.lowercase });
    return { score, parts: { chrf: score }, formatted };
  },
  signature: ({ nrefs, lowercase }) => chrfSignature({ nrefs, lowercase }),
});
