import assert from "node:assert/strict";
import { rouge, type RougeScore } from "../../eval/mod.ts";
import { assertClose, assertPlaces } from "./_close.ts";
import { PREDICTION_MULTI_0, PREDICTIONS, TARGET_MULTI_0, TARGETS } from "./_rouge_testdata.ts";

function assertScore(actual: RougeScore, expected: [number, number, number], what: string) {
  assertClose(actual.precision, expected[0], 1e-12, `${what} precision`);
  assertClose(actual.recall, expected[1], 1e-12, `${what} recall`);
  assertClose(actual.fmeasure, expected[2], 1e-12, `${what} fmeasure`);
}

// Reference values in this block: google-research/google-research rouge/rouge_scorer_test.py
// (rouge_score 0.1.2's tests), unless a comment says otherwise.

Deno.test("rouge() scores rouge1 as rouge_score's testRouge1", () => {
  assertScore(rouge("testing one two", "testing").rouge1, [1, 1 / 3, 1 / 2], "rouge1");
});

Deno.test("rouge() scores rouge2 as rouge_score's testRouge2", () => {
  assertScore(rouge("testing one two", "testing one").rouge2, [1, 1 / 2, 2 / 3], "rouge2");
});

Deno.test("rouge() scores consecutive and non-consecutive rougeL as rouge_score", () => {
  // testRougeLConsecutive, testRougeLNonConsecutive, testMultipleRougeTypes.
  assertScore(rouge("testing one two", "testing one").rougeL, [1, 2 / 3, 4 / 5], "consecutive");
  assertScore(rouge("testing one two", "testing two").rougeL, [1, 2 / 3, 4 / 5], "non-consecutive");
  const both = rouge("testing one two", "testing one", { rougeTypes: ["rouge1", "rougeL"] });
  assert.deepEqual(Object.keys(both), ["rouge1", "rougeL"]);
  assertScore(both.rouge1, [1, 2 / 3, 4 / 5], "rouge1");
});

Deno.test("rouge() handles an empty prediction", () => {
  // testRougeEmpty: every type scores 0, 0, 0.
  const scores = rouge("testing one two", "");
  for (const type of ["rouge1", "rouge2", "rougeL", "rougeLsum"]) {
    assert.deepEqual(scores[type], { precision: 0, recall: 0, fmeasure: 0 }, type);
  }
});

Deno.test("rouge() rejects invalid ROUGE types", () => {
  // testInvalidRougeTypes; testValidRougeTypes accepts rouge9.
  for (const type of ["rougen", "rouge0", "rouge10"]) {
    assert.throws(
      () => rouge("testing one two", "testing", { rougeTypes: [type] }),
      /Cannot score ROUGE/,
    );
  }
  assert.deepEqual(Object.keys(rouge("testing one two", "testing", { rougeTypes: ["rouge9"] })), [
    "rouge9",
  ]);
});

Deno.test("rouge() matches ROUGE-1.5.5 on rouge_score's test data", () => {
  // testRouge1AgainstRouge155, testRouge2AgainstRouge155, testRougeLAgainstRouge155 (5 places).
  const expected: Record<string, [number, number, number][]> = {
    // [recall, precision, fmeasure] for lines 1 and 2, as the Python test lists them.
    rouge1: [[0.40741, 0.68750, 0.51163], [0.40476, 0.65385, 0.50000]],
    rouge2: [[0.30769, 0.53333, 0.39024], [0.29268, 0.48000, 0.36364]],
    rougeL: [[0.40741, 0.68750, 0.51163], [0.40476, 0.65385, 0.50000]],
  };
  for (const [type, lines] of Object.entries(expected)) {
    lines.forEach(([recall, precision, fmeasure], i) => {
      const score = rouge(TARGETS[i], PREDICTIONS[i], { rougeTypes: [type] })[type];
      assertPlaces(score.recall, recall, 5, `${type} line ${i + 1} recall`);
      assertPlaces(score.precision, precision, 5, `${type} line ${i + 1} precision`);
      assertPlaces(score.fmeasure, fmeasure, 5, `${type} line ${i + 1} fmeasure`);
    });
  }
});

Deno.test("rouge() matches ROUGE-1.5.5 with stemming on rouge_score's test data", () => {
  // testRouge1AgainstRouge155WithStemming, testRouge2AgainstRouge155WithStemming: the words end
  // in -ing, -tion, -er, -ed, so line 2's rouge1 only matches if the Porter stemmer is NLTK's.
  const expected: Record<string, [number, number, number][]> = {
    rouge1: [[0.40741, 0.68750, 0.51163], [0.42857, 0.69231, 0.52941]],
    rouge2: [[0.30769, 0.53333, 0.39024], [0.29268, 0.48000, 0.36364]],
  };
  for (const [type, lines] of Object.entries(expected)) {
    lines.forEach(([recall, precision, fmeasure], i) => {
      const score =
        rouge(TARGETS[i], PREDICTIONS[i], { rougeTypes: [type], useStemmer: true })[type];
      assertPlaces(score.recall, recall, 5, `${type} line ${i + 1} recall`);
      assertPlaces(score.precision, precision, 5, `${type} line ${i + 1} precision`);
      assertPlaces(score.fmeasure, fmeasure, 5, `${type} line ${i + 1} fmeasure`);
    });
  }
});

