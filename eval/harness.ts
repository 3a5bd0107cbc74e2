/**
 * The benchmark harness: the one part of eval/ that runs a model. It scores
 * {@linkcode BenchmarkTask}s (multiple choice by the summed log-likelihood of each choice,
 * generation tasks by greedy generation and the eval/ metrics), the embedded suite, and the
 * perplexity of general text, and measures tokens per second.
 *
 * - Log-likelihoods: each (context, continuation) pair is one sequence; the labels are −100 on the
 *   context and the continuation's ids on the continuation, so the model's per-position losses
 *   over the continuation sum to −log p(continuation | context). Sequences are sorted by length
 *   (longest first, as lm-evaluation-harness does) and run many at a time as one (B,T) forward,
 *   right-padded; one GPU wait per batch.
 * - Generation: {@linkcode generate} (greedy, KV cache) over many prompts at once, sorted by
 *   length; one GPU wait per new token per batch.
 * - Every score is on a 0–100 scale (accuracy in percent, BLEU as sacreBLEU prints it, ROUGE F1
 *   × 100).
 *
 * @module
 */

import type { SuiteTaskData } from "../data/suite.ts";
import type { TaskMetric } from "../data/task.ts";
import { generate } from "../models/generate.ts";
import type { Decoder } from "../models/decoder.ts";
import { predictorPosition } from "../models/scoring.ts";
import type { Tokenizer } from "../models/tokenizer.ts";
import {
  applyStopSequences,
  generationScores,
  groupAccuracy,
  mainMetricName,
  multipleChoiceScores,
} from "./harness/score.ts";
import {
  type BenchmarkTask,
  buildContext,
  type FewShotOptions,
  type SuiteBenchmarkOptions,
  suiteBenchmarkTask,
} from "./harness/task.ts";
import {
  DEFAULT_PERTURBATIONS,
  type HelmReport,
  helmReport,
  type HelmTaskInput,
  type Perturbation,
  perturbTask,
} from "./helm.ts";
import { perplexity } from "./perplexity.ts";

export * from "./harness/score.ts";
export * from "./harness/task.ts";

/** Counters that the harness adds to as it runs (pass one object to several calls to total them). */
export interface RunStats {
  /** Real tokens the model processed: scored sequences, prompts and generated tokens (no padding). */
  tokens: number;
  /** Wall-clock seconds spent running the model (including reading results back). */
  seconds: number;
}

/** How the harness batches its work. */
export interface RunOptions {
  /** Most sequences in one forward or one generation batch. Default 32. */
  batchSize?: number;
  /** Most tokens (B·T, padding included) in one log-likelihood forward. Default 8192. */
  maxBatchTokens?: number;
  /** Counters to add to. */
  stats?: RunStats;
}

/** One multiple-choice request: how likely is `continuation` after `context`? */
export interface LoglikelihoodRequest {
  /** The text before; may be empty when the tokenizer has an end-of-text id (used as context). */
  context: string;
  /** The text scored; must not be empty. */
  continuation: string;
}

/** The answer to a {@linkcode LoglikelihoodRequest}. */
export interface LoglikelihoodResult {
  /** Natural-log likelihood of the continuation's tokens, summed. */
  loglikelihood: number;
  /** Number of continuation tokens scored. */
  tokens: number;
  /** Context tokens dropped from the left to fit the model's context. */
  truncated: number;
}

/** A token sequence whose tokens from `start` on are scored. */
interface Scored {
  ids: number[];
  start: number;
}

function contextRoom(model: Decoder): number {
  return model.shape.maxPositions - (model.virtual?.n ?? 0);
}

/**
 * Per-token losses (−log p of each token given those before it) of `seqs[i].ids` from `start` on,
 * for many sequences at once: sorted by length, batched into (B,T) forwards.
 */
