import { pyFormatFixed } from "./_python.ts";

/** sacreBLEU's smoothing methods (Chen & Cherry 2014): "exp" is the default. */
export type BleuSmoothMethod = "exp" | "floor" | "add-k" | "none";

/**
 * sacreBLEU's default smoothing value of each method; null where the method
 * takes none.
 *
 * @example
 * ```ts
 * import { BLEU_SMOOTH_DEFAULTS } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(BLEU_SMOOTH_DEFAULTS.floor, 0.1);
 * assert.equal(BLEU_SMOOTH_DEFAULTS.exp, null);
 * ```
 */
export const BLEU_SMOOTH_DEFAULTS: Readonly<Record<BleuSmoothMethod, number | null>> = {
  none: null,
  floor: 0.1,
  "add-k": 1,
  exp: null,
};

/** How BLEU turns n-gram statistics into a score. */
export interface BleuSmoothingOptions {
  /**
   * "exp" (default, mteval-v13a: the k-th order with no match gets precision
   * 1 / (2^k * total)), "floor" (a zero count becomes `smoothValue`), "add-k"
   * (adds `smoothValue` to counts and totals of orders 2 and up) or "none".
   */
  smoothMethod?: BleuSmoothMethod;
  /** For "floor" (default 0.1) and "add-k" (default 1); ignored otherwise. */
  smoothValue?: number;
  /**
   * Average only over the n-gram orders the hypothesis has (stop at the first
   * order with no hypothesis n-grams). Default false; true for sentence BLEU.
   */
  effectiveOrder?: boolean;
}

/** A BLEU score with everything sacreBLEU's `BLEUScore` reports. */
export interface BleuScore {
  /** BLEU on a 0-100 scale. */
  score: number;
  /** Clipped n-gram matches per order (with "add-k", including the added k for orders 2+). */
  counts: number[];
  /** Hypothesis n-grams per order (with "add-k", including the added k for orders 2+). */
  totals: number[];
  /** Smoothed n-gram precisions per order, 0-100. */
  precisions: number[];
  /** Brevity penalty: exp(1 - refLen / sysLen) when sysLen < refLen, else 1. */
  bp: number;
  /** Total hypothesis length in tokens. */
  sysLen: number;
  /** Total of the closest reference lengths. */
  refLen: number;
  /** sysLen / refLen (0 when refLen is 0). */
  ratio: number;
  /**
   * sacreBLEU's score line, e.g.
   * "BLEU = 48.53 82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)".
   */
  formatted: string;
}

const BLEU_SMOOTH_METHODS = Object.keys(BLEU_SMOOTH_DEFAULTS) as BleuSmoothMethod[];

/**
 * Computes BLEU from summed sufficient statistics exactly as sacreBLEU 2.x's
 * `BLEU.compute_bleu` does. `stats` is `[sysLen, refLen, correct_1 ..
 * correct_N, total_1 .. total_N]` as produced by {@linkcode bleuStatistics}
 * and summed over segments; N is read from its length.
 *
 * Quirks kept from sacreBLEU: with no matching n-gram of any order the score
 * is 0 and all precisions are 0 (before any smoothing); "add-k" also raises
 * the reported counts and totals of orders 2+, and gives 100% precision to an
 * order the hypothesis is too short for; without `effectiveOrder`, an order
 * with no hypothesis n-grams makes the score 0 (its log is floored at
 * -9999999999).
 *
 * @example
 * ```ts
 * import { bleuFromStatistics } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * // sacreBLEU test/test_bleu.py test_scoring: counts 9/7/5/3 of 10/8/6/4, lengths 11 and 11.
 * const bleu = bleuFromStatistics([11, 11, 9, 7, 5, 3, 10, 8, 6, 4], { smoothMethod: "none" });
 * assert.ok(Math.abs(bleu.score / 100 - 0.8375922397) < 1e-8);
 * ```
 */
export function bleuFromStatistics(
  stats: readonly number[],
  options: BleuSmoothingOptions = {},
): BleuScore {
  const maxOrder = (stats.length - 2) / 2;
  if (!Number.isInteger(maxOrder) || maxOrder < 1) {
    throw new RangeError(
      `Cannot compute BLEU: expected 2 + 2N statistics, got ${stats.length}`,
    );
  }
  const smoothMethod = options.smoothMethod ?? "exp";
  if (!BLEU_SMOOTH_METHODS.includes(smoothMethod)) {
    throw new RangeError(`Cannot compute BLEU: unknown smoothing method "${smoothMethod}"`);
  }
  const smoothValue = options.smoothValue ?? BLEU_SMOOTH_DEFAULTS[smoothMethod] ?? 0;
  const [sysLen, refLen] = stats;
  const correct = stats.slice(2, 2 + maxOrder);
  const total = stats.slice(2 + maxOrder);

  let bp = 1;
  if (sysLen < refLen) bp = sysLen > 0 ? Math.exp(1 - refLen / sysLen) : 0;
  const precisions = new Array<number>(maxOrder).fill(0);
  if (correct.every((count) => count === 0)) {
    return result(0, correct, total, precisions, bp, sysLen, refLen);
  }

  let smoothMteval = 1;
  let effectiveOrder = maxOrder;
  for (let n = 1; n <= maxOrder; n++) {
    if (smoothMethod === "add-k" && n > 1) {
      correct[n - 1] += smoothValue;
      total[n - 1] += smoothValue;
    }
    if (total[n - 1] === 0) break;
    if (options.effectiveOrder) effectiveOrder = n;
    if (correct[n - 1] === 0) {
      if (smoothMethod === "exp") {
        smoothMteval *= 2;
        precisions[n - 1] = 100 / (smoothMteval * total[n - 1]);
      } else if (smoothMethod === "floor") {
        precisions[n - 1] = 100 * smoothValue / total[n - 1];
      }
    } else {
      precisions[n - 1] = 100 * correct[n - 1] / total[n - 1];
    }
  }
  let logSum = 0;
  for (const precision of precisions.slice(0, effectiveOrder)) logSum += flooredLog(precision);
  const score = bp * Math.exp(logSum / effectiveOrder);
  return result(score, correct, total, precisions, bp, sysLen, refLen);
}

// sacreBLEU's my_log: log(0) is floored rather than -Infinity.
function flooredLog(x: number): number {
  return x === 0 ? -9999999999 : Math.log(x);
}

function result(
  score: number,
  counts: number[],
  totals: number[],
  precisions: number[],
  bp: number,
  sysLen: number,
  refLen: number,
): BleuScore {
  const ratio = refLen ? sysLen / refLen : 0;
  const precisionText = precisions.map((p) => pyFormatFixed(p, 1)).join("/");
  const formatted = `BLEU = ${pyFormatFixed(score, 2)} ${precisionText} (BP = ${
    pyFormatFixed(bp, 3)
  } ratio = ${pyFormatFixed(ratio, 3)} hyp_len = ${sysLen} ref_len = ${refLen})`;
  return { score, counts, totals, precisions, bp, sysLen, refLen, ratio, formatted };
}