Deno.test("rouge() matches ROUGE-1.5.5 rougeLsum with stemming on multi-line test data", () => {
  // testRougeLSumAgainstRouge155WithStemming (pyrouge_files/*_multi.0.txt).
  const score =
    rouge(TARGET_MULTI_0, PREDICTION_MULTI_0, { rougeTypes: ["rougeLsum"], useStemmer: true })
      .rougeLsum;
  assertPlaces(score.recall, 0.36538, 5, "recall");
  assertPlaces(score.precision, 0.66667, 5, "precision");
  assertPlaces(score.fmeasure, 0.47205, 5, "fmeasure");
});

Deno.test("rouge() scores rougeLsum by union LCS as rouge_score's testRougeLsum", () => {
  // The example of section 3.2 of the ROUGE paper: union LCS [w1 w2] + [w1 w3 w5] = 4 hits.
  const scores = rouge("w1 w2 w3 w4 w5", "w1 w2 w6 w7 w8\nw1 w3 w8 w9 w5", {
    rougeTypes: ["rougeLsum"],
  });
  assertClose(scores.rougeLsum.recall, 0.8, 1e-12, "recall 4/5");
  assertClose(scores.rougeLsum.precision, 0.4, 1e-12, "precision 4/10");
  assertPlaces(scores.rougeLsum.fmeasure, 0.5333, 3, "fmeasure");
  // Empty prediction, empty target, and a prediction of punctuation only: all zero.
  for (
    const [target, prediction] of [["w1 w2 w3 w4 w5", ""], ["", "w1"], ["w1 w2 w3 w4 w5", "/"]]
  ) {
    assert.deepEqual(
      rouge(target, prediction, { rougeTypes: ["rougeLsum"] }).rougeLsum,
      { precision: 0, recall: 0, fmeasure: 0 },
      JSON.stringify([target, prediction]),
    );
  }
});

Deno.test("rouge() splits rougeLsum sentences on newlines only", () => {
  // testRougeLSumSentenceSplitting (its split_summaries=False cases).
  const target = "First sentence.\nSecond Sentence.";
  const prediction = "Second sentence.\nFirst Sentence.";
  const options = { rougeTypes: ["rougeLsum"], useStemmer: true };
  assertPlaces(
    rouge(target, prediction, options).rougeLsum.fmeasure,
    1,
    5,
    "one sentence per line",
  );
  const joined = rouge(target.replace("\n", " "), prediction.replace("\n", " "), options);
  assertPlaces(joined.rougeLsum.fmeasure, 0.5, 5, "one sentence in all");
});

Deno.test("rouge() scores identical text as rouge_score's testRougeTokenizerInit", () => {
  assert.equal(
    rouge("this is a test", "this is a test", { rougeTypes: ["rouge1"] }).rouge1.fmeasure,
    1,
  );
});

// Hand-worked corners. Tokens come from rougeTokenize (lowercase, [a-z0-9] runs).

Deno.test("rouge() handles empty strings on both sides", () => {
  // No tokens on either side: rouge_score returns Score(0, 0, 0) for every type (no division).
  const scores = rouge("", "");
  for (const score of Object.values(scores)) {
    assert.deepEqual(score, { precision: 0, recall: 0, fmeasure: 0 });
  }
});

Deno.test("rouge() handles punctuation-only text", () => {
  // "!!! ... ?" has no [a-z0-9] character, so it has no tokens and scores 0 even against itself.
  assert.deepEqual(rouge("!!! ... ?", "!!! ... ?").rouge1, {
    precision: 0,
    recall: 0,
    fmeasure: 0,
  });
});

Deno.test("rouge() scores non-ASCII text as nothing with the default tokenizer", () => {
  // "東京タワー" and "🙂🙂" have no ASCII letters or digits: no tokens, so identical texts
  // score 0.
  assert.equal(rouge("東京タワー", "東京タワー").rouge1.fmeasure, 0);
  assert.equal(rouge("🙂🙂", "🙂🙂").rougeL.fmeasure, 0);
  // "é" is a separator: "café" gives "caf", which does not match "cafe". Target caf au lait,
  // prediction cafe au lait: 2 of 3 tokens match each way.
  const accented = rouge("café au lait", "cafe au lait").rouge1;
  assertScore(accented, [2 / 3, 2 / 3, 2 / 3], "accented");
});

