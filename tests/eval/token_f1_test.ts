import assert from "node:assert/strict";
import { tokenF1 } from "../../eval/mod.ts";
import { assertClose } from "./_close.ts";

Deno.test("tokenF1() computes bag-of-tokens F1 after normalisation", () => {
  // "the cat sat on the mat" -> cat sat on mat; "a cat on a mat" -> cat on mat.
  // Common 3: P = 3/3, R = 3/4, F1 = 6/7.
  assertClose(tokenF1("a cat on a mat", "the cat sat on the mat"), 6 / 7, 1e-15, "F1");
});

Deno.test("tokenF1() clips repeated tokens", () => {
  // "dog dog dog" vs "dog cat": 1 common token. P = 1/3, R = 1/2, F1 = 0.4.
  assertClose(tokenF1("dog dog dog", "dog cat"), 0.4, 1e-15, "F1");
});

Deno.test("tokenF1() takes the best over several references", () => {
  assert.equal(tokenF1("blue whale", ["whale shark", "blue whale"]), 1);
});

Deno.test("tokenF1() treats empty answers as SQuAD v2.0 does", () => {
  // compute_f1 in evaluate-v2.0.py: if either side has no tokens, F1 = int(gold == pred).
  assert.equal(tokenF1("", ""), 1);
  assert.equal(tokenF1("the", "a"), 1);
  assert.equal(tokenF1("", "answer"), 0);
  assert.equal(tokenF1("answer", ""), 0);
});

Deno.test("tokenF1() handles no common tokens", () => {
  assert.equal(tokenF1("red", "blue"), 0);
  assert.throws(() => tokenF1("a", []), /Cannot compute token F1: no references/);
});
