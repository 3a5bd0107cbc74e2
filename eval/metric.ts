/**
 * What a metric is, and the one path that scores a corpus with any metric: per-example
 * sufficient statistics → one corpus score from them → a signature saying how it was computed
 * (sacreBLEU's `Metric` in `metrics/base.py`). The metrics themselves live in `eval/metrics/`,
 * one file each, and are listed in one table, `eval/metrics/table.ts`. Pure: no model, no GPU.
 *
 * @module
 */

import type { BleuTokenizer } from "./bleu_tokenize.ts";

/**
 * Preprocessing settings shared by the metrics; each metric reads the ones it documents and
 * ignores the others (so one set of command-line flags serves every metric).
 */
export interface MetricOptions {
  /** BLEU and chrF: lowercase predictions and references first (sacreBLEU's `lowercase`). */
  lowercase?: boolean;
  /** BLEU: sacreBLEU's tokenizer. Default "13a". */
  tokenize?: BleuTokenizer;
  /** ROUGE: Porter-stem tokens longer than 3 characters (rouge_score's `use_stemmer`). */
  stem?: boolean;
}

/** A corpus score as a metric computes it from statistics. */
export interface MetricScore {
  /** The metric's score, 0 to the metric's `scale`. */
  score: number;
  /**
   * Every named score the metric reports, on the same scale, the score included under the
   * metric's `mainPart` (ROUGE: `rouge1`, `rouge2`, `rougeL`, `rougeLsum`; others: their name).
   */
  parts: Record<string, number>;
  /**
   * The score line as the reference tool prints it, without a signature, starting with the
   * metric's display name and " = " (sacreBLEU: "BLEU = 48.53 82.4/50.0/45.5/37.5 (BP = …)").
   */
  formatted: string;
  /** More of what the reference tool reports (sacreBLEU's n-gram counts, ROUGE's interval). */
  details?: Readonly<Record<string, unknown>>;
}

/**
 * A metric as pure functions: `statistics` of one example, `score` of their sum, and the
 * `signature` that says exactly how the score was computed. Corpus metrics (BLEU, chrF) sum
 * counts; averaged metrics (exact match, token F1, ROUGE) sum each example's value and a count
 * of 1. A new metric is one file that exports one of these and one line in
 * `eval/metrics/table.ts`.
 */
export interface Metric {
  /** Its name in the metrics table, in task definitions and on the command line (snake_case). */
  readonly name: string;
  /** Its name in score lines and reports, e.g. "BLEU", "chrF2". */
  readonly displayName: string;
  /** One sentence saying what it measures and which reference implementation it reproduces. */
  readonly description: string;
  /** Whether a larger score is better (for comparisons and reports). */
  readonly higherIsBetter: boolean;
  /** The largest possible score (every metric in the table reports 0–100). */
  readonly scale: number;
  /** The entry of `parts` that is the score. */
  readonly mainPart: string;
  /** The sufficient statistics of one example (one prediction and its references). */
  statistics(prediction: string, references: readonly string[], options?: MetricOptions): number[];
  /** The corpus score of statistics summed over examples. */
  score(summed: readonly number[], options?: MetricOptions): MetricScore;
  /**
   * The corpus score from every example's statistics, where summing is not all the metric does
   * (ROUGE adds rouge_score's bootstrap interval). Default: sum, then {@linkcode Metric.score}.
   */
  aggregate?(statistics: readonly (readonly number[])[], options?: MetricOptions): MetricScore;
  /** How the score was computed: settings, references per example (`"var"` when they vary). */
  signature(options: MetricOptions & { nrefs: number | "var" }): string;
  /** For right-or-wrong metrics: whether an example's statistics are a right answer. */
  correct?(statistics: readonly number[]): boolean;
}

