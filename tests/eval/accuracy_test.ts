import assert from "node:assert/strict";
import { accuracy } from "../../eval/mod.ts";

Deno.test("accuracy() counts exact equality", () => {
  assert.equal(accuracy([1, 2, 3, 4], [1, 2, 0, 4]), 0.75);
  assert.equal(accuracy(["A", "b"], ["a", "b"]), 0.5);
});

Deno.test("accuracy() rejects empty and mismatched inputs", () => {
  assert.throws(() => accuracy([], []), /Cannot compute accuracy: no predictions/);
  assert.throws(() => accuracy([1], [1, 2]), /Cannot compute accuracy: 1 predictions but 2 labels/);
});