Deno.test("rouge() splits numbers on punctuation", () => {
  // Target: the price was 1 000 5 in 2020 (8 tokens); prediction: price 1000 5 in 2020 (5).
  // Unigram hits: price, 5, in, 2020 = 4. Bigram hits: "5 in", "in 2020" of 7 and 4 bigrams.
  const scores = rouge("The price was 1,000.5 in 2020.", "price 1000.5 in 2020");
  assertScore(scores.rouge1, [4 / 5, 4 / 8, 2 * (4 / 5) * (4 / 8) / (4 / 5 + 4 / 8)], "rouge1");
  assertScore(scores.rouge2, [2 / 4, 2 / 7, 2 * (2 / 4) * (2 / 7) / (2 / 4 + 2 / 7)], "rouge2");
});

Deno.test("rouge() splits apostrophes and hyphens", () => {
  // Target "don't state-of-the-art": don, t, state, of, the, art (6 tokens). Prediction
  // "dont state of the art": dont, state, of, the, art (5). Hits: state, of, the, art = 4, so
  // P = 4/5 and R = 4/6: "don't" never matches "dont".
  const score = rouge("don't state-of-the-art", "dont state of the art").rouge1;
  assertScore(score, [4 / 5, 4 / 6, 2 * (4 / 5) * (4 / 6) / (4 / 5 + 4 / 6)], "rouge1");
});

Deno.test("rouge() stems only when asked, and only tokens longer than 3 characters", () => {
  // Without stemming "the cats are running" and "a cat ran" share no token. With it, cats ->
  // cat and running -> run; "are", "cat" and "ran" are too short to stem. One hit: P 1/3, R 1/4.
  assert.equal(rouge("the cats are running", "a cat ran").rouge1.fmeasure, 0);
  const stemmed = rouge("the cats are running", "a cat ran", { useStemmer: true }).rouge1;
  assertScore(stemmed, [1 / 3, 1 / 4, 2 * (1 / 3) * (1 / 4) / (1 / 3 + 1 / 4)], "stemmed");
  // NLTK stems the 4-letter "dies" and "died" to "die".
  assert.equal(rouge("he dies", "he died", { useStemmer: true }).rouge1.fmeasure, 1);
  assert.equal(rouge("he dies", "he died").rouge1.fmeasure, 0.5);
});

Deno.test("rouge() scores multi-sentence rougeLsum differently from rougeL", () => {
  // Target "a b c / d e", prediction "a c / b d e". rougeL on the whole texts: LCS of
  // a b c d e and a c b d e is 4, so P = R = 4/5. rougeLsum: target sentence 1 takes the union
  // of its LCS with "a c" (a, c) and with "b d e" (b) = a b c; sentence 2 gets d e from
  // "b d e": 5 hits of 5 tokens, so P = R = 1.
  const scores = rouge("a b c\nd e", "a c\nb d e");
  assertScore(scores.rougeL, [0.8, 0.8, 0.8], "rougeL");
  assertScore(scores.rougeLsum, [1, 1, 1], "rougeLsum");
});

Deno.test("rouge() counts a target token once in rougeLsum even if two sentences match it", () => {
  // Target "a a" (one sentence), prediction "a" and "a" (two sentences). The LCS of [a, a] with
  // [a] is read back from the end, so both prediction sentences pick target index 1; their
  // union is {1}: 1 hit. P = 1/2, R = 1/2, although rouge1 is 1.
  const scores = rouge("a a", "a\na");
  assertScore(scores.rouge1, [1, 1, 1], "rouge1");
  assertScore(scores.rougeLsum, [0.5, 0.5, 0.5], "rougeLsum");
});

Deno.test("rouge() reads back the same LCS as rouge_score when several exist", () => {
  // Target "a b", prediction sentences "b a" and "b". The LCS of [a, b] and [b, a] is a or b;
  // rouge_score's _backtrack_norec moves up on a tie and finds "a" (index 0), and "b" gives
  // index 1: union {0, 1}, 2 hits, P = 2/3, R = 1. Preferring to move left would find "b"
  // twice: 1 hit.
  assertScore(rouge("a b", "b a\nb").rougeLsum, [2 / 3, 1, 0.8], "rougeLsum");
});

Deno.test("rouge() handles no matches at all", () => {
  for (const score of Object.values(rouge("a b c", "d e f"))) {
    assert.deepEqual(score, { precision: 0, recall: 0, fmeasure: 0 });
  }
});

Deno.test("rouge() takes a custom tokenizer", () => {
  // Whitespace tokens: "Hello," and "world" vs "hello" and "world": 1 hit of 2.
  const scores = rouge("Hello, world", "hello world", {
    tokenizer: (text) => text.split(" "),
    useStemmer: true,
  });
  assertScore(scores.rouge1, [0.5, 0.5, 0.5], "rouge1");
});
