// Pieces of chrF shared by its statistics and its score. Internal to eval/.
import type { ChrfOptions } from "./chrf_from_statistics.ts";

/** Resolved chrF options with every default filled in. */
export function chrfSettings(options: ChrfOptions): Required<ChrfOptions> {
  const settings = {
    charOrder: options.charOrder ?? 6,
    wordOrder: options.wordOrder ?? 0,
    beta: options.beta ?? 2,
    lowercase: options.lowercase ?? false,
    whitespace: options.whitespace ?? false,
    epsSmoothing: options.epsSmoothing ?? false,
  };
  for (const key of ["charOrder", "wordOrder"] as const) {
    if (!Number.isInteger(settings[key]) || settings[key] < 0) {
      throw new RangeError(
        `Cannot compute chrF: ${key} must be a non-negative integer, got ${settings[key]}`,
      );
    }
  }
  if (settings.charOrder + settings.wordOrder === 0) {
    throw new RangeError("Cannot compute chrF: charOrder + wordOrder must be at least 1");
  }
  return settings;
}

/** chrF's F-score (0-100) of `order` statistics triples. */
export function fScore(
  stats: readonly number[],
  order: number,
  beta: number,
  epsSmoothing: boolean,
): number {
  const eps = 1e-16;
  const factor = beta ** 2;
  let epsScore = 0;
  let precisionSum = 0;
  let recallSum = 0;
  let effectiveOrder = 0;
  for (let i = 0; i < order; i++) {
    const [nHyp, nRef, nMatch] = stats.slice(3 * i, 3 * i + 3);
    const precision = nHyp > 0 ? nMatch / nHyp : eps;
    const recall = nRef > 0 ? nMatch / nRef : eps;
    const denominator = factor * precision + recall;
    epsScore += denominator > 0 ? (1 + factor) * precision * recall / denominator : eps;
    if (nHyp > 0 && nRef > 0) {
      precisionSum += precision;
      recallSum += recall;
      effectiveOrder++;
    }
  }
  if (epsSmoothing) return 100 * epsScore / order;
  const precision = effectiveOrder === 0 ? 0 : precisionSum / effectiveOrder;
  const recall = effectiveOrder === 0 ? 0 : recallSum / effectiveOrder;
  if (precision + recall === 0) return 0;
  return 100 * ((1 + factor) * precision * recall / (factor * precision + recall));
}
