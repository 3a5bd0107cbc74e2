import assert from "node:assert/strict";
import { expectedCalibrationError } from "../../eval/mod.ts";
import { assertClose } from "./_close.ts";

Deno.test("expectedCalibrationError() is 0 for perfectly calibrated bins", () => {
  // Bin (0.7, 0.8] holds four predictions at 0.75, three of them right: accuracy 0.75.
  assert.equal(
    expectedCalibrationError([0.75, 0.75, 0.75, 0.75], [true, true, true, false], { bins: 10 }),
    0,
  );
});

Deno.test("expectedCalibrationError() weights each bin's gap by its size", () => {
  // 10 bins. (0.9, 1.0]: 0.95, 0.95, 0.95 with 2 right: |2/3 - 0.95| * 3/5.
  // (0.5, 0.6]: 0.55, 0.55 with 0 right: |0 - 0.55| * 2/5.
  const ece = expectedCalibrationError([0.95, 0.95, 0.95, 0.55, 0.55], [1, 1, 0, 0, 0], {
    bins: 10,
  });
  assertClose(ece, Math.abs(2 / 3 - 0.95) * 3 / 5 + 0.55 * 2 / 5, 1e-12, "ECE");
});

Deno.test("expectedCalibrationError() puts a boundary confidence in the lower bin", () => {
  // Bins (b/25, (b+1)/25]: 0.28 = 7/25 belongs to (0.24, 0.28] although 0.28 * 25 is
  // 7.000000000000001 in doubles. With 0.28 (right) and 0.25 (wrong) in one bin:
  // |1/2 - 0.265| = 0.235. Had 0.28 gone to the next bin: (|1 - 0.28| + |0 - 0.25|) / 2 = 0.485.
  assertClose(
    expectedCalibrationError([0.28, 0.25], [true, false], { bins: 25 }),
    0.235,
    1e-12,
    "ECE",
  );
  // Confidence 0 goes to the first bin, 1 to the last.
  assert.equal(expectedCalibrationError([0, 1], [false, true], { bins: 3 }), 0);
});

Deno.test("expectedCalibrationError() uses 15 bins by default", () => {
  // 0.5 and 0.52 share (7/15, 8/15] with 15 bins: |1/2 - 0.51| = 0.01. With 10 bins they would
  // be split: (|1 - 0.5| + |0 - 0.52|) / 2 = 0.51.
  assertClose(expectedCalibrationError([0.5, 0.52], [true, false]), 0.01, 1e-12, "15 bins");
  assertClose(
    expectedCalibrationError([0.5, 0.52], [true, false], { bins: 10 }),
    0.51,
    1e-12,
    "10 bins",
  );
});

Deno.test("expectedCalibrationError() rejects bad input", () => {
  assert.throws(
    () => expectedCalibrationError([], []),
    /Cannot compute calibration error: no predictions/,
  );
  assert.throws(
    () => expectedCalibrationError([0.5], [true, false]),
    /1 confidences but 2 outcomes/,
  );
  assert.throws(() => expectedCalibrationError([1.5], [true]), /outside \[0, 1\]/);
  assert.throws(() => expectedCalibrationError([Number.NaN], [true]), /outside \[0, 1\]/);
  assert.throws(
    () => expectedCalibrationError([0.5], [true], { bins: 0 }),
    /bins must be a positive integer/,
  );
});