async function tokenLosses(
  model: Decoder,
  seqs: readonly Scored[],
  options: RunOptions,
): Promise<Float32Array[]> {
  const n = model.virtual?.n ?? 0;
  const batchSize = options.batchSize ?? 32;
  // The forward with labels computes only the losses (over vocabulary chunks where the (B·T, V)
  // logits would be large), so the logits do not cap the batch.
  const tokenCap = options.maxBatchTokens ?? 8192;
  const order = seqs.map((_, i) => i).sort((a, b) =>
    seqs[b].ids.length - seqs[a].ids.length || a - b
  );
  const out = new Array<Float32Array>(seqs.length);
  const t0 = performance.now();
  for (let at = 0; at < order.length;) {
    const T = seqs[order[at]].ids.length;
    if (T + n > tokenCap) {
      throw new RangeError(
        `Cannot score a sequence of ${T} tokens: its ${
          T + n
        } positions exceed the batch limit of ${tokenCap} positions (maxBatchTokens)`,
      );
    }
    const B = Math.max(1, Math.min(batchSize, Math.floor(tokenCap / (T + n)), order.length - at));
    const rows = order.slice(at, at + B);
    at += B;
    const ids = new Array<number>(B * T).fill(0);
    const labels = new Array<number>(B * T).fill(-100);
    rows.forEach((s, r) => {
      const seq = seqs[s];
      seq.ids.forEach((id, t) => {
        ids[r * T + t] = id;
        if (t >= seq.start) labels[r * T + t] = id;
      });
    });
    const acts = model.activations(B, T);
    try {
      const batch = model.gpu.batch();
      model.forward(batch, acts, { ids, labels });
      await batch.submit();
      const [losses] = await model.gpu.read([acts.losses]);
      rows.forEach((s, r) => {
        const seq = seqs[s];
        const from = r * acts.T + predictorPosition(model.scoring, seq.start);
        out[s] = losses.slice(from, from + seq.ids.length - seq.start);
      });
    } finally {
      acts.release();
    }
    if (options.stats) options.stats.tokens += rows.reduce((a, s) => a + seqs[s].ids.length, 0);
  }
  if (options.stats) options.stats.seconds += (performance.now() - t0) / 1000;
  return out;
}

/**
 * Encodes a (context, continuation) pair as lm-evaluation-harness 0.4 does: trailing whitespace
 * of the context moves to the continuation, the continuation's ids are those of the whole text
 * after the context's; an empty context becomes the end-of-text id.
 */
function encodePair(tokenizer: Tokenizer, request: LoglikelihoodRequest, index: number): Scored {
  let { context, continuation } = request;
  const spaces = context.length - context.trimEnd().length;
  if (spaces > 0) {
    continuation = context.slice(context.length - spaces) + continuation;
    context = context.slice(0, context.length - spaces);
  }
  if (continuation.length === 0) {
    throw new RangeError(`Cannot score request ${index}: its continuation is empty`);
  }
  let ctx: number[], cont: number[];
  if (context.length === 0) {
    if (tokenizer.eosId === undefined) {
      throw new RangeError(
        `Cannot score request ${index}: its context is empty and tokenizer "${tokenizer.name}" has no end-of-text id to stand in`,
      );
    }
    ctx = [tokenizer.eosId];
    cont = tokenizer.encode(continuation);
  } else {
    const whole = tokenizer.encode(context + continuation);
    ctx = tokenizer.encode(context);
    cont = whole.slice(ctx.length);
  }
  if (cont.length === 0) {
    throw new RangeError(`Cannot score request ${index}: its continuation encodes to no tokens`);
  }
  return { ids: [...ctx, ...cont], start: ctx.length };
}

