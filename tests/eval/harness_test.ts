import assert from "node:assert/strict";
import {
  applyStopSequences,
  type BenchmarkTask,
  buildContext,
  buildSuite,
  ByteTokenizer,
  evaluateHelm,
  evaluateSuite,
  evaluateTask,
  generate,
  generateTexts,
  GPT,
  type GPTConfig,
  gptConfig,
  groupAccuracy,
  loglikelihoods,
  METRICS,
  mmluTask,
  multipleChoiceScores,
  readMmluCsv,
  type RunStats,
  scoreCorpus,
  type SuiteScore,
  textPerplexity,
} from "../../mod.ts";
import { gpt2ParameterShapes } from "../../models/checkpoint.ts";
import { assertClose, gpu } from "../helpers.ts";
import { gpt2Ref, type Weights } from "../ref/gpt2.ts";
import { randomWeights } from "../models/_fixtures.ts";
import { lengthRatio } from "./_toy_metric.ts";
import abstractAlgebraTest from "./fixtures/abstract_algebra_test.csv" with { type: "text" };
import anatomyTest from "./fixtures/anatomy_test.csv" with { type: "text" };

// Byte vocabulary (the ByteTokenizer's ids), dimensions that are not multiples of any tile size,
// and a short context so that truncation and windows are exercised.
const CFG: GPTConfig = gptConfig("tiny", { n_positions: 20, n_embd: 24, n_layer: 2, n_head: 3 });
const tok = new ByteTokenizer();

async function model(cfg = CFG, seed = 3): Promise<{ model: GPT; w: Weights }> {
  const w = randomWeights(cfg, seed);
  const shapes = gpt2ParameterShapes(cfg);
  const weights = new Map(
    [...w].map(([k, v]) => [k, { shape: shapes.get(k)!, data: Float32Array.from(v) }]),
  );
  return { model: await GPT.create(await gpu(), cfg, { weights, trainable: false }), w };
}

/** log p(ids[start..] | ids[..start]) under the float64 reference model. */
function refLoglikelihood(w: Weights, ids: number[], start: number): number {
  const T = ids.length, V = CFG.vocab_size;
  const { logits } = gpt2Ref(CFG, w, ids, ids.map(() => -100), 1, T);
  let ll = 0;
  for (let t = start; t < T; t++) {
    const row = logits.subarray((t - 1) * V, t * V);
    let max = -Infinity;
    for (const z of row) max = Math.max(max, z);
    let sum = 0;
    for (const z of row) sum += Math.exp(z - max);
    ll += row[ids[t]] - max - Math.log(sum);
  }
  return ll;
}

const bytes = (s: string) => [...new TextEncoder().encode(s)];

Deno.test("`loglikelihoods()` equals the float64 reference's summed log-probabilities, batched and right-padded", async () => {
  const { model: m, w } = await model();
  const requests = [
    { context: "Hello", continuation: " world" },
    // Trailing whitespace moves to the continuation (lm-evaluation-harness), so " yes" is scored.
    { context: "Q: ", continuation: "yes" },
    // 30 + 3 bytes do not fit 20 positions: the 13 oldest context bytes are dropped.
    { context: "abcdefghijklmnopqrstuvwxyz0123", continuation: "XYZ" },
    { context: "a", continuation: "b" },
    { context: "long context here", continuation: "!" },
  ];
  const expected = [
    { ids: bytes("Hello world"), start: 5 },
    { ids: bytes("Q: yes"), start: 2 },
    { ids: bytes("nopqrstuvwxyz0123XYZ"), start: 17 },
    { ids: bytes("ab"), start: 1 },
    { ids: bytes("long context here!"), start: 17 },
  ];
  const stats: RunStats = { tokens: 0, seconds: 0 };
  const waits0 = m.gpu.stats.waits;
  // batchSize 2: three forwards of (2,20), (2,11)… sorted by length, each padded on the right.
  const got = await loglikelihoods(m, tok, requests, { batchSize: 2, stats });
  assert.equal(m.gpu.stats.waits - waits0, 3, "one GPU wait per batch");
  assert.deepEqual(got.map((r) => r.tokens), [6, 4, 3, 1, 1]);
  assert.deepEqual(got.map((r) => r.truncated), [0, 0, 13, 0, 0]);
  assert.equal(stats.tokens, 11 + 6 + 20 + 2 + 18, "real tokens, no padding");
  // f32 logits are within ~1e-5 of the float64 ones (tests/models/gpt_test.ts); a log-softmax adds
  // the same order per token, so the sum over ≤ 6 tokens is within 1e-4 per token.
  const want = expected.map((e) => refLoglikelihood(w, e.ids, e.start));
  assertClose(
    got.map((r) => r.loglikelihood),
    want,
    { rtol: 0, atol: 6e-4 },
    "log-likelihoods",
  );
  // Each one alone (no padding, no neighbours) agrees with the batched run.
  const alone = await loglikelihoods(m, tok, requests, { batchSize: 1 });
  assertClose(alone.map((r) => r.loglikelihood), got.map((r) => r.loglikelihood), {
    rtol: 0,
    atol: 1e-4,
  }, "batch size 1 vs 2");
  m.release();
});

