import assert from "node:assert/strict";

/** Asserts |actual - expected| < tolerance, naming both numbers on failure. */
export function assertClose(
  actual: number,
  expected: number,
  tolerance: number,
  what = "value",
): void {
  assert.ok(
    Math.abs(actual - expected) < tolerance,
    `${what}: expected ${expected} within ${tolerance}, got ${actual} (off by ${
      Math.abs(actual - expected)
    })`,
  );
}

/**
 * Python's assertAlmostEqual(expected, actual, places): round(difference, places) == 0,
 * i.e. |difference| <= 0.5 * 10^-places.
 */
export function assertPlaces(
  actual: number,
  expected: number,
  places: number,
  what = "value",
): void {
  assertClose(actual, expected, 0.5 * 10 ** -places + 1e-15, what);
}