/**
 * The log-likelihood of each continuation given its context. A pair longer than the model's
 * context loses context tokens from the left (lm-evaluation-harness's rule); a continuation that
 * alone fills the context is an error.
 *
 * @example
 * ```ts
 * import { ByteTokenizer, GPT, gptConfig, Gpu, loglikelihoods } from "../mod.ts";
 * const model = await GPT.create(await Gpu.get(), gptConfig("tiny"), { seed: 1, trainable: false });
 * const [r] = await loglikelihoods(model, new ByteTokenizer(), [{ context: "Hi", continuation: " there" }]);
 * if (!(r.loglikelihood < 0) || r.tokens !== 6) throw new Error("bad log-likelihood");
 * model.release();
 * ```
 */
export async function loglikelihoods(
  model: Decoder,
  tokenizer: Tokenizer,
  requests: readonly LoglikelihoodRequest[],
  options: RunOptions = {},
): Promise<LoglikelihoodResult[]> {
  const room = contextRoom(model);
  const truncated: number[] = [];
  const seqs = requests.map((req, i) => {
    const seq = encodePair(tokenizer, req, i);
    const cont = seq.ids.length - seq.start;
    if (cont >= room) {
      throw new RangeError(
        `Cannot score request ${i}: its continuation has ${cont} tokens; the model's context holds ${room}`,
      );
    }
    const drop = Math.max(0, seq.ids.length - room);
    truncated.push(drop);
    return { ids: seq.ids.slice(drop), start: seq.start - drop };
  });
  const losses = await tokenLosses(model, seqs, options);
  return losses.map((l, i) => {
    let sum = 0;
    for (const x of l) sum += x;
    return { loglikelihood: -sum, tokens: l.length, truncated: truncated[i] };
  });
}

/** Options for {@linkcode generateTexts}. */
export interface GenerateTextsOptions extends RunOptions {
  /** Most new tokens per prompt. */
  maxNewTokens: number;
  /** Stop sequences, removed from the output. Default none. */
  stop?: readonly string[];
  /** Look for `stop` only after the output's leading whitespace (see {@linkcode BenchmarkTask}). */
  stopAfterContent?: boolean;
}

/**
 * Greedy continuations of many prompts, `batchSize` at a time (sorted by length, so a batch pads
 * little), with the tokenizer's end-of-text id and the stop sequences ending each row. Prompts too
 * long for the context lose their oldest tokens. An empty prompt starts from the end-of-text id.
 *
 * @example
 * ```ts
 * import { ByteTokenizer, generateTexts, GPT, gptConfig, Gpu } from "../mod.ts";
 * const model = await GPT.create(await Gpu.get(), gptConfig("tiny"), { seed: 1, trainable: false });
 * const texts = await generateTexts(model, new ByteTokenizer(), ["a", "bc"], { maxNewTokens: 3 });
 * if (texts.length !== 2) throw new Error("one text per prompt");
 * model.release();
 * ```
 */
export async function generateTexts(
  model: Decoder,
  tokenizer: Tokenizer,
  prompts: readonly string[],
  options: GenerateTextsOptions,
): Promise<string[]> {
  return (await generateWithCuts(model, tokenizer, prompts, options)).texts;
}

/** {@linkcode generateTexts}, and how many tokens each prompt lost to fit the context. */
async function generateWithCuts(
  model: Decoder,
  tokenizer: Tokenizer,
  prompts: readonly string[],
  options: GenerateTextsOptions,
): Promise<{ texts: string[]; cut: number[] }> {
  const batchSize = options.batchSize ?? 32;
  const stop = options.stop ?? [];
  const encoded = prompts.map((p, i) => {
    const ids = tokenizer.encode(p);
    if (ids.length > 0) return ids;
    if (tokenizer.eosId === undefined) {
      throw new RangeError(
        `Cannot generate for prompt ${i}: it is empty and tokenizer "${tokenizer.name}" has no end-of-text id`,
      );
    }
    return [tokenizer.eosId];
  });
  const order = encoded.map((_, i) => i).sort((a, b) =>
    encoded[b].length - encoded[a].length || a - b
  );
  const out = new Array<string>(prompts.length);
  const cut = new Array<number>(prompts.length).fill(0);
  const t0 = performance.now();
  for (let at = 0; at < order.length; at += batchSize) {
    const rows = order.slice(at, at + batchSize);
    const result = await generate(model, rows.map((i) => encoded[i]), {
      maxNewTokens: options.maxNewTokens,
      tokenizer,
      stop: options.stopAfterContent ? [] : stop,
      truncate: "left",
    });
    rows.forEach((i, r) => {
      cut[i] = encoded[i].length - result.promptLengths[r];
      const text = result.text![r];
      out[i] = options.stopAfterContent
        ? applyStopSequences(text, stop, { afterLeadingWhitespace: true })
        : text;
      if (options.stats) {
        options.stats.tokens += result.promptLengths[r] + result.ids[r].length;
      }
    });
  }
  if (options.stats) options.stats.seconds += (performance.now() - t0) / 1000;
  return { texts: out, cut };
}

