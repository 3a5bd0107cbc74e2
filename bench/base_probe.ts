/**
 * What a base model knows of the default run's tasks before any fine-tuning, in the corpus's own
 * wording rather than the tasks' templates (models/base/PRETRAIN.md records the figures):
 *
 * - sentiment: for each of the sentiment task's test reviews, whether the model finds " I was
 *   happy." or " I was sad." likelier after the review written as the corpus writes it
 *   ("The film was not good."), against the task's label;
 * - arithmetic: greedy continuations of the arithmetic task's test problems as the corpus's worked
 *   sums begin ("Work out 37 + 48:"), against the task's worked answer, exactly and by the result;
 * - comparisons: for pairs of numbers, whether " is more than" is likelier after the larger one.
 *
 *     XDG_RUNTIME_DIR=/tmp DENO_WEBGPU_BACKEND=vulkan deno run --config bench/deno.json \
 *       --allow-read=. bench/base_probe.ts [models/base]
 *
 * @module
 */

import { generate, Gpu, loadModelCheckpoint, loglikelihoods, suiteTask } from "../mod.ts";
import { modelFromCheckpoint, tokenizerFor } from "../cli/common.ts";
import { workedAnswer } from "../data/tasks/arithmetic.ts";
import { Rng } from "../runtime/rng.ts";
// The default suite (seed 0) cuts each task's test split from the start of this stream.
import { deriveSeed } from "../data/_hash.ts";

const dir = Deno.args[0] ?? "models/base";
const gpu = await Gpu.get();
const ckpt = await loadModelCheckpoint(dir);
const model = await modelFromCheckpoint(gpu, ckpt, { seed: 1, trainable: false });
const tok = await tokenizerFor(undefined, dir, model.shape.V);
const n = 100;

// Sentiment: the default run's test instances (their inputs and labels), in no template.
const reviews = suiteTask("sentiment").generate(deriveSeed(0, "sentiment"), n);
const sentence = (s: string) => s[0].toUpperCase() + s.slice(1) + ".";
const feelings = await loglikelihoods(
  model,
  tok,
  reviews.flatMap((r) => [
    { context: sentence(r.values.input), continuation: " I was happy." },
    { context: sentence(r.values.input), continuation: " I was sad." },
  ]),
);
const sentimentRight =
  reviews.filter((r, i) =>
    (feelings[2 * i].loglikelihood > feelings[2 * i + 1].loglikelihood) ===
      (r.answer === "positive")
  ).length;

// Arithmetic: the test problems, begun as a worked sum of the corpus.
const problems = suiteTask("arithmetic").generate(deriveSeed(0, "arithmetic"), n);
const prompts = problems.map((p) => `Work out ${p.values.a} ${p.values.op} ${p.values.b}:`);
const out = await generate(model, prompts.map((p) => tok.encode(p)), {
  maxNewTokens: 56,
  tokenizer: tok,
  stop: ["."],
});
let exact = 0, result = 0;
problems.forEach((p, i) => {
  const want = workedAnswer(+p.values.a, +p.values.b, p.values.op as "+" | "-");
  const got = out.text![i].trim();
  if (got === want) exact++;
  if (got.match(/so (\d+)$/)?.[1] === want.match(/so (\d+)$/)![1]) result++;
});

// Comparisons: which of " is more than" / " is less than" the model prefers after the larger of
// two different numbers, then the smaller.
const rng = new Rng(7);
const pairs = Array.from({ length: n }, () => {
  const a = rng.int(100);
  let b = rng.int(99);
  if (b >= a) b++;
  return [Math.max(a, b), Math.min(a, b)];
});
const cmp = await loglikelihoods(
  model,
  tok,
  pairs.flatMap(([big, small]) => [
    { context: `${big}`, continuation: ` is more than ${small}.` },
    { context: `${big}`, continuation: ` is less than ${small}.` },
  ]),
);
const compareRight = pairs.filter((_, i) => cmp[2 * i].loglikelihood > cmp[2 * i + 1].loglikelihood)
  .length;

console.log(`| probe (${n} each) | ${dir} |`);
console.log("| --- | ---: |");
console.log(`| sentiment: the review's feeling is the likelier | ${sentimentRight} |`);
console.log(`| arithmetic: worked answer exactly right | ${exact} |`);
console.log(`| arithmetic: result right | ${result} |`);
console.log(`| comparisons: "more than" after the larger | ${compareRight} |`);
model.release();
