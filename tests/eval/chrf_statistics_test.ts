import assert from "node:assert/strict";
import { chrfStatistics } from "../../eval/mod.ts";

Deno.test("chrfStatistics() removes whitespace before taking character n-grams", () => {
  // "a b" becomes "ab": unigrams a, b (2, both in "abc"), bigram ab (1, in "abc" whose bigrams
  // are ab, bc), no trigram (the reference has one: abc).
  assert.deepEqual(chrfStatistics("a b", ["abc"], { charOrder: 3 }), [2, 3, 2, 1, 2, 1, 0, 1, 0]);
});

Deno.test("chrfStatistics() zeroes hypothesis counts where the reference has no n-grams", () => {
  // sacreBLEU's _get_match_statistics: [hyp_count if ref_ngrams else 0, ...]. "abc" vs "a":
  // the reference has no bigram, so the hypothesis' 2 bigrams are recorded as 0.
  assert.deepEqual(chrfStatistics("abc", ["a"], { charOrder: 2 }), [3, 1, 1, 0, 0, 0]);
});

Deno.test("chrfStatistics() splits one punctuation mark off each word for chrF++", () => {
  // sacreBLEU's _remove_punctuation: "(hi)" -> "(hi", ")" (the end is tried first, issue #124);
  // "'bye" -> "'", "bye"; a lone "." stays. Word unigrams of the hypothesis: (hi ) ' bye . = 5.
  // The reference "(hi) bye ." gives (hi ) bye . = 4; matches: (hi, ), bye, . = 4.
  const stats = chrfStatistics("(hi) 'bye .", ["(hi) bye ."], { charOrder: 1, wordOrder: 1 });
  assert.deepEqual(stats.slice(3), [5, 4, 4]);
});

Deno.test("chrfStatistics() keeps whitespace when asked", () => {
  // "a b" keeps its space: unigrams a, " ", b; the reference "ab" has a, b.
  assert.deepEqual(chrfStatistics("a b", ["ab"], { charOrder: 1, whitespace: true }), [3, 2, 2]);
});
