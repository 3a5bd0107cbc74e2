/**
 * The fraction of predictions equal (`===`) to their labels.
 *
 * @example
 * ```ts
 * import { accuracy } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(accuracy(["A", "B", "C", "D"], ["A", "B", "D", "D"]), 0.75);
 * ```
 */
export function accuracy<T>(predictions: readonly T[], labels: readonly T[]): number {
  if (predictions.length !== labels.length) {
    throw new RangeError(
      `Cannot compute accuracy: ${predictions.length} predictions but ${labels.length} labels`,
    );
  }
  if (predictions.length === 0) {
    throw new RangeError("Cannot compute accuracy: no predictions given");
  }
  let correct = 0;
  predictions.forEach((prediction, i) => {
    if (prediction === labels[i]) correct++;
  });
  return correct / predictions.length;
}
