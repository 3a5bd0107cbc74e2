/** Options for {@linkcode expectedCalibrationError}. */
export interface CalibrationOptions {
  /** Number of equal-width confidence bins over [0, 1]. Default 15 (Guo et al., 2017). */
  bins?: number;
}

/**
 * Expected calibration error (Naeini et al., 2015; Guo et al., 2017): split
 * [0, 1] into equal-width bins, and sum over bins the fraction of examples in
 * the bin times |accuracy in the bin - mean confidence in the bin|. Bin b
 * holds confidences in (b/B, (b+1)/B], as in Guo et al.'s code; a confidence of
 * exactly 0 goes to the first bin. Empty bins contribute nothing.
 *
 * @example
 * ```ts
 * import { expectedCalibrationError } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * // Two bins: (0, 0.5] holds 0.2 (wrong): |0 - 0.2| = 0.2; (0.5, 1] holds
 * // 0.9 (right) and 0.7 (wrong): |0.5 - 0.8| = 0.3. ECE = 1/3 * 0.2 + 2/3 * 0.3.
 * const ece = expectedCalibrationError([0.2, 0.9, 0.7], [false, true, false], { bins: 2 });
 * assert.ok(Math.abs(ece - (0.2 / 3 + 0.6 / 3)) < 1e-12);
 * ```
 */
export function expectedCalibrationError(
  confidences: ArrayLike<number>,
  correct: ArrayLike<boolean | number>,
  options: CalibrationOptions = {},
): number {
  const bins = options.bins ?? 15;
  if (!Number.isInteger(bins) || bins < 1) {
    throw new RangeError(
      `Cannot compute calibration error: bins must be a positive integer, got ${bins}`,
    );
  }
  if (confidences.length !== correct.length) {
    throw new RangeError(
      `Cannot compute calibration error: ${confidences.length} confidences but ${correct.length} outcomes`,
    );
  }
  const n = confidences.length;
  if (n === 0) throw new RangeError("Cannot compute calibration error: no predictions given");
  const count = new Float64Array(bins);
  const confidenceSum = new Float64Array(bins);
  const correctSum = new Float64Array(bins);
  for (let i = 0; i < n; i++) {
    const confidence = confidences[i];
    if (!(confidence >= 0 && confidence <= 1)) {
      throw new RangeError(
        `Cannot compute calibration error: confidence ${i} is ${confidence}, outside [0, 1]`,
      );
    }
    const bin = binOf(confidence, bins);
    count[bin]++;
    confidenceSum[bin] += confidence;
    correctSum[bin] += Number(correct[i]);
  }
  let ece = 0;
  for (let b = 0; b < bins; b++) {
    if (count[b] === 0) continue;
    ece += (count[b] / n) * Math.abs(correctSum[b] / count[b] - confidenceSum[b] / count[b]);
  }
  return ece;
}

// The bin whose interval (b/B, (b+1)/B] holds the confidence, comparing with
// the same boundaries b/B that the interval is defined by (c * B can round
// across a boundary: 0.3 * 10 is 3.0000000000000004).
function binOf(confidence: number, bins: number): number {
  let bin = Math.max(0, Math.ceil(confidence * bins) - 1);
  while (bin > 0 && confidence <= bin / bins) bin--;
  while (bin < bins - 1 && confidence > (bin + 1) / bins) bin++;
  return bin;
}