/** Options for {@linkcode evaluateTask}. */
export interface EvaluateOptions extends RunOptions, FewShotOptions {
  /** Score only the first `limit` documents (few-shot examples may still come from the rest). */
  limit?: number;
  /**
   * Generation tasks generate at most this many tokens, and at most their own `maxNewTokens`
   * (by default the longest target's tokens plus 8, at most 64 and half the context).
   */
  maxNewTokens?: number;
}

/** What {@linkcode evaluateTask} measured. */
export interface TaskResult {
  /** The task's name. */
  task: string;
  /** Multiple choice or generation. */
  kind: BenchmarkTask["kind"];
  /** Documents scored. */
  n: number;
  /**
   * Metrics on a 0–100 scale: multiple choice `acc`, `acc_norm`, `multiple_choice_grade` (and
   * `acc_macro`, the mean over groups, when documents have groups); generation the task's metrics.
   */
  metrics: Record<string, number>;
  /** The name of the metric that is the task's score. */
  mainMetric: string;
  /** The task's score: `metrics[mainMetric]`. */
  score: number;
  /** Generation: each metric's signature (how its score was computed), by metric name. */
  signatures?: Record<string, string>;
  /** Multiple choice with groups (MMLU subjects): accuracy per group. */
  groups?: Record<string, { n: number; acc: number }>;
  /** Multiple choice: probability of the predicted choice, per document. */
  confidences?: number[];
  /** Per document: right or wrong (multiple choice, and exact-match-like generation metrics). */
  correct?: boolean[];
  /** Per document: the chosen choice's index, or the generated text (trimmed). */
  predictions: (number | string)[];
  /**
   * Prompts longer than the model's context, which lost their oldest tokens to fit: how many
   * documents, and how many tokens they lost (the most from one document, and in all). A
   * multiple-choice document counts its most-cut choice.
   */
  truncation: Truncation;
  /** Real tokens the model processed. */
  tokens: number;
  /** Seconds spent in the model. */
  seconds: number;
}

/** How much of a task's prompts was cut to fit the context (see {@linkcode TaskResult}). */
export interface Truncation {
  /** Documents whose prompt was cut. */
  documents: number;
  /** The most tokens cut from one document's prompt. */
  maxTokens: number;
  /** Tokens cut over all documents. */
  tokens: number;
}

function truncation(cutPerDoc: readonly number[]): Truncation {
  const cut = cutPerDoc.filter((c) => c > 0);
  return {
    documents: cut.length,
    maxTokens: Math.max(0, ...cut),
    tokens: cut.reduce((a, c) => a + c, 0),
  };
}

/** The longest target in tokens plus 8, at most 64 and at most half the model's context. */
function defaultMaxNewTokens(task: BenchmarkTask, tokenizer: Tokenizer, room: number): number {
  let longest = 0;
  for (const doc of task.docs) {
    for (const t of doc.targets ?? []) longest = Math.max(longest, tokenizer.encode(t).length);
  }
  return Math.max(1, Math.min(64, longest + 8, Math.floor(room / 2)));
}