Deno.test("`loglikelihoods()` rejects an empty continuation, one that fills the context, and an empty context without end-of-text", async () => {
  const { model: m } = await model();
  await assert.rejects(
    () => loglikelihoods(m, tok, [{ context: "a", continuation: "" }]),
    /request 0: its continuation is empty/,
  );
  await assert.rejects(
    () => loglikelihoods(m, tok, [{ context: "a", continuation: "x".repeat(20) }]),
    /continuation has 20 tokens; the model's context holds 20/,
  );
  await assert.rejects(
    () => loglikelihoods(m, tok, [{ context: "", continuation: "x" }]),
    /context is empty and tokenizer "bytes" has no end-of-text id/,
  );
  // With an end-of-text id, it stands in for the empty context.
  const eos = new ByteTokenizer({ eosId: 0 });
  const [a] = await loglikelihoods(m, eos, [{ context: "", continuation: "hi" }]);
  const [b] = await loglikelihoods(m, eos, [{ context: "\0", continuation: "hi" }]);
  assert.equal(a.loglikelihood, b.loglikelihood);
  m.release();
});

Deno.test("`multipleChoiceScores()` acc and acc_norm differ when a long choice is less likely in total but more per character", () => {
  const docs = [
    // " no" (3 chars) -2.0 vs " certainly" (10 chars) -3.0: acc picks " no" (wrong), acc_norm
    // compares -0.667 with -0.3 and picks " certainly" (right).
    { prompt: "Q1", choices: [" no", " certainly"], gold: 1 },
    // Both agree here (and are right): -1 vs -5 over the same lengths.
    { prompt: "Q2", choices: [" a", " b"], gold: 0 },
    // A tie goes to the first choice, as numpy's argmax; BIG-bench scores give partial credit.
    { prompt: "Q3", choices: [" x", " y", " z"], gold: 2, choiceScores: [0.5, 0, 1] },
  ];
  const s = multipleChoiceScores(docs, [[-2, -3], [-1, -5], [-4, -4, -4]]);
  assert.deepEqual(s.predictions, [0, 0, 0]);
  assert.deepEqual(s.correct, [false, true, false]);
  assert.equal(s.metrics.acc, 100 / 3);
  assert.equal(s.metrics.acc_norm, 200 / 3);
  // multiple_choice_grade: 0 + 1 + 0.5 (choice 0 of Q3 scores 0.5), over 3.
  assert.equal(s.metrics.multiple_choice_grade, 50);
  // Confidence: softmax probability of the chosen choice.
  assert.ok(Math.abs(s.confidences[0] - 1 / (1 + Math.exp(-1))) < 1e-15);
  assert.ok(Math.abs(s.confidences[2] - 1 / 3) < 1e-15);
  assert.throws(() => multipleChoiceScores(docs, [[-1, -2]]), /3 documents but 1 sets/);
});

Deno.test("`groupAccuracy()` gives per-group, size-weighted (micro) and macro averages", () => {
  const g = groupAccuracy(["x", "y", "x", "x", "y"], [true, false, true, false, true]);
  assert.deepEqual(g.groups, { x: { n: 3, acc: 200 / 3 }, y: { n: 2, acc: 50 } });
  assert.equal(g.micro, 60);
  assert.equal(g.macro, (200 / 3 + 50) / 2);
});

