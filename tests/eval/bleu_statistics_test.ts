import assert from "node:assert/strict";
import { bleuStatistics } from "../../eval/mod.ts";

Deno.test("bleuStatistics() lays out lengths, counts and totals as sacreBLEU", () => {
  // mjpost/sacrebleu test/test_bleu.py test_case_statistics: counts [4, 2, 1, 0], totals
  // [6, 5, 4, 3]; hypothesis 6 tokens, reference 8.
  const stats = bleuStatistics("am I am a character sequence", [
    "I am a symbol string sequence a a",
  ], {
    tokenize: "none",
  });
  assert.deepEqual(stats, [6, 8, 4, 2, 1, 0, 6, 5, 4, 3]);
});

Deno.test("bleuStatistics() follows maxNgramOrder", () => {
  assert.deepEqual(bleuStatistics("a b c", ["a b c"], { maxNgramOrder: 2 }), [3, 3, 3, 2, 3, 2]);
});

Deno.test("bleuStatistics() strips trailing whitespace before tokenizing", () => {
  // sacreBLEU tokenizes sent.rstrip(); with tokenize "none" the tokens come from a whitespace
  // split.
  assert.deepEqual(bleuStatistics("a b \n", ["a b"], { tokenize: "none", maxNgramOrder: 1 }), [
    2,
    2,
    2,
    2,
  ]);
});

Deno.test("bleuStatistics() splits on Python's whitespace, not JavaScript's", () => {
  // U+001F (a Python whitespace) separates tokens; U+FEFF (JavaScript \s, not Python) does not.
  assert.deepEqual(bleuStatistics("a\u001fb", ["a b"], { tokenize: "none", maxNgramOrder: 1 }), [
    2,
    2,
    2,
    2,
  ]);
  assert.deepEqual(bleuStatistics("a\ufeffb", ["a b"], { tokenize: "none", maxNgramOrder: 1 }), [
    1,
    2,
    0,
    1,
  ]);
});

Deno.test("bleuStatistics() rejects an empty reference list", () => {
  assert.throws(() => bleuStatistics("a", []), /Cannot compute BLEU: no references/);
});
