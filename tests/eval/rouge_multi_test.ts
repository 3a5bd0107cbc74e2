import assert from "node:assert/strict";
import { rouge, rougeMulti } from "../../eval/mod.ts";

Deno.test("rougeMulti() with one target equals rouge()", () => {
  // google-research rouge/rouge_scorer_test.py testRouge1Multi: P 1, R 1/3, F 1/2.
  const scores = rougeMulti(["testing one two"], "testing", { rougeTypes: ["rouge1"] });
  assert.deepEqual(scores.rouge1, { precision: 1, recall: 1 / 3, fmeasure: 1 / 2 });
  assert.deepEqual(rougeMulti(["testing one two"], "testing"), rouge("testing one two", "testing"));
});

Deno.test("rougeMulti() picks the best target per ROUGE type", () => {
  // testRougeAllMulti: rouge1 1 (from "first text"), rouge2 0, rougeL 0.5.
  const scores = rougeMulti(["first text", "first something"], "text first", {
    rougeTypes: ["rouge1", "rouge2", "rougeL"],
  });
  assert.equal(scores.rouge1.fmeasure, 1);
  assert.equal(scores.rouge2.fmeasure, 0);
  assert.equal(scores.rougeL.fmeasure, 0.5);
});

Deno.test("rougeMulti() can take rouge1 and rougeL from different targets", () => {
  // Prediction "b a". Target "a b x": rouge1 P 2/2, R 2/3, F 0.8; rougeL LCS 1: F 0.4.
  // Target "b a y z w": rouge1 P 1, R 2/5, F 4/7; rougeL LCS 2 ("b a"): F 4/7.
  // Best rouge1 comes from the first target (0.8), best rougeL from the second (4/7 > 0.4).
  const scores = rougeMulti(["a b x", "b a y z w"], "b a", { rougeTypes: ["rouge1", "rougeL"] });
  assert.equal(scores.rouge1.recall, 2 / 3);
  assert.equal(scores.rougeL.recall, 2 / 5);
});

Deno.test("rougeMulti() keeps the first target on a tie, as np.argmax", () => {
  // Prediction "a b". Target "a b c d e f": P 1, R 1/3, F1 0.5. Target "a x": P 1/2, R 1/2,
  // F1 0.5. Equal F1 (exactly, in doubles too), so the first target listed wins.
  const options = { rougeTypes: ["rouge1"] };
  assert.equal(rougeMulti(["a b c d e f", "a x"], "a b", options).rouge1.precision, 1);
  assert.equal(rougeMulti(["a x", "a b c d e f"], "a b", options).rouge1.precision, 0.5);
});

Deno.test("rougeMulti() rejects an empty target list", () => {
  assert.throws(() => rougeMulti([], "a"), /Cannot score ROUGE: no targets/);
});