Deno.test("`buildContext()` draws k-shot examples deterministically by seed, never the document itself", () => {
  const docs = Array.from({ length: 12 }, (_, i) => ({ prompt: `q${i}=`, targets: [`a${i}`] }));
  const task: BenchmarkTask = { name: "t", kind: "generate", docs, fewShotSeparator: " | " };
  const a = buildContext(task, 4, { shots: 3, seed: 11 });
  assert.equal(a, buildContext(task, 4, { shots: 3, seed: 11 }), "same seed, same prompt");
  const seeds = new Set(
    [11, 12, 13, 14, 15].map((seed) => buildContext(task, 4, { shots: 3, seed })),
  );
  assert.ok(seeds.size > 1, "other seeds draw other examples");
  const parts = a.split(" | ");
  assert.equal(parts.length, 4);
  assert.equal(parts[3], "q4=");
  assert.equal(new Set(parts.slice(0, 3)).size, 3, "without replacement");
  for (const p of parts.slice(0, 3)) {
    const [, i] = /^q(\d+)=a(\d+)$/.exec(p)!;
    assert.notEqual(i, "4", "the scored document is not its own example");
    assert.equal(p, `q${i}=a${i}`, "each example shows its own answer");
  }
  // A document's prompt does not depend on which other documents are scored.
  const few = { ...task, docs: docs.slice(0, 5), fewShotDocs: docs };
  assert.equal(buildContext(few, 4, { shots: 3, seed: 11 }), a);
  assert.equal(buildContext({ ...task, description: "D: " }, 0), "D: q0=");
  assert.throws(() => buildContext(task, 0, { shots: 12 }), /only 11 examples to draw from/);
});

Deno.test("`applyStopSequences()` cuts at the earliest stop, optionally after leading whitespace", () => {
  assert.equal(applyStopSequences("abc\ndef", ["\n"]), "abc");
  assert.equal(applyStopSequences("ab.cd\nx", ["\n", "."]), "ab");
  assert.equal(
    applyStopSequences("\n\n lamp\nQ:", ["\n"], { afterLeadingWhitespace: true }),
    "\n\n lamp",
  );
  assert.equal(applyStopSequences("  ", ["\n"], { afterLeadingWhitespace: true }), "  ");
  assert.equal(applyStopSequences("none", ["\n"]), "none");
});

Deno.test("`evaluateTask()` scores MMLU by per-choice log-likelihoods, with per-subject and averaged accuracy", async () => {
  const cfg = gptConfig("tiny", { n_positions: 128, n_embd: 24, n_layer: 2, n_head: 3 });
  const { model: m } = await model(cfg, 5);
  const test = [
    ...readMmluCsv(abstractAlgebraTest, { file: "abstract_algebra_test.csv" }),
    ...readMmluCsv(anatomyTest, { file: "anatomy_test.csv" }),
  ];
  const task = mmluTask(test);
  const result = await evaluateTask(m, tok, task, { batchSize: 5 });
  // The same requests scored directly.
  const lls = await loglikelihoods(
    m,
    tok,
    test.flatMap((d, i) =>
      d.choices!.map((c) => ({ context: buildContext(task, i), continuation: c }))
    ),
  );
  const perDoc = test.map((_, i) => lls.slice(4 * i, 4 * i + 4).map((r) => r.loglikelihood));
  const direct = multipleChoiceScores(test, perDoc);
  assert.deepEqual(result.predictions, direct.predictions);
  assert.equal(result.metrics.acc, direct.metrics.acc);
  assert.equal(result.metrics.acc_norm, direct.metrics.acc_norm);
  assert.equal(result.mainMetric, "acc");
  assert.equal(result.score, result.metrics.acc);
  const g = groupAccuracy(test.map((d) => d.group!), direct.correct);
  assert.deepEqual(result.groups, g.groups);
  assert.deepEqual(Object.keys(result.groups!), ["abstract_algebra", "anatomy"]);
  assert.equal(result.metrics.acc_macro, g.macro);
  assert.equal(result.n, 4);
  assert.ok(result.tokens > 0 && result.seconds > 0);
  m.release();
});

