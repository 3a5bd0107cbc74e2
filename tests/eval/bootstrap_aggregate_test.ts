import assert from "node:assert/strict";
import { bootstrapAggregate, type RougeScores } from "../../eval/mod.ts";
import { assertClose } from "./_close.ts";

const score = (precision: number, recall: number, fmeasure: number) => ({
  precision,
  recall,
  fmeasure,
});

// The three rouge1 scores of google-research rouge/scoring_test.py, whose setUp seeds numpy
// with 123.
const THREE: RougeScores[] = [
  { rouge1: score(1, 1 / 3, 1 / 2) },
  { rouge1: score(0, 0, 0) },
  { rouge1: score(1, 1, 1) },
];

function assertTriple(
  actual: { precision: number; recall: number; fmeasure: number },
  expected: number[],
  what: string,
) {
  assertClose(actual.precision, expected[0], 1e-8, `${what} precision`);
  assertClose(actual.recall, expected[1], 1e-8, `${what} recall`);
  assertClose(actual.fmeasure, expected[2], 1e-8, `${what} fmeasure`);
}

Deno.test("bootstrapAggregate() reproduces rouge_score's testConsistentPercentiles", () => {
  // scoring_test.py testConsistentPercentiles: confidence 0.9, delta 1e-8.
  const result = bootstrapAggregate(THREE, { confidenceInterval: 0.9, seed: 123 }).rouge1;
  assertTriple(result.low, [1 / 3, 1 / 9, 1 / 6], "low");
  assertTriple(result.mid, [2 / 3, 4 / 9, 3 / 6], "mid");
  assertTriple(result.high, [3 / 3, 7 / 9, 5 / 6], "high");
  assertTriple(result.mean, [2 / 3, 4 / 9, 3 / 6], "mean");
});

Deno.test("bootstrapAggregate() reproduces rouge_score's testLargeConfidence", () => {
  // scoring_test.py testLargeConfidence: confidence 0 puts low, mid and high at the median.
  const result = bootstrapAggregate(THREE, { confidenceInterval: 0, seed: 123 }).rouge1;
  for (const bound of ["low", "mid", "high"] as const) {
    assertTriple(result[bound], [2 / 3, 4 / 9, 3 / 6], bound);
  }
});

Deno.test("bootstrapAggregate() gives the BootstrapAggregator docstring's example", () => {
  // rouge/scoring.py BootstrapAggregator docstring: scores of ("one two three", "one two") and
  // ("one two five six", "seven eight"): low 0, mid 0.5/0.33/0.40, high 1.0/0.66/0.80.
  const result = bootstrapAggregate([
    { rouge1: score(1, 2 / 3, 0.8) },
    { rouge1: score(0, 0, 0) },
  ]).rouge1;
  assertTriple(result.low, [0, 0, 0], "low");
  assertTriple(result.mid, [0.5, 1 / 3, 0.4], "mid");
  assertTriple(result.high, [1, 2 / 3, 0.8], "high");
});

Deno.test("bootstrapAggregate() draws exactly what numpy draws after np.random.seed(42)", () => {
  // Expected values computed with numpy 2.4.6 running the loop of rouge/scoring.py's
  // _bootstrap_resample (np.random.choice, np.mean(axis=0), np.percentile) over rouge1 and then
  // rougeL with one global generator seeded 42, n_samples 50, confidence 0.95. Compared exactly.
  const rouge1 = [
    score(0.1, 0.2, 0.3),
    score(0.5, 0.25, 1 / 3),
    score(0.9, 0.7, 0.125),
    score(0, 1, 0.6),
    score(0.45, 0.55, 0.65),
  ];
  const rougeL = [
    score(1, 0, 0.5),
    score(0.2, 0.4, 0.6),
    score(0.3, 0.3, 0.3),
    score(0.75, 0.5, 0.25),
    score(0.05, 0.95, 0.5),
  ];
  const scores = rouge1.map((r1, i) => ({ rouge1: r1, rougeL: rougeL[i] }));
  const result = bootstrapAggregate(scores, { nSamples: 50, seed: 42 });
  assert.deepEqual(result.rouge1.low, score(0.12450000000000001, 0.3335, 0.21000000000000008));
  assert.deepEqual(result.rouge1.mid, score(0.345, 0.535, 0.405));
  assert.deepEqual(result.rouge1.high, score(0.6377499999999999, 0.79, 0.546625));
  assert.deepEqual(
    result.rougeL.low,
    score(0.21675000000000005, 0.22000000000000003, 0.34450000000000003),
  );
  assert.deepEqual(result.rougeL.mid, score(0.45, 0.43, 0.45));
  assert.deepEqual(result.rougeL.high, score(0.76, 0.64, 0.56));
});

Deno.test("bootstrapAggregate() interpolates percentiles exactly as numpy", () => {
  // Same data and method as above with seed 48, chosen because there numpy's lerp, which
  // computes b - (b - a) * (1 - t) when t >= 0.5 rather than a + (b - a) * t, changes the last
  // bit of a result (rougeL high precision). Computed with numpy 2.4.6; compared exactly.
  const rows = [
    [score(0.1, 0.2, 0.3), score(1, 0, 0.5)],
    [score(0.5, 0.25, 1 / 3), score(0.2, 0.4, 0.6)],
    [score(0.9, 0.7, 0.125), score(0.3, 0.3, 0.3)],
    [score(0, 1, 0.6), score(0.75, 0.5, 0.25)],
    [score(0.45, 0.55, 0.65), score(0.05, 0.95, 0.5)],
  ];
  const scores = rows.map(([rouge1, rougeL]) => ({ rouge1, rougeL }));
  const result = bootstrapAggregate(scores, { nSamples: 50, seed: 48 });
  assert.deepEqual(result.rouge1.low, score(0.13225, 0.33125000000000004, 0.252625));
  assert.deepEqual(result.rouge1.mid, score(0.33, 0.5800000000000001, 0.4366666666666667));
  assert.deepEqual(result.rouge1.high, score(0.65775, 0.7755, 0.5569999999999999));
  assert.deepEqual(result.rougeL.low, score(0.18450000000000003, 0.20450000000000004, 0.32));
  assert.deepEqual(result.rougeL.mid, score(0.43000000000000005, 0.45999999999999996, 0.43));
  assert.deepEqual(result.rougeL.high, score(0.8374999999999998, 0.64775, 0.5355));
});

Deno.test("bootstrapAggregate() reports the plain mean", () => {
  const result = bootstrapAggregate([{ rouge2: score(0.5, 0.25, 1 / 3) }, {
    rouge2: score(1, 0.75, 0.8),
  }]);
  assert.deepEqual(result.rouge2.mean, score(0.75, 0.5, (1 / 3 + 0.8) / 2));
});

Deno.test("bootstrapAggregate() rejects bad arguments", () => {
  assert.throws(() => bootstrapAggregate([]), /Cannot aggregate scores: no scores/);
  assert.throws(() => bootstrapAggregate(THREE, { confidenceInterval: 1.5 }), /confidenceInterval/);
  assert.throws(() => bootstrapAggregate(THREE, { nSamples: 0 }), /nSamples/);
  assert.throws(() => bootstrapAggregate(THREE, { seed: -1 }), /Cannot seed/);
});
