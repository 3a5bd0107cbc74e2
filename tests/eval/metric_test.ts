import assert from "node:assert/strict";
import {
  corpusBleu,
  corpusChrf,
  generationScores,
  mainMetricName,
  type Metric,
  METRIC_NAMES,
  metricByName,
  METRICS,
  rougeCorpus,
  scoreCorpus,
  scoreLine,
  sumStatistics,
  tokenF1,
} from "../../mod.ts";
import { assertClose } from "./_close.ts";
import { lengthRatio } from "./_toy_metric.ts";
import { README_REFS, README_SYS } from "./_sacrebleu_testdata.ts";

const PREDICTIONS = ["the cat sat", "A dog.", ""];
const REFERENCES = [["the cat sat on the mat", "a cat"], ["a dog"], ["", "x"]];

/** What every metric promises, whether it is in the table or not. */
function checkContract(metric: Metric, key: string): void {
  assert.match(metric.name, /^[a-z][a-z0-9_]*$/, `${key}: snake_case name`);
  assert.equal(metric.name, key, `${key}: its table key is its name`);
  assert.ok(metric.displayName.length > 0 && metric.description.length > 0, key);
  assert.equal(metric.scale, 100, `${key}: every metric reports 0-100`);
  assert.equal(typeof metric.higherIsBetter, "boolean", key);
  const r = scoreCorpus(metric, PREDICTIONS, REFERENCES);
  assert.equal(r.statistics.length, PREDICTIONS.length, key);
  assert.ok(r.statistics.every((s) => s.length === r.statistics[0].length), key);
  assert.equal(r.parts[metric.mainPart], r.score, `${key}: the score is its main part`);
  for (const [part, value] of Object.entries(r.parts)) {
    assert.ok(value >= 0 && value <= metric.scale, `${key}.${part} = ${value} outside 0-100`);
  }
  assert.ok(r.formatted.startsWith(`${metric.displayName} = `), `${key}: ${r.formatted}`);
  assert.ok(r.signature.startsWith("nrefs:var|"), `${key}: ${r.signature}`);
  // Summing and scoring gives the score aggregate reports (aggregate only adds to it).
  assert.equal(metric.score(sumStatistics(r.statistics)).score, r.score, key);
  if (metric.correct) {
    const right = r.statistics.map((s) => metric.correct!(s));
    assert.equal(100 * right.filter(Boolean).length / right.length, r.score, key);
  }
}

Deno.test("every metric of the table keeps the Metric contract, and so does one outside it", () => {
  assert.deepEqual(METRIC_NAMES, Object.keys(METRICS));
  for (const name of METRIC_NAMES) checkContract(METRICS[name], name);
  checkContract(lengthRatio, "length_ratio");
  assert.throws(
    () => metricByName("meteor"),
    /Cannot find metric "meteor": the metrics are rouge, bleu, chrf, exact_match, token_f1/,
  );
});

Deno.test("the table's BLEU, chrF, ROUGE and token F1 equal the functions they wrap", () => {
  // sacreBLEU's README example, streams regrouped per sentence.
  const perSentence = README_SYS.map((_, i) => README_REFS.map((stream) => stream[i]));
  const bleu = scoreCorpus(METRICS.bleu, README_SYS, perSentence);
  const direct = corpusBleu(README_SYS, README_REFS);
  assert.equal(bleu.score, direct.score);
  assert.equal(
    scoreLine(bleu.formatted, bleu.signature),
    `BLEU|${direct.signature} = 48.53 ` +
      "82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)",
  );
  const lc = scoreCorpus(METRICS.bleu, README_SYS, perSentence, {
    lowercase: true,
    tokenize: "none",
  });
  assert.equal(
    lc.score,
    corpusBleu(README_SYS, README_REFS, { lowercase: true, tokenize: "none" }).score,
  );
  assert.equal(lc.signature, "nrefs:2|case:lc|eff:no|tok:none|smooth:exp|version:2.6.0");
  const chrf = scoreCorpus(METRICS.chrf, README_SYS, perSentence);
  assert.equal(chrf.formatted, "chrF2 = 59.73");
  assert.equal(chrf.score, corpusChrf(README_SYS, README_REFS).score);
  // ROUGE: the mean of rouge_score's per-example F1 × 100, and the bootstrap of rougeCorpus.
  const rouge = scoreCorpus(METRICS.rouge, PREDICTIONS, REFERENCES, { stem: true });
  const corpus = rougeCorpus(REFERENCES, PREDICTIONS, { useStemmer: true });
  for (const type of ["rouge1", "rouge2", "rougeL", "rougeLsum"]) {
    // 100 · sum / n here, 100 · (sum / n) there: equal to rounding.
    assertClose(rouge.parts[type], 100 * corpus[type].mean.fmeasure, 1e-12, type);
    assert.deepEqual(rouge.details?.[type], corpus[type], type);
  }
  assert.equal(rouge.signature, "nrefs:var|stem:yes|impl:rouge_score-0.1.2");
  let f1 = 0;
  PREDICTIONS.forEach((p, i) => f1 += tokenF1(p, REFERENCES[i]));
  assert.equal(scoreCorpus(METRICS.token_f1, PREDICTIONS, REFERENCES).score, 100 * f1 / 3);
});

Deno.test("scoreCorpus() names the metric and the example it cannot score", () => {
  assert.throws(
    () => scoreCorpus(METRICS.bleu, ["a"], []),
    /Cannot score bleu: 1 predictions but 0/,
  );
  assert.throws(() => scoreCorpus(METRICS.bleu, [], []), /Cannot score bleu: no predictions/);
  assert.throws(
    () => scoreCorpus(METRICS.rouge, ["a", "b"], [["a"], []]),
    /Cannot score rouge: example 1 has no reference/,
  );
  assert.throws(() => scoreLine("no equals sign", "nrefs:1"), /has no " = "/);
});

Deno.test("a metric outside the table runs through the harness's scoring path by object", () => {
  const targets = [["4"], ["five"], ["6"]];
  const outputs = ["4", "5", "6 "];
  const s = generationScores([lengthRatio, "exact_match"], outputs, targets);
  // Lengths 1 + 1 + 2 over 1 + 4 + 1: 4/6.
  assert.equal(s.metrics.length_ratio, 100 * 4 / 6);
  assert.equal(s.metrics.exact_match, 100 * 2 / 3);
  assert.deepEqual(s.correct, [true, false, true], "from exact_match, the right-or-wrong one");
  assert.deepEqual(s.signatures, {
    length_ratio: "nrefs:1|unit:codepoint",
    exact_match: "nrefs:1|norm:trim",
  });
  assert.equal(mainMetricName(lengthRatio), "length_ratio");
  assert.equal(mainMetricName("rouge"), "rougeL");
});