Deno.test("`generateTexts()` returns generate()'s greedy texts, cut at stop sequences", async () => {
  const { model: m } = await model(CFG, 9);
  const prompts = ["ab", "hello th", "x"];
  const raw = await generateTexts(m, tok, prompts, { maxNewTokens: 8, batchSize: 2 });
  const direct = await generate(m, prompts.map(bytes), { maxNewTokens: 8, tokenizer: tok });
  assert.deepEqual(raw, direct.text, "same texts, whatever the batching");
  // A stop string taken from the outputs themselves, so that it does cut somewhere.
  const ascii = raw.join("").match(/[!-~]/);
  assert.ok(ascii, `the outputs hold a printable ASCII character: ${JSON.stringify(raw)}`);
  const stop = ascii[0];
  const cut = await generateTexts(m, tok, prompts, { maxNewTokens: 8, stop: [stop] });
  assert.deepEqual(cut, raw.map((t) => applyStopSequences(t, [stop])));
  assert.ok(cut.some((t, i) => t !== raw[i]), "the stop sequence cut a text");
  const after = await generateTexts(m, tok, prompts, {
    maxNewTokens: 8,
    stop: [stop],
    stopAfterContent: true,
  });
  assert.deepEqual(
    after,
    raw.map((t) => applyStopSequences(t, [stop], { afterLeadingWhitespace: true })),
  );
  m.release();
});

Deno.test("`evaluateSuite()` scores each suite task by its metric on a 0–100 scale", async () => {
  const cfg = gptConfig("tiny", { n_positions: 128, n_embd: 24, n_layer: 2, n_head: 3 });
  const { model: m } = await model(cfg, 2);
  const suite = buildSuite({ seed: 4, sizes: { train: 0, dev: 2, test: 3 } });
  const scores = await evaluateSuite(m, tok, suite);
  assert.deepEqual(scores.map((s) => s.task), suite.map((s) => s.task.name));
  const by = Object.fromEntries(scores.map((s) => [s.task, s]));
  assert.equal(by.multiple_choice.result.kind, "multiple_choice");
  assert.equal(by.sentiment.result.kind, "multiple_choice", "classification by log-likelihood");
  assert.equal(by.summarise.result.mainMetric, "rougeL");
  assert.equal(by.translate.result.mainMetric, "bleu");
  assert.equal(by.arithmetic.result.mainMetric, "exact_match");
  assert.deepEqual(scores.filter((s) => s.heldOut).map((s) => s.task), [
    "reverse_words",
    "uppercase",
    "count_words",
  ]);
  for (const s of scores) {
    assert.ok(s.score >= 0 && s.score <= 100, `${s.task}: ${s.score}`);
    assert.equal(s.score, s.result.metrics[s.result.mainMetric]);
    assert.equal(s.result.n, 3);
    if (s.result.kind === "generate") {
      for (const p of s.result.predictions as string[]) {
        assert.equal(p, p.trim());
        assert.ok(!p.includes("\n"), `one line: ${JSON.stringify(p)}`);
      }
    }
  }
  const generated = await evaluateSuite(m, tok, suite.filter((s) => s.task.name === "sentiment"), {
    classification: "generate",
  });
  assert.equal(generated[0].result.kind, "generate");
  assert.equal(generated[0].result.mainMetric, "accuracy");
  // maxNewTokens caps every generation task (the job's eval.max_new_tokens), which alone would
  // generate up to its longest answer plus 8 tokens: a byte gives at most one character.
  const longest = (r: SuiteScore[]) =>
    Math.max(...r.flatMap((s) => (s.result.predictions as string[]).map((p) => [...p].length)));
  const words = suite.filter((s) => s.task.name === "uppercase");
  assert.ok(longest(await evaluateSuite(m, tok, words)) > 3);
  assert.ok(longest(await evaluateSuite(m, tok, words, { maxNewTokens: 3 })) <= 3);
  m.release();
});

Deno.test("`textPerplexity()` equals exp of the float64 reference's mean loss over context-sized windows", async () => {
  const { model: m, w } = await model();
  const text = "hello world, this is a test of windows";
  const ids = bytes(text);
  assert.equal(ids.length, 38);
  const p = await textPerplexity(m, tok, [text, "z"], { batchSize: 1 });
  // Windows [0, 20) and [20, 38): 19 + 17 tokens scored; "z" alone has nothing to predict.
  assert.equal(p.tokens, 36);
  const w1 = ids.slice(0, 20), w2 = ids.slice(20);
  const l1 = gpt2Ref(CFG, w, w1, w1, 1, 20).loss, l2 = gpt2Ref(CFG, w, w2, w2, 1, 18).loss;
  const want = Math.exp((19 * l1 + 17 * l2) / 36);
  // The mean loss is within ~1e-5 (as the model's loss in tests/models/gpt_test.ts).
  assert.ok(Math.abs(p.perplexity - want) < 1e-4 * want, `${p.perplexity} vs ${want}`);
  // With an end-of-text id in front, the first token is scored too.
  const withEos = await textPerplexity(m, new ByteTokenizer({ eosId: 0 }), [text]);
  assert.equal(withEos.tokens, 37);
  await assert.rejects(() => textPerplexity(m, tok, ["a"]), /fewer than two tokens/);
  m.release();
});

