import assert from "node:assert/strict";
import { corpusChrf } from "../../eval/mod.ts";
import { assertClose } from "./_close.ts";
import { README_REFS, README_SYS } from "./_sacrebleu_testdata.ts";

Deno.test("corpusChrf() reproduces sacreBLEU's README example", () => {
  // mjpost/sacrebleu README.md: CHRF().corpus_score(sys, refs) -> chrF2 = 59.73.
  const chrf = corpusChrf(README_SYS, README_REFS);
  assert.equal(chrf.formatted, "chrF2 = 59.73");
  assert.equal(chrf.signature, "nrefs:2|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0");
});

Deno.test("corpusChrf() matches sacreBLEU's epsilon-smoothing test cases", () => {
  // mjpost/sacrebleu test/test_chrf.py test_chrf: char_order 6, word_order 0, beta 3,
  // eps_smoothing True, tolerance 1e-4.
  const cases: [string[], string[], number][] = [
    [["abcdefg"], ["hijklmnop"], 0.0],
    [["a"], ["b"], 0.0],
    [[""], ["b"], 0.0],
    [[""], ["ref"], 0.0],
    [[""], ["reference"], 0.0],
    [["aa"], ["ab"], 8.3333],
    [["a", "b"], ["a", "c"], 8.3333],
    [["a"], ["a"], 16.6667],
    [["a b c"], ["a b c"], 50.0],
    [["a b c"], ["abc"], 50.0],
    [
      [" risk assessment must be made of those who are qualified and expertise in the sector - these are the scientists ."],
      ["risk assessment has to be undertaken by those who are qualified and expert in that area - that is the scientists ."],
      63.361730,
    ],
    [
      [" Die    Beziehung zwischen  Obama und Netanjahu ist nicht gerade  freundlich. "],
      ["Das Verhältnis zwischen Obama und Netanyahu ist nicht gerade freundschaftlich."],
      64.1302698,
    ],
    [
      ["Niemand hat die Absicht, eine Mauer zu errichten"],
      ["Niemand hat die Absicht, eine Mauer zu errichten"],
      100.0,
    ],
  ];
  for (const [hyps, refs, expected] of cases) {
    const chrf = corpusChrf(hyps, [refs], {
      charOrder: 6,
      wordOrder: 0,
      beta: 3,
      epsSmoothing: true,
    });
    assertClose(chrf.score, expected, 1e-4, JSON.stringify(hyps));
  }
});

Deno.test("corpusChrf() matches sacreBLEU's effective-order test cases", () => {
  // test/test_chrf.py test_chrf_eff_order: beta 3, eps_smoothing False (sacreBLEU's default).
  const cases: [string[], string[], number][] = [
    [["a"], ["a"], 100.0],
    [[""], ["reference"], 0.0],
    [["a b c"], ["a b c"], 100.0],
    [["a b c"], ["abc"], 100.0],
    [[""], ["c"], 0.0],
    [["a", "b"], ["a", "c"], 50.0],
    [["aa"], ["ab"], 25.0],
  ];
  for (const [hyps, refs, expected] of cases) {
    assertClose(corpusChrf(hyps, [refs], { beta: 3 }).score, expected, 1e-4, JSON.stringify(hyps));
  }
});

Deno.test("corpusChrf() matches sacreBLEU's keep-whitespace test cases", () => {
  // test/test_chrf.py test_chrf_keep_whitespace: beta 3, remove_whitespace False.
  const cases: [string, string, number][] = [
    [
      "Die Beziehung zwischen Obama und Netanjahu ist nicht gerade freundlich.",
      "Das Verhältnis zwischen Obama und Netanyahu ist nicht gerade freundschaftlich.",
      67.3481606,
    ],
    [
      "risk assessment must be made of those who are qualified and expertise in the sector - these are the scientists .",
      "risk assessment has to be undertaken by those who are qualified and expert in that area - that is the scientists .",
      65.2414427,
    ],
  ];
  for (const [hyp, ref, expected] of cases) {
    const chrf = corpusChrf([hyp], [[ref]], { beta: 3, whitespace: true });
    assertClose(chrf.score, expected, 1e-4, hyp);
    assert.ok(chrf.signature.includes("|space:yes|"));
  }
});

Deno.test("corpusChrf() computes chrF++ with word n-grams", () => {
  // Hand-worked with charOrder 1, wordOrder 2: "the cat." vs "the dog.". Characters without
  // spaces: t h e c a t . vs t h e d o g . -> 4 of 7 match (t once, h, e, .). Words with the
  // final "." split off: [the, cat, .] vs [the, dog, .] -> 2 of 3; bigrams "the cat", "cat ."
  // vs "the dog", "dog ." -> 0 of 2. Precision = recall = (4/7 + 2/3 + 0) / 3 = 26/63, so
  // F = 26/63.
  const chrf = corpusChrf(["the cat."], [["the dog."]], { charOrder: 1, wordOrder: 2 });
  assertClose(chrf.score, 100 * 26 / 63, 1e-12, "chrF++");
  assert.equal(chrf.formatted, "chrF2++ = 41.27");
  assert.equal(chrf.signature, "nrefs:1|case:mixed|eff:yes|nc:1|nw:2|space:no|version:2.6.0");
});

Deno.test("corpusChrf() lowercases only when asked", () => {
  assert.equal(corpusChrf(["ABC"], [["abc"]]).score, 0);
  const lower = corpusChrf(["ABC"], [["abc"]], { lowercase: true });
  assert.equal(lower.score, 100);
  assert.ok(lower.signature.includes("|case:lc|"));
});

Deno.test("corpusChrf() rejects a segment without references", () => {
  assert.throws(
    () => corpusChrf(["a"], [[null], [undefined]]),
    /Cannot compute chrF: segment 0 has no reference/,
  );
  assert.throws(() => corpusChrf(["a"], [["a"]], { charOrder: 0, wordOrder: 0 }), /at least 1/);
});

Deno.test("corpusChrf() keeps an empty reference as sacreBLEU 2.6 (issue 15 regression)", () => {
  // sacreBLEU 2.6 keeps "" as a reference (Metric._cache_references drops only None). Against
  // "", CHRF._get_match_statistics gives [0, 0, 0] for every order (the hypothesis count is
  // recorded as 0 where the reference has no n-gram of that order), so the F-score is 0.
  const alone = corpusChrf(["abc"], [[""]]);
  assert.equal(alone.formatted, "chrF2 = 0.00");
  assert.equal(alone.signature, "nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0");
  // Where "" and another reference tie at F = 0, _compute_segment_statistics keeps the first
  // (strictly greater F replaces it), so segment 0 contributes all zeros, not "xyz"'s
  // [3, 3, 0, 2, 2, 0, 1, 1, 0, …]. Segment 1 matches fully: [3, 3, 3, 2, 2, 2, 1, 1, 1, 0, …].
  // Summed with "" kept: precision = recall = 1, chrF 100. Dropping "" would sum to
  // [6, 6, 3, 4, 4, 2, 2, 2, 1, …]: precision = recall = 1/2, chrF 50.
  const tie = corpusChrf(["abc", "abc"], [["", "abc"], ["xyz", "abc"]]);
  assert.equal(tie.score, 100);
  assert.equal(tie.signature, "nrefs:2|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0");
});
