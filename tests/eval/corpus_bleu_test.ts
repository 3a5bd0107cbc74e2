import assert from "node:assert/strict";
import { corpusBleu } from "../../eval/mod.ts";
import { assertClose } from "./_close.ts";
import { README_REFS, README_SYS } from "./_sacrebleu_testdata.ts";

// raw_corpus_bleu(hyps, refs, smooth_value) of sacreBLEU's compat.py: floor smoothing, no
// tokenization, effective order.
const raw = (smoothValue?: number) =>
  ({ smoothMethod: "floor", smoothValue, tokenize: "none", effectiveOrder: true }) as const;

Deno.test("corpusBleu() reproduces sacreBLEU's README example line and signature", () => {
  // mjpost/sacrebleu README.md (signature printed there with version:2.0.0).
  const bleu = corpusBleu(README_SYS, README_REFS);
  assert.equal(
    bleu.formatted,
    "BLEU = 48.53 82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)",
  );
  assert.equal(bleu.signature, "nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0");
});

Deno.test("corpusBleu() handles a variable number of references as sacreBLEU's README", () => {
  // README.md "Variable Number of References": segment 1 lacks its first reference. sacreBLEU
  // 2.6's Metric._cache_references drops only None, so the missing reference is null here.
  const refs = [[null, README_REFS[0][1], README_REFS[0][2]], README_REFS[1]];
  const bleu = corpusBleu(README_SYS, refs);
  assert.equal(
    bleu.formatted,
    "BLEU = 29.44 82.4/42.9/27.3/12.5 (BP = 0.889 ratio = 0.895 hyp_len = 17 ref_len = 19)",
  );
  assert.equal(bleu.signature, "nrefs:var|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0");
  // The README (written for 2.0) says "" works as well; in 2.6 "" is a reference of length 0.
  // Segment 1 (6 tokens) then has references of 0 and 7 tokens: 7 is still the closest and ""
  // has no n-grams, so the score is the same, but every segment now has 2 references.
  const empty = corpusBleu(README_SYS, [["", ...refs[0].slice(1)], refs[1]]);
  assert.equal(empty.formatted, bleu.formatted);
  assert.equal(empty.signature, "nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0");
});

Deno.test("corpusBleu() scores an empty reference as sacreBLEU 2.6 (issue 15 regression)", () => {
  // sacreBLEU 2.6 keeps "" (only None is dropped); _extract_reference_info([""]) gives no
  // n-grams and length 0, so _get_closest_ref_len(6, [0]) = 0 and the statistics are
  // [6, 0, 0, 0, 0, 0, 6, 5, 4, 3]. compute_bleu: BP = 1 (sys_len 6 >= ref_len 0); no n-gram
  // matches, so it returns score 0 with precisions 0 at once; ratio is 0 because ref_len is 0.
  // Before the fix this threw "segment 0 has no non-empty reference".
  const bleu = corpusBleu(["the cat sat on the mat"], [[""]]);
  assert.equal(
    bleu.formatted,
    "BLEU = 0.00 0.0/0.0/0.0/0.0 (BP = 1.000 ratio = 0.000 hyp_len = 6 ref_len = 0)",
  );
  assert.equal(bleu.score, 0);
  assert.deepEqual([bleu.sysLen, bleu.refLen, bleu.bp], [6, 0, 1]);
  assert.equal(bleu.signature, "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0");
});

Deno.test("corpusBleu() matches sacreBLEU's test_corpus_bleu cases", () => {
  // mjpost/sacrebleu test/test_bleu.py test_corpus_bleu_cases, tolerance 1e-8.
  assertClose(corpusBleu(README_SYS, README_REFS).score, 48.530827, 1e-8, "default");
  assertClose(
    corpusBleu(README_SYS, README_REFS, { tokenize: "none" }).score,
    49.1919566,
    1e-8,
    "none",
  );
  assertClose(
    corpusBleu(README_SYS, README_REFS, { tokenize: "13a" }).score,
    48.530827,
    1e-8,
    "13a",
  );
  assertClose(
    corpusBleu(README_SYS, README_REFS, { tokenize: "intl" }).score,
    43.91623493,
    1e-8,
    "intl",
  );
  assertClose(
    corpusBleu(README_SYS, README_REFS, { smoothMethod: "none" }).score,
    48.530827,
    1e-8,
    "none",
  );
  // Empty hypotheses are kept, not removed: they score 0.
  assert.equal(corpusBleu(["", "", ""], README_REFS).score, 0);
});