Deno.test("`evaluateHelm()` reports clean accuracy, calibration, each perturbation and tokens/s", async () => {
  const cfg = gptConfig("tiny", { n_positions: 64, n_embd: 24, n_layer: 2, n_head: 3 });
  const { model: m } = await model(cfg, 6);
  const task: BenchmarkTask = {
    name: "yes_no",
    kind: "multiple_choice",
    docs: ["Is fire hot?", "Is ice hot?", "Is snow cold?"].map((q, i) => ({
      prompt: `Q: ${q}\nA:`,
      input: q,
      choices: [" yes", " no"],
      gold: i === 1 ? 1 : 0,
    })),
  };
  const report = await evaluateHelm(m, tok, [task]);
  const clean = await evaluateTask(m, tok, task);
  const [row] = report.tasks;
  assert.deepEqual(report.perturbations, ["typos", "lowercase", "uppercase"]);
  assert.equal(row.accuracy, clean.score);
  assert.ok(
    row.calibrationError !== null && row.calibrationError >= 0 && row.calibrationError <= 1,
  );
  assert.ok(row.tokensPerSecond > 0);
  assert.equal(row.robustness, Math.min(row.accuracy, ...Object.values(row.perturbed)));
  m.release();
});

Deno.test("`evaluateTask()` scores a generation task with a metric outside the table", async () => {
  const { model: m } = await model();
  try {
    const task = {
      name: "toy",
      kind: "generate" as const,
      docs: [{ prompt: "1+1=", targets: ["2"] }, { prompt: "2+2=", targets: ["4", "four"] }],
      metrics: [lengthRatio, "bleu"] as const,
      maxNewTokens: 3,
    };
    const result = await evaluateTask(m, tok, task);
    // The first metric is the score; each metric's figure is scoreCorpus's on the predictions.
    assert.equal(result.mainMetric, "length_ratio");
    const predictions = result.predictions as string[];
    const targets = task.docs.map((d) => d.targets);
    assert.equal(result.score, scoreCorpus(lengthRatio, predictions, targets).score);
    assert.equal(result.metrics.bleu, scoreCorpus(METRICS.bleu, predictions, targets).score);
    assert.deepEqual(result.signatures, {
      length_ratio: "nrefs:var|unit:codepoint",
      bleu: "nrefs:var|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0",
    });
    assert.equal(result.correct, undefined, "neither metric is right-or-wrong");
  } finally {
    m.release();
  }
});

Deno.test("`evaluateTask()` counts the prompts cut to fit the context and by how much", async () => {
  const { model: m } = await model(); // 20 positions, one byte a token
  try {
    const long = "x".repeat(30) + "?"; // 31 tokens
    const mc = await evaluateTask(m, tok, {
      name: "long_mc",
      kind: "multiple_choice",
      docs: [
        { prompt: long, choices: [" a", " bb"], gold: 0 },
        { prompt: "hi?", choices: [" a", " bb"], gold: 1 },
      ],
    });
    // 31 + 2 and 31 + 3 tokens in 20 positions: 13 and 14 cut; a document counts its most-cut
    // choice. The short one fits.
    assert.deepEqual(mc.truncation, { documents: 1, maxTokens: 14, tokens: 14 });
    const gen = await evaluateTask(m, tok, {
      name: "long_gen",
      kind: "generate",
      docs: [{ prompt: long, targets: ["y"] }, { prompt: long + long, targets: ["y"] }],
      maxNewTokens: 3,
    });
    // 20 positions less 3 for new tokens leave 17 for the prompt: 31 - 17 and 62 - 17 cut.
    assert.deepEqual(gen.truncation, { documents: 2, maxTokens: 45, tokens: 14 + 45 });
  } finally {
    m.release();
  }
});
