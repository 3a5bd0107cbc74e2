import assert from "node:assert/strict";
import { type BleuOptions, sentenceBleu } from "../../eval/mod.ts";
import { assertClose } from "./_close.ts";

// mjpost/sacrebleu test/test_sentence_bleu.py, example from sacreBLEU issue #98. The reference
// writes "ţ" with a cedilla (U+0163), the hypothesis "ț" with a comma (U+021B).
const REF = "produc\u0163ia de zah\u0103r brut se exprim\u0103 \u00een zah\u0103r alb;";
const SYS =
  "Produc\u021Bia de zah\u0103r prim\u0103 va fi exprimat\u0103 \u00een ceea ce prive\u0219te zah\u0103rul alb;";

Deno.test("sentenceBleu() matches sacreBLEU's test_sentence_bleu cases", () => {
  // test_api_sentence_bleu: BLEU(..., effective_order=True).sentence_score(SYS, [REF]), tolerance 1e-3.
  const cases: [BleuOptions, number][] = [
    [{ smoothMethod: "exp" }, 8.493],
    [{ smoothMethod: "none" }, 0.0],
    [{ smoothMethod: "floor" }, 4.51688],
    [{ smoothMethod: "floor", smoothValue: 0.1 }, 4.51688],
    [{ smoothMethod: "floor", smoothValue: 0.5 }, 10.10],
    [{ smoothMethod: "add-k" }, 14.882],
    [{ smoothMethod: "add-k", smoothValue: 1 }, 14.882],
    [{ smoothMethod: "add-k", smoothValue: 2 }, 21.389],
    [{ tokenize: "none" }, 7.347],
    [{ tokenize: "intl" }, 8.493],
    [{ tokenize: "char" }, 40.8759],
    [{ tokenize: "char", lowercase: true }, 42.0267],
  ];
  for (const [options, expected] of cases) {
    assertClose(sentenceBleu(SYS, [REF], options).score, expected, 1e-3, JSON.stringify(options));
  }
});

Deno.test("sentenceBleu() scores 0 when nothing matches, whatever the smoothing", () => {
  // test_sentence_bleu.py test_cases_zero_bleu (issue #141): "this is a cat" vs "okay thanks".
  for (
    const options of [{}, { smoothMethod: "none" }, { smoothMethod: "floor" }, {
      smoothMethod: "add-k",
    }] as BleuOptions[]
  ) {
    assert.equal(
      sentenceBleu("this is a cat", ["okay thanks"], options).score,
      0,
      JSON.stringify(options),
    );
  }
});

Deno.test("sentenceBleu() uses effective order by default", () => {
  // "a test" vs "a test": orders 3 and 4 have no n-grams; effective order stops at 2.
  const bleu = sentenceBleu("a test", ["a test"]);
  assert.equal(bleu.score.toFixed(2), "100.00");
  assert.equal(bleu.signature, "nrefs:1|case:mixed|eff:yes|tok:13a|smooth:exp|version:2.6.0");
  assert.equal(sentenceBleu("a test", ["a test"], { effectiveOrder: false }).score, 0);
});

Deno.test("sentenceBleu() takes the best counts over several references", () => {
  // "the cat sat": "the cat" is in the first reference, "cat sat" in the second; clipping uses
  // the max count over references, so all 3 unigrams and both bigrams match, while the trigram
  // is in neither.
  const bleu = sentenceBleu("the cat sat", ["the cat", "a cat sat"]);
  assert.deepEqual(bleu.counts.slice(0, 3), [3, 2, 0]);
  assert.equal(bleu.signature.split("|")[0], "nrefs:2");
});

Deno.test("sentenceBleu() shows add-k in its reported counts", () => {
  // sacreBLEU's compute_bleu adds k to counts and totals of orders 2+ in place, and the score
  // object reports them: "a b" vs "a c" with add-k 1 gives counts [1, 0+1, 0+1, 0+1].
  const bleu = sentenceBleu("a b", ["a c"], { smoothMethod: "add-k" });
  assert.deepEqual(bleu.counts, [1, 1, 1, 1]);
  assert.deepEqual(bleu.totals, [2, 2, 1, 1]);
  assert.equal(
    bleu.signature,
    "nrefs:1|case:mixed|eff:yes|tok:13a|smooth:add-k[1.00]|version:2.6.0",
  );
});

Deno.test("sentenceBleu() keeps an empty reference as sacreBLEU 2.6 (issue 15 regression)", () => {
  // sentence_score passes each reference as its own stream; 2.6 drops only None, so "" is a
  // second reference of length 0. Hypothesis "a b" (2 tokens): |2 - 4| = |2 - 0| = 2, a tie,
  // and _get_closest_ref_len takes the shorter, 0. Statistics [2, 0, 2, 1, 0, 0, 2, 1, 0, 0]:
  // BP = 1 (2 >= 0); precisions 100, 100; order 3 has no n-grams, so the effective order is 2
  // and BLEU = exp((ln 100 + ln 100) / 2) = 100 (100.00000000000004 in doubles). Dropping ""
  // (the old behaviour) made the reference length 4: BP = exp(1 - 4/2), BLEU 36.79, nrefs:1.
  const bleu = sentenceBleu("a b", ["a b c d", ""]);
  assert.equal(bleu.score, Math.exp((Math.log(100) + Math.log(100)) / 2));
  assert.equal(
    bleu.formatted,
    "BLEU = 100.00 100.0/100.0/0.0/0.0 (BP = 1.000 ratio = 0.000 hyp_len = 2 ref_len = 0)",
  );
  assert.equal(bleu.signature, "nrefs:2|case:mixed|eff:yes|tok:13a|smooth:exp|version:2.6.0");
});
