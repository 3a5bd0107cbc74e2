import assert from "node:assert/strict";
import { sentenceChrf } from "../../eval/mod.ts";
import { assertClose } from "./_close.ts";

Deno.test("sentenceChrf() matches sacreBLEU's sentence-level test cases", () => {
  // mjpost/sacrebleu test/test_chrf.py test_chrf_sentence_level: sentence_chrf(hyp, refs,
  // eps_smoothing=True) with the default char order 6, word order 0, beta 2; tolerance 1e-4.
  const cases: [string, string[], number][] = [
    [
      "Co nás nejvíc trápí, protože lékaři si vybírají, kdo bude žít a kdo zemře.",
      ["Nejvíce smutní jsme z toho, že musíme rozhodovat o tom, kdo bude žít a kdo zemře."],
      39.14078509,
    ],
    [
      "Nebo prostě nemají vybavení, které by jim pomohlo, uvedli lékaři.",
      ["A někdy nemáme ani potřebný materiál, abychom jim pomohli, popsali lékaři."],
      31.22557079,
    ],
    [
      "Lapali po dechu, jejich životy skončily dřív, než skutečně začaly.",
      ["Lapali po dechu a pak jejich život skončil - dřív, než skutečně mohl začít, připomněli."],
      57.15704367,
    ],
  ];
  for (const [hyp, refs, expected] of cases) {
    assertClose(sentenceChrf(hyp, refs, { epsSmoothing: true }).score, expected, 1e-4, hyp);
  }
});

Deno.test("sentenceChrf() keeps the best of several references", () => {
  // Against "xyz" nothing matches; against "abc" everything does: the best reference wins.
  assert.equal(sentenceChrf("abc", ["xyz", "abc"]).score, 100);
  assert.equal(sentenceChrf("abc", ["xyz", "abc"]).signature.split("|")[0], "nrefs:2");
});

Deno.test("sentenceChrf() handles empty and punctuation-only hypotheses", () => {
  // No hypothesis n-grams: effective order 0, score 0.
  assert.equal(sentenceChrf("", ["abc"]).formatted, "chrF2 = 0.00");
  // "?!" against "?!": punctuation is just characters for chrF: unigrams and the bigram match.
  assert.equal(sentenceChrf("?!", ["?!"]).score, 100);
});

Deno.test("sentenceChrf() counts characters as code points", () => {
  // "🙂a" has 2 characters in Python (3 UTF-16 units): unigrams 🙂, a and one bigram all match
  // "🙂a b" (whitespace removed: 🙂 a b). Precision 3/3; recall: unigrams 2/3, bigrams 1/2.
  // Effective order 2: P = 1, R = (2/3 + 1/2) / 2 = 7/12; F2 = 5 * P * R / (4 * P + R).
  const r = 7 / 12;
  assertClose(sentenceChrf("🙂a", ["🙂a b"]).score, 100 * (5 * r / (4 + r)), 1e-12, "chrF2");
});
