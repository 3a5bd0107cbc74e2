import assert from "node:assert/strict";
import { chrfFromStatistics } from "../../eval/mod.ts";

Deno.test("chrfFromStatistics() averages over the orders both sides have", () => {
  // "aa" vs "ab" (mjpost/sacrebleu test/test_chrf.py, 25.0 with beta 3, effective order):
  // order 1 P = R = 1/2, order 2 P = R = 0, orders 3-6 empty on both sides and skipped, so
  // P = R = 1/4 and F = 1/4 for any beta.
  const stats = [2, 2, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
  assert.equal(chrfFromStatistics(stats, { beta: 3 }).score, 25);
  assert.equal(chrfFromStatistics(stats).formatted, "chrF2 = 25.00");
  // With epsilon smoothing every order counts: (0.5 + 0 + 4 * 1e-16) / 6 -> 8.3333 (test_chrf).
  assert.equal(
    chrfFromStatistics(stats, { beta: 3, epsSmoothing: true }).score.toFixed(4),
    "8.3333",
  );
});

Deno.test("chrfFromStatistics() skips orders without reference n-grams", () => {
  // Order 1: 2 hypothesis n-grams but no reference ones (n_ref = 0): not in the effective
  // order. Order 2: P = R = 1. So chrF = 100 rather than an average with an empty order.
  assert.equal(chrfFromStatistics([2, 0, 0, 2, 2, 2], { charOrder: 2 }).score, 100);
});

Deno.test("chrfFromStatistics() names chrF variants as sacreBLEU", () => {
  // CHRFScore: name = f'chrF{beta}' + '+' * word_order.
  const stats = new Array(3 * 8).fill(1);
  assert.equal(chrfFromStatistics(stats, { wordOrder: 2 }).name, "chrF2++");
  assert.equal(chrfFromStatistics(stats.slice(3), { wordOrder: 1, beta: 3 }).name, "chrF3+");
});

Deno.test("chrfFromStatistics() rejects the wrong number of statistics", () => {
  assert.throws(
    () => chrfFromStatistics([1, 1, 1]),
    /Cannot compute chrF: expected 18 statistics, got 3/,
  );
});