/**
 * Scores one benchmark task with `shots` few-shot examples (seeded). Multiple choice: one
 * log-likelihood request per choice; generation: greedy generation, the output trimmed, scored
 * with the task's metrics.
 *
 * @example
 * ```ts
 * import { ByteTokenizer, evaluateTask, GPT, gptConfig, Gpu } from "../mod.ts";
 * const model = await GPT.create(await Gpu.get(), gptConfig("tiny"), { seed: 1, trainable: false });
 * const task = {
 *   name: "yes_no", kind: "multiple_choice" as const,
 *   docs: [{ prompt: "Is fire hot?", choices: [" yes", " no"], gold: 0 }],
 * };
 * const result = await evaluateTask(model, new ByteTokenizer(), task);
 * if (result.mainMetric !== "acc" || result.n !== 1) throw new Error();
 * model.release();
 * ```
 */
export async function evaluateTask(
  model: Decoder,
  tokenizer: Tokenizer,
  task: BenchmarkTask,
  options: EvaluateOptions = {},
): Promise<TaskResult> {
  const limit = options.limit ?? task.docs.length;
  if (!Number.isInteger(limit) || limit < 1) {
    throw new RangeError(`Cannot evaluate task "${task.name}": limit must be a positive integer`);
  }
  const t: BenchmarkTask = {
    ...task,
    docs: task.docs.slice(0, limit),
    fewShotDocs: task.fewShotDocs ?? task.docs,
  };
  if (t.docs.length === 0) {
    throw new RangeError(`Cannot evaluate task "${task.name}": no documents`);
  }
  const stats: RunStats = { tokens: 0, seconds: 0 };
  const run = { ...options, stats };
  const contexts = t.docs.map((_, i) => buildContext(t, i, options));
  let result: Omit<TaskResult, "tokens" | "seconds">;
  if (t.kind === "multiple_choice") {
    const requests: LoglikelihoodRequest[] = [];
    t.docs.forEach((doc, i) => {
      if (!doc.choices || doc.choices.length === 0 || doc.gold === undefined) {
        throw new RangeError(
          `Cannot evaluate task "${task.name}": document ${i} has no choices or no gold index`,
        );
      }
      for (const c of doc.choices) requests.push({ context: contexts[i], continuation: c });
    });
    const lls = await loglikelihoods(model, tokenizer, requests, run);
    let at = 0;
    const perDocResults = t.docs.map((doc) => lls.slice(at, at += doc.choices!.length));
    const perDoc = perDocResults.map((rs) => rs.map((r) => r.loglikelihood));
    const mc = multipleChoiceScores(t.docs, perDoc);
    const metrics: Record<string, number> = { ...mc.metrics };
    let groups: TaskResult["groups"];
    if (t.docs.some((d) => d.group !== undefined)) {
      const g = groupAccuracy(t.docs.map((d) => d.group ?? ""), mc.correct);
      groups = g.groups;
      metrics.acc_macro = g.macro;
    }
    const mainMetric = t.docs.some((d) => d.choiceScores !== undefined)
      ? "multiple_choice_grade"
      : "acc";
    result = {
      task: task.name,
      kind: t.kind,
      n: t.docs.length,
      metrics,
      mainMetric,
      score: metrics[mainMetric],
      ...(groups ? { groups } : {}),
      confidences: mc.confidences,
      correct: mc.correct,
      predictions: mc.predictions,
      truncation: truncation(perDocResults.map((rs) => Math.max(...rs.map((r) => r.truncated)))),
    };
  } else {
    const metricsWanted = t.metrics ?? ["exact_match"];
    if (metricsWanted.length === 0) {
      throw new RangeError(`Cannot evaluate task "${task.name}": it has no metrics`);
    }
    const { texts, cut } = await generateWithCuts(model, tokenizer, contexts, {
      ...run,
      maxNewTokens: Math.min(
        options.maxNewTokens ?? Infinity,
        t.maxNewTokens ?? defaultMaxNewTokens(t, tokenizer, contextRoom(model)),
      ),
      stop: t.stop ?? ["\n"],
      stopAfterContent: t.stopAfterContent,
    });
    const predictions = texts.map((s) => s.trim());
    const targets = t.docs.map((d, i) => {
      if (!d.targets || d.targets.length === 0) {
        throw new RangeError(`Cannot evaluate task "${task.name}": document ${i} has no targets`);
      }
      return d.targets;
    });
    const g = generationScores(metricsWanted, predictions, targets);
    const mainMetric = mainMetricName(metricsWanted[0]);
    result = {
      task: task.name,
      kind: t.kind,
      n: t.docs.length,
      metrics: g.metrics,
      mainMetric,
      score: g.metrics[mainMetric],
      signatures: g.signatures,
      ...(g.correct ? { correct: g.correct } : {}),
      predictions,
      truncation: truncation(cut),
    };
  }
  return { ...result, tokens: stats.tokens, seconds: stats.seconds };
}

