import assert from "node:assert/strict";
import { bleuFromStatistics } from "../../eval/mod.ts";
import { assertClose } from "./_close.ts";

Deno.test("bleuFromStatistics() matches sacreBLEU's test_scoring", () => {
  // mjpost/sacrebleu test/test_bleu.py test_case_scoring: compute_bleu([9, 7, 5, 3],
  // [10, 8, 6, 4], 11, 11) with its default smooth_method 'none' -> 0.8375922397.
  const bleu = bleuFromStatistics([11, 11, 9, 7, 5, 3, 10, 8, 6, 4], { smoothMethod: "none" });
  assertClose(bleu.score / 100, 0.8375922397, 1e-8, "score");
});

Deno.test("bleuFromStatistics() matches sacreBLEU's test_degenerate_statistics", () => {
  // test/test_bleu.py test_case_degenerate_stats: floor smoothing with the given value, all 0.
  const cases: [number[], number][] = [
    [[0, 1, 0, 0, 0, 0, 4, 4, 2, 1], 0.0],
    [[14, 10, 0, 0, 0, 0, 10, 11, 12, 0], 0.0],
    [[0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 0.0],
    [[6, 6, 6, 5, 4, 0, 6, 5, 4, 3], 0.0],
    [[0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 0.1],
    [[1, 5, 0, 0, 0, 0, 0, 0, 0, 0], 0.01],
  ];
  for (const [stats, offset] of cases) {
    assert.equal(
      bleuFromStatistics(stats, { smoothMethod: "floor", smoothValue: offset }).score,
      0,
      `${stats}`,
    );
  }
});

Deno.test("bleuFromStatistics() smooths a zero count as each method does", () => {
  // Hand-worked: 3 of 4 unigrams, 1 of 3 bigrams, 0 of 2 trigrams, 0 of 1 4-gram; lengths 4, 4.
  const stats = [4, 4, 3, 1, 0, 0, 4, 3, 2, 1];
  // exp: the k-th zero order gets 100 / (2^k * total): 100/(2*2) = 25 and 100/(4*1) = 25.
  assert.deepEqual(bleuFromStatistics(stats).precisions, [75, 100 / 3, 25, 25]);
  // floor 0.1: 100 * 0.1 / total.
  assert.deepEqual(bleuFromStatistics(stats, { smoothMethod: "floor" }).precisions, [
    75,
    100 / 3,
    5,
    10,
  ]);
  // add-k 1: orders 2+ get (c + 1) / (t + 1): 2/4, 1/3, 1/2.
  assert.deepEqual(bleuFromStatistics(stats, { smoothMethod: "add-k" }).precisions, [
    75,
    50,
    100 / 3,
    50,
  ]);
  // none: zero precisions stay 0 and floor the geometric mean at 0.
  const none = bleuFromStatistics(stats, { smoothMethod: "none" });
  assert.deepEqual(none.precisions, [75, 100 / 3, 0, 0]);
  assert.equal(none.score, 0);
  // The geometric mean for exp: (75 * 100/3 * 25 * 25)^(1/4).
  assertClose(
    bleuFromStatistics(stats).score,
    (75 * (100 / 3) * 25 * 25) ** 0.25,
    1e-10,
    "exp score",
  );
});

Deno.test("bleuFromStatistics() formats precisions as Python does at exact ties", () => {
  // 49 of 400 unigrams is 12.25 exactly; Python's f"{12.25:.1f}" rounds half to even: "12.2"
  // (JavaScript's toFixed would print "12.3"). Bigrams: 1 of 8 = 12.5 prints "12.5".
  const bleu = bleuFromStatistics([400, 400, 49, 1, 0, 0, 400, 8, 398, 397], {
    smoothMethod: "none",
  });
  assert.equal(
    bleu.formatted,
    "BLEU = 0.00 12.2/12.5/0.0/0.0 (BP = 1.000 ratio = 1.000 hyp_len = 400 ref_len = 400)",
  );
});

Deno.test("bleuFromStatistics() rejects malformed statistics", () => {
  assert.throws(
    () => bleuFromStatistics([1, 1, 1]),
    /Cannot compute BLEU: expected 2 \+ 2N statistics, got 3/,
  );
});
