import assert from "node:assert/strict";
import { bootstrapAggregate, rouge, rougeCorpus, rougeMulti } from "../../eval/mod.ts";

Deno.test("rougeCorpus() averages per-example scores", () => {
  // Example 1: rouge1 P 1, R 2/3, F 0.8; example 2: no overlap, 0.
  const result = rougeCorpus(["one two three", "one two five six"], ["one two", "seven eight"]);
  assert.deepEqual(Object.keys(result), ["rouge1", "rouge2", "rougeL", "rougeLsum"]);
  assert.deepEqual(result.rouge1.mean, { precision: 0.5, recall: 1 / 3, fmeasure: 0.4 });
  assert.ok(result.rouge1.low.fmeasure <= result.rouge1.mid.fmeasure);
  assert.ok(result.rouge1.mid.fmeasure <= result.rouge1.high.fmeasure);
});

Deno.test("rougeCorpus() scores several targets per example like rougeMulti()", () => {
  const targets = [["a b x", "b a y z w"], "c d"];
  const predictions = ["b a", "c d"];
  const result = rougeCorpus(targets, predictions, { rougeTypes: ["rougeL"] });
  const first = rougeMulti(targets[0] as string[], "b a", { rougeTypes: ["rougeL"] }).rougeL;
  const second = rouge("c d", "c d", { rougeTypes: ["rougeL"] }).rougeL;
  assert.equal(result.rougeL.mean.recall, (first.recall + second.recall) / 2);
});

Deno.test("rougeCorpus() bootstraps the per-example scores with the given seed", () => {
  const targets = ["a b c", "d e f", "a c e", "b d f"];
  const predictions = ["a b", "d x f", "e c a", "q"];
  const options = { seed: 7, nSamples: 200, confidenceInterval: 0.8 };
  const perExample = targets.map((target, i) => rouge(target, predictions[i]));
  assert.deepEqual(
    rougeCorpus(targets, predictions, options),
    bootstrapAggregate(perExample, options),
  );
});

Deno.test("rougeCorpus() rejects mismatched lengths", () => {
  assert.throws(
    () => rougeCorpus(["a"], ["a", "b"]),
    /Cannot score ROUGE: 1 targets but 2 predictions/,
  );
});