/** What {@linkcode scoreCorpus} returns: the score, its signature and the statistics behind it. */
export interface CorpusScore extends MetricScore {
  /** The metric's name. */
  metric: string;
  /** The signature (see {@linkcode Metric.signature}). */
  signature: string;
  /** Examples scored. */
  n: number;
  /** Per example: its statistics. */
  statistics: number[][];
}

/**
 * Element-wise sum of statistics vectors of one length.
 *
 * @example
 * ```ts
 * import { sumStatistics } from "./metric.ts";
 * if (sumStatistics([[1, 2], [3, 4]]).join() !== "4,6") throw new Error();
 * ```
 */
export function sumStatistics(statistics: readonly (readonly number[])[]): number[] {
  const summed = new Array<number>(statistics[0]?.length ?? 0).fill(0);
  for (const row of statistics) {
    if (row.length !== summed.length) {
      throw new RangeError(
        `Cannot sum metric statistics: rows of ${summed.length} and ${row.length} values`,
      );
    }
    row.forEach((value, k) => summed[k] += value);
  }
  return summed;
}

// The references-per-example count a signature prints: the count when every example has as
// many, else "var" (sacreBLEU's rule).
function referenceCount(references: readonly (readonly string[])[]): number | "var" {
  const counts = new Set(references.map((refs) => refs.length));
  return counts.size === 1 ? [...counts][0] : "var";
}

/**
 * `formatted` with the signature after the display name, as sacreBLEU prints a score with its
 * signature: "BLEU = 48.53 …" → "BLEU|nrefs:2|…|version:2.6.0 = 48.53 …".
 *
 * @example
 * ```ts
 * import { scoreLine } from "./metric.ts";
 * if (scoreLine("chrF2 = 59.73", "nrefs:1") !== "chrF2|nrefs:1 = 59.73") throw new Error();
 * ```
 */
export function scoreLine(formatted: string, signature: string): string {
  const at = formatted.indexOf(" = ");
  if (at < 0) throw new RangeError(`Cannot add a signature to "${formatted}": it has no " = "`);
  return `${formatted.slice(0, at)}|${signature}${formatted.slice(at)}`;
}

/**
 * Scores predictions against their references with `metric`: each example's statistics, then
 * one corpus score ({@linkcode Metric.aggregate}, or the score of their sum), and the signature.
 * `references[i]` lists every reference of example i (at least one; an empty string is a
 * reference, as in sacreBLEU 2.6).
 *
 * @example
 * ```ts
 * import { metricByName, scoreCorpus } from "./metrics.ts";
 * const bleu = scoreCorpus(metricByName("bleu"), ["the cat sat on the mat"], [["the cat sat on the mat"]]);
 * if (bleu.formatted !== "BLEU = 100.00 100.0/100.0/100.0/100.0 (BP = 1.000 ratio = 1.000 hyp_len = 6 ref_len = 6)") {
 *   throw new Error(bleu.formatted);
 * }
 * if (bleu.signature !== "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0") throw new Error();
 * ```
 */
export function scoreCorpus(
  metric: Metric,
  predictions: readonly string[],
  references: readonly (readonly string[])[],
  options: MetricOptions = {},
): CorpusScore {
  const where = `Cannot score ${metric.name}`;
  if (predictions.length !== references.length) {
    throw new RangeError(
      `${where}: ${predictions.length} predictions but ${references.length} reference lists`,
    );
  }
  if (predictions.length === 0) throw new RangeError(`${where}: no predictions`);
  const empty = references.findIndex((refs) => refs.length === 0);
  if (empty >= 0) throw new RangeError(`${where}: example ${empty} has no reference`);
  const statistics = predictions.map((p, i) => metric.statistics(p, references[i], options));
  const result = metric.aggregate
    ? metric.aggregate(statistics, options)
    : metric.score(sumStatistics(statistics), options);
  return {
    ...result,
    metric: metric.name,
    signature: metric.signature({ ...options, nrefs: referenceCount(references) }),
    n: predictions.length,
    statistics,
  };
}