Deno.test("corpusBleu() matches sacreBLEU's test_max_ngram_order", () => {
  // test/test_bleu.py test_bleu_max_order: f"{score:.2f}" for orders 1 to 6.
  const expected = ["77.65", "60.50", "53.93", "48.53", "46.14", "43.28"];
  expected.forEach((score, i) => {
    assert.equal(
      corpusBleu(README_SYS, README_REFS, { maxNgramOrder: i + 1 }).score.toFixed(2),
      score,
    );
  });
});

Deno.test("corpusBleu() matches sacreBLEU's raw_corpus_bleu and effective order tests", () => {
  // test/test_bleu.py test_raw_bleu_cases and test_case_effective_order (smooth_value .01),
  // scores divided by 100, tolerance 1e-8.
  const cases: [string[], string[][], number][] = [
    [["this is a test", "another test"], [["ref1", "ref2"]], 0],
    [["this is a test"], [["this is a test"]], 1],
    [["this is a fest"], [["this is a test"]], 0.223606797749979],
    [["test"], [["a test"]], 0.3678794411714425],
    [["a test"], [["a test"]], 1],
    [["a little test"], [["a test"]], 0.03218297948685433],
  ];
  for (const [hyps, refs, expected] of cases) {
    assertClose(
      corpusBleu(hyps, refs, raw(0.01)).score / 100,
      expected,
      1e-8,
      JSON.stringify(hyps),
    );
  }
});

Deno.test("corpusBleu() matches sacreBLEU's test_offset", () => {
  // test/test_bleu.py test_case_offset: floor 0 gives 0; the default floor 0.1 gives 0.1555722182.
  const hyps = ["am I am a character sequence"];
  const refs = [["I am a symbol string sequence a a"]];
  assert.equal(corpusBleu(hyps, refs, raw(0)).score, 0);
  assertClose(corpusBleu(hyps, refs, raw()).score / 100, 0.1555722182, 1e-8, "default floor");
  assertClose(corpusBleu(hyps, refs, raw(0.1)).score / 100, 0.1555722182, 1e-8, "floor 0.1");
});

Deno.test("corpusBleu() reports counts and totals as sacreBLEU's test_statistics", () => {
  // test/test_bleu.py test_case_statistics.
  const bleu = corpusBleu(
    ["am I am a character sequence"],
    [["I am a symbol string sequence a a"]],
    raw(0.01),
  );
  assert.deepEqual(bleu.counts, [4, 2, 1, 0]);
  assert.deepEqual(bleu.totals, [6, 5, 4, 3]);
});

// Hand-worked corners.

Deno.test("corpusBleu() applies the brevity penalty", () => {
  // "the cat" against "the cat sat on the mat": sys 2, ref 6, BP = exp(1 - 6/2) = exp(-2).
  // Unigrams 2/2 and bigrams 1/1 match; there are no 3- and 4-grams, so without effective
  // order the missing orders floor the score at 0, and with it BLEU = BP * 100.
  const hyps = ["the cat"];
  const refs = [["the cat sat on the mat"]];
  const plain = corpusBleu(hyps, refs);
  assert.equal(plain.bp, Math.exp(-2));
  assert.equal(plain.score, 0);
  assert.equal(
    plain.formatted,
    "BLEU = 0.00 100.0/100.0/0.0/0.0 (BP = 0.135 ratio = 0.333 hyp_len = 2 ref_len = 6)",
  );
  const effective = corpusBleu(hyps, refs, { effectiveOrder: true });
  assertClose(effective.score, 100 * Math.exp(-2), 1e-12, "effective order");
  assert.equal(
    effective.formatted,
    "BLEU = 13.53 100.0/100.0/0.0/0.0 (BP = 0.135 ratio = 0.333 hyp_len = 2 ref_len = 6)",
  );
});

