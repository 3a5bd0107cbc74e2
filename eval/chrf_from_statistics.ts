import { chrfSettings, fScore } from "./_chrf.ts";
import { pyFormatFixed } from "./_python.ts";

/** Options of sacreBLEU's `CHRF(...)`. */
export interface ChrfOptions {
  /** Longest character n-gram. Default 6. */
  charOrder?: number;
  /** Longest word n-gram; 0 is chrF, 2 is chrF++. Default 0. */
  wordOrder?: number;
  /** Weight of recall relative to precision. Default 2. */
  beta?: number;
  /** Lowercase hypotheses and references first. Default false. */
  lowercase?: boolean;
  /**
   * Keep whitespace inside character n-grams (by default all whitespace is removed
   * first). Default false.
   */
  whitespace?: boolean;
  /**
   * Average per-order F-scores with a 1e-16 floor, as chrF++.py, NLTK and
   * Moses do. Default false: sacreBLEU's own method, which averages precision
   * and recall over the orders both sides have n-grams for, then takes one F.
   */
  epsSmoothing?: boolean;
}

/** A chrF score as sacreBLEU's `CHRFScore` reports it. */
export interface ChrfScore {
  /** chrF on a 0-100 scale. */
  score: number;
  /** "chrF2", or "chrF2++" with word order 2 (one "+" per word order). */
  name: string;
  /** sacreBLEU's score line, e.g. "chrF2 = 59.73". */
  formatted: string;
}

/**
 * The chrF F-score of summed statistics, as sacreBLEU 2.x's
 * `CHRF._compute_f_score`. `stats` holds one triple `[hypothesis n-grams,
 * reference n-grams, matches]` per order: character orders 1..charOrder, then
 * word orders 1..wordOrder ({@linkcode chrfStatistics} produces them).
 *
 * @example
 * ```ts
 * import { chrfFromStatistics } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * // "aa" against "ab" (sacreBLEU test/test_chrf.py): only 1 of 2 unigrams and
 * // 0 of 1 bigrams match; higher orders are empty on both sides.
 * const stats = [2, 2, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
 * assert.equal(chrfFromStatistics(stats, { beta: 3 }).score, 25);
 * assert.equal(chrfFromStatistics(stats).formatted, "chrF2 = 25.00");
 * ```
 */
export function chrfFromStatistics(stats: readonly number[], options: ChrfOptions = {}): ChrfScore {
  const settings = chrfSettings(options);
  const order = settings.charOrder + settings.wordOrder;
  if (stats.length !== 3 * order) {
    throw new RangeError(
      `Cannot compute chrF: expected ${3 * order} statistics, got ${stats.length}`,
    );
  }
  const score = fScore(stats, order, settings.beta, settings.epsSmoothing);
  const name = `chrF${settings.beta}${"+".repeat(settings.wordOrder)}`;
  return { score, name, formatted: `${name} = ${pyFormatFixed(score, 2)}` };
}