/** One task's score on the embedded suite. */
export interface SuiteScore {
  /** The task's name. */
  task: string;
  /** The suite metric it is scored by. */
  metric: TaskMetric;
  /** Whether it is held out of training by default. */
  heldOut: boolean;
  /** The score, 0–100: accuracy or exact match in percent, BLEU, or ROUGE-L F1 × 100. */
  score: number;
  /** The harness result behind it. */
  result: TaskResult;
}

/**
 * Scores each task of a built suite on its test split, by the task's metric (see
 * {@linkcode suiteBenchmarkTask}): `mc_accuracy` and, by default, the sentiment task's `accuracy`
 * by log-likelihood over the choices; `rouge` (ROUGE-L F1), `bleu` (corpus BLEU) and
 * `exact_match` by greedy generation of one line, at most the longest answer's tokens plus 8.
 * Every score is 0–100. Zero-shot by default (a fine-tuned model has learned the format).
 * Batches default to 128 sequences (a whole default test split per generation batch).
 *
 * @example
 * ```ts
 * import { buildSuite, ByteTokenizer, evaluateSuite, GPT, gptConfig, Gpu } from "../mod.ts";
 * const model = await GPT.create(await Gpu.get(), gptConfig("tiny"), { seed: 1, trainable: false });
 * const suite = buildSuite({ tasks: ["sentiment", "arithmetic"], sizes: { train: 0, dev: 0, test: 2 } });
 * const scores = await evaluateSuite(model, new ByteTokenizer(), suite);
 * if (scores.length !== 2 || !(scores[0].score >= 0 && scores[0].score <= 100)) throw new Error();
 * model.release();
 * ```
 */
export async function evaluateSuite(
  model: Decoder,
  tokenizer: Tokenizer,
  suite: readonly SuiteTaskData[],
  options: EvaluateOptions & SuiteBenchmarkOptions = {},
): Promise<SuiteScore[]> {
  const out: SuiteScore[] = [];
  for (const data of suite) {
    const result = await evaluateTask(model, tokenizer, suiteBenchmarkTask(data, options), {
      // All of a task's test prompts in one generation batch: fewer GPU waits per token.
      batchSize: 128,
      ...options,
    });
    out.push({
      task: data.task.name,
      metric: data.task.metric,
      heldOut: data.heldOut,
      score: result.score,
      result,
    });
  }
  return out;
}

/** What {@linkcode textPerplexity} measured. */
export interface TextPerplexity {
  /** exp of the mean per-token loss. */
  perplexity: number;
  /** Tokens scored. */
  tokens: number;
}

