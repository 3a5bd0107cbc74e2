import assert from "node:assert/strict";
import { rougeTokenize } from "../../eval/mod.ts";

Deno.test("rougeTokenize() lowercases and splits as rouge_score's tokenize tests", () => {
  // google-research/google-research rouge/tokenize_test.py and rouge/tokenizers_test.py.
  assert.deepEqual(rougeTokenize("one Two three"), ["one", "two", "three"]);
  assert.deepEqual(rougeTokenize("one\n Two \nthree"), ["one", "two", "three"]);
  assert.deepEqual(rougeTokenize("this is a test"), ["this", "is", "a", "test"]);
  assert.deepEqual(rougeTokenize("the friends had a meeting", { useStemmer: true }), [
    "the",
    "friend",
    "had",
    "a",
    "meet",
  ]);
});

Deno.test("rougeTokenize() handles empty and punctuation-only strings", () => {
  assert.deepEqual(rougeTokenize(""), []);
  assert.deepEqual(rougeTokenize("  \n\t "), []);
  assert.deepEqual(rougeTokenize("?!... -- '"), []);
});

Deno.test("rougeTokenize() turns every character outside [a-z0-9] into a separator", () => {
  // Each expectation follows from re.sub(r"[^a-z0-9]+", " ", text.lower()) in rouge/tokenize.py.
  assert.deepEqual(rougeTokenize("1,000.5 in 2020."), ["1", "000", "5", "in", "2020"]);
  assert.deepEqual(rougeTokenize("don't stop"), ["don", "t", "stop"]);
  assert.deepEqual(rougeTokenize("state-of-the-art"), ["state", "of", "the", "art"]);
  assert.deepEqual(rougeTokenize("naïve café"), ["na", "ve", "caf"]);
  assert.deepEqual(rougeTokenize("東京 Ελλάδα Москва 🙂"), []);
  assert.deepEqual(rougeTokenize("snake_case"), ["snake", "case"]);
});

Deno.test("rougeTokenize() keeps characters whose Unicode lowercase is ASCII", () => {
  // Python's str.lower() maps U+0130 to "i" + U+0307 and the Kelvin sign U+212A to "k"; the
  // combining dot then separates.
  assert.deepEqual(rougeTokenize("İstanbul"), ["i", "stanbul"]);
  assert.deepEqual(rougeTokenize("300\u212A"), ["300k"]);
});

Deno.test("rougeTokenize() stems only tokens longer than 3 characters", () => {
  // "was" would stem to "wa" and "has" to "ha"; at 3 characters they are left alone. "goes"
  // has 4 and stems to "goe" (step 1a drops the s).
  assert.deepEqual(rougeTokenize("was has goes", { useStemmer: true }), ["was", "has", "goe"]);
});