Deno.test("corpusBleu() uses the closest reference length, the shorter on a tie", () => {
  // Hypothesis of 4 tokens, references of 3 and 5: both 1 away, so ref_len = 3 and BP = 1. Had
  // it taken 5, BP would be exp(1 - 5/4). Every n-gram occurs in the second reference.
  const bleu = corpusBleu(["a b c d"], [["a b c"], ["a b c d e"]]);
  assert.equal(bleu.refLen, 3);
  assert.equal(bleu.bp, 1);
  assert.equal(
    bleu.formatted,
    "BLEU = 100.00 100.0/100.0/100.0/100.0 (BP = 1.000 ratio = 1.333 hyp_len = 4 ref_len = 3)",
  );
});

Deno.test("corpusBleu() handles no matches at all", () => {
  // sacreBLEU returns 0 with all precisions 0 before smoothing when nothing matches (#141).
  const bleu = corpusBleu(["x y z"], [["a b c"]]);
  assert.equal(
    bleu.formatted,
    "BLEU = 0.00 0.0/0.0/0.0/0.0 (BP = 1.000 ratio = 1.000 hyp_len = 3 ref_len = 3)",
  );
  assert.deepEqual(bleu.counts, [0, 0, 0, 0]);
  assert.deepEqual(bleu.totals, [3, 2, 1, 0]);
});

Deno.test("corpusBleu() handles an empty hypothesis", () => {
  // hyp_len 0 < ref_len 3 gives BP 0; ratio 0/3.
  assert.equal(
    corpusBleu([""], [["a b c"]]).formatted,
    "BLEU = 0.00 0.0/0.0/0.0/0.0 (BP = 0.000 ratio = 0.000 hyp_len = 0 ref_len = 3)",
  );
});

Deno.test("corpusBleu() handles punctuation-only segments", () => {
  // 13a turns "!!!" into "! ! !": 3 unigrams, 2 bigrams, 1 trigram, no 4-gram. Without effective
  // order the missing order makes the score 0; with it, BLEU is 100.
  assert.equal(
    corpusBleu(["!!!"], [["!!!"]]).formatted,
    "BLEU = 0.00 100.0/100.0/100.0/0.0 (BP = 1.000 ratio = 1.000 hyp_len = 3 ref_len = 3)",
  );
  assert.equal(corpusBleu(["!!!"], [["!!!"]], { effectiveOrder: true }).score.toFixed(2), "100.00");
});

Deno.test("corpusBleu() lowercases only when asked", () => {
  // "The Cat sat" vs "the cat sat": mixed case matches 1/3 unigrams ("sat"), 0 bigrams.
  const mixed = corpusBleu(["The Cat sat"], [["the cat sat"]], { effectiveOrder: true });
  assert.deepEqual(mixed.counts.slice(0, 2), [1, 0]);
  const lower = corpusBleu(["The Cat sat"], [["the cat sat"]], {
    lowercase: true,
    effectiveOrder: true,
  });
  assert.equal(lower.score.toFixed(2), "100.00");
  assert.ok(lower.signature.includes("|case:lc|eff:yes|"));
});

Deno.test("corpusBleu() sums statistics instead of averaging sentence scores", () => {
  // Segment 1 "a b c d" matches fully; segment 2 "x y z w" not at all. Summed: 4/8 unigrams,
  // 3/6 bigrams, 2/4 trigrams, 1/2 4-grams, so BLEU = 50 exactly, while the mean of the two
  // sentence scores would be (100 + 0) / 2.
  const bleu = corpusBleu(["a b c d", "x y z w"], [["a b c d", "p q r s"]]);
  assertClose(bleu.score, 50, 1e-12, "corpus BLEU");
});

Deno.test("corpusBleu() rejects segments without any reference and mismatched lengths", () => {
  assert.throws(
    () => corpusBleu(["a"], [[null]]),
    /Cannot compute BLEU: segment 0 has no reference \(null or undefined in every stream\)/,
  );
  assert.throws(
    () => corpusBleu(["a", "b"], [["a"]]),
    /Cannot compute BLEU: 2 hypotheses but reference stream 0 has 1/,
  );
  assert.throws(() => corpusBleu([], [[]]), /Cannot compute BLEU: no hypotheses/);
  assert.throws(
    () => corpusBleu(["a"], [["a"]], { smoothMethod: "lin" as never }),
    /unknown smoothing method/,
  );
  assert.throws(() => corpusBleu(["a"], [["a"]], { maxNgramOrder: 0 }), /maxNgramOrder/);
});