/**
 * Perplexity of the model on general text: each text is encoded (after the end-of-text id, when
 * the tokenizer has one, so that its first token is scored too) and cut into non-overlapping
 * windows of the model's context; every token after a window's first is scored.
 *
 * @example
 * ```ts
 * import { ByteTokenizer, GPT, gptConfig, Gpu, textPerplexity } from "../mod.ts";
 * const model = await GPT.create(await Gpu.get(), gptConfig("tiny"), { seed: 1, trainable: false });
 * const p = await textPerplexity(model, new ByteTokenizer(), ["hello world"]);
 * if (p.tokens !== 10 || !(p.perplexity > 1)) throw new Error();
 * model.release();
 * ```
 */
export async function textPerplexity(
  model: Decoder,
  tokenizer: Tokenizer,
  texts: readonly string[],
  options: RunOptions = {},
): Promise<TextPerplexity> {
  const room = contextRoom(model);
  const seqs: Scored[] = [];
  for (const text of texts) {
    const ids = [
      ...(tokenizer.eosId !== undefined ? [tokenizer.eosId] : []),
      ...tokenizer.encode(text),
    ];
    for (let at = 0; at + 1 < ids.length; at += room) {
      seqs.push({ ids: ids.slice(at, at + room), start: 1 });
    }
  }
  const windows = seqs.filter((s) => s.ids.length >= 2);
  if (windows.length === 0) {
    throw new RangeError("Cannot compute perplexity: the texts have fewer than two tokens");
  }
  const losses = await tokenLosses(model, windows, options);
  const all = new Float32Array(losses.reduce((a, l) => a + l.length, 0));
  let at = 0;
  for (const l of losses) {
    all.set(l, at);
    at += l.length;
  }
  return { perplexity: perplexity(all), tokens: all.length };
}

/** Options for {@linkcode evaluateHelm}. */
export interface HelmOptions extends EvaluateOptions {
  /** The perturbations robustness is measured under. Default {@linkcode DEFAULT_PERTURBATIONS}. */
  perturbations?: readonly Perturbation[];
  /** Seed of the perturbations. Default 0. */
  perturbationSeed?: number;
  /** Bins of the calibration error. Default 10 (HELM's). */
  calibrationBins?: number;
}

/**
 * A HELM-style report over tasks: each task is scored clean (accuracy, calibration of its
 * multiple-choice probabilities, tokens per second) and under each seeded perturbation of its
 * inputs (robustness); see {@linkcode helmReport}.
 *
 * @example
 * ```ts
 * import { ByteTokenizer, evaluateHelm, GPT, gptConfig, Gpu, helmMarkdown } from "../mod.ts";
 * const model = await GPT.create(await Gpu.get(), gptConfig("tiny"), { seed: 1, trainable: false });
 * const task = {
 *   name: "yes_no", kind: "multiple_choice" as const,
 *   docs: [{ prompt: "Is fire hot?", choices: [" yes", " no"], gold: 0 }],
 * };
 * const report = await evaluateHelm(model, new ByteTokenizer(), [task]);
 * console.log(helmMarkdown(report));
 * model.release();
 * ```
 */
export async function evaluateHelm(
  model: Decoder,
  tokenizer: Tokenizer,
  tasks: readonly BenchmarkTask[],
  options: HelmOptions = {},
): Promise<HelmReport> {
  const perturbations = options.perturbations ?? DEFAULT_PERTURBATIONS;
  const seed = options.perturbationSeed ?? 0;
  const inputs: HelmTaskInput[] = [];
  for (const task of tasks) {
    const clean = await evaluateTask(model, tokenizer, task, options);
    const perturbed: Record<string, number> = {};
    for (const p of perturbations) {
      perturbed[p.name] =
        (await evaluateTask(model, tokenizer, perturbTask(task, p, seed), options))
          .score;
    }
    inputs.push({
      task: task.name,
      metric: clean.mainMetric,
      n: clean.n,
      score: clean.score,
      ...(clean.confidences ? { confidences: clean.confidences, correct: clean.correct } : {}),
      perturbed,
      tokens: clean.tokens,
      seconds: clean.seconds,
    });
  }
  return helmReport(inputs, { bins: options.calibrationBins, seed });
}
