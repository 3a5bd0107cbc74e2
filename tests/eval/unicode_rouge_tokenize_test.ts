import assert from "node:assert/strict";
import { rouge, unicodeRougeTokenize } from "../../eval/mod.ts";

Deno.test("unicodeRougeTokenize() keeps accented words whole", () => {
  assert.deepEqual(unicodeRougeTokenize("Crème brûlée, naïve café!"), [
    "crème",
    "brûlée",
    "naïve",
    "café",
  ]);
  // A combining accent (U+0301) stays in its word; NFKC composes it.
  assert.deepEqual(unicodeRougeTokenize("cafe\u0301"), ["café"]);
});

Deno.test("unicodeRougeTokenize() splits Chinese and Japanese into characters", () => {
  assert.deepEqual(unicodeRougeTokenize("東京タワーへ行く"), [
    "東",
    "京",
    "タ",
    "ワ",
    "ー",
    "へ",
    "行",
    "く",
  ]);
  // Latin runs next to Han characters stay separate tokens.
  assert.deepEqual(unicodeRougeTokenize("GPT模型"), ["gpt", "模", "型"]);
});

Deno.test("unicodeRougeTokenize() drops punctuation, symbols and emoji", () => {
  assert.deepEqual(unicodeRougeTokenize("Hi 🙂 — ok? 100% «oui»"), ["hi", "ok", "100", "oui"]);
  assert.deepEqual(unicodeRougeTokenize(""), []);
});

Deno.test("unicodeRougeTokenize() folds full-width forms", () => {
  assert.deepEqual(unicodeRougeTokenize("ＧＰＴ４"), ["gpt4"]);
});

Deno.test("unicodeRougeTokenize() gives non-zero ROUGE where the default tokenizer gives 0", () => {
  // Target 東 京 都 (3 characters), prediction 京 都: 2 unigram hits, 1 bigram hit (京都).
  const scores = rouge("東京都", "京都", { tokenizer: unicodeRougeTokenize });
  assert.deepEqual(scores.rouge1, { precision: 1, recall: 2 / 3, fmeasure: 0.8 });
  assert.equal(scores.rouge2.recall, 1 / 2);
  assert.equal(rouge("東京都", "京都").rouge1.fmeasure, 0);
});
