/**
 * Benchmark tasks as data, and the prompts built from them, as lm-evaluation-harness builds them:
 * `description + shot₁ + separator + … + shotₖ + separator + query`, where a shot is a solved
 * example (its prompt followed by its answer) and the query is the document's prompt. Pure: no
 * model, no GPU.
 *
 * @module
 */

import type { SuiteTaskData } from "../../data/suite.ts";
import type { Metric } from "../metric.ts";
import type { MetricName } from "../metrics/table.ts";
import type { SourceLocation } from "../../data/errors.ts";
import { counterHash, Rng } from "../../runtime/rng.ts";

/**
 * How a generation task's outputs are scored: a metric of the metrics table by name
 * ({@linkcode METRICS}: `"exact_match"`, `"accuracy"`, `"token_f1"`, `"squad_exact_match"`,
 * `"bleu"`, `"chrf"`, `"rouge"`; every score 0–100), or a {@linkcode Metric} object for one that
 * is not in the table.
 */
export type GenerationMetric = MetricName | Metric;

/** One document (example) of a benchmark task. */
export interface BenchmarkDoc {
  /** The query text without its answer (lm-evaluation-harness's `doc_to_text`). */
  prompt: string;
  /**
   * The part of `prompt` that is the example's own input (a question, a sentence): what
   * robustness perturbations change. Default: the whole prompt.
   */
  input?: string;
  /** Multiple choice: each continuation, appended to the context as is (so " A", not "A"). */
  choices?: readonly string[];
  /** Multiple choice: index of the correct entry of `choices`. */
  gold?: number;
  /**
   * Multiple choice: a score per choice (BIG-bench `target_scores`); `multiple_choice_grade` is
   * the mean score of the chosen ones. Default: 1 for `gold`, 0 for the others.
   */
  choiceScores?: readonly number[];
  /** Generation: the acceptable answers (references); the first is used in few-shot examples. */
  targets?: readonly string[];
  /** A group for per-group averages (an MMLU subject). Few-shot examples come from the same group. */
  group?: string;
  /** Text in front of the few-shot examples (MMLU's subject header); overrides the task's. */
  description?: string;
  /** The file and line it was read from. */
  source?: SourceLocation;
}

/** A benchmark task: documents, how prompts are built, and how answers are scored. */
export interface BenchmarkTask {
  /** A name for reports. */
  name: string;
  /** `"multiple_choice"`: scored by log-likelihood of each choice; `"generate"`: greedy generation. */
  kind: "multiple_choice" | "generate";
  /** The documents scored. */
  docs: readonly BenchmarkDoc[];
  /**
   * Where few-shot examples come from (a dev split). Default: the scored documents, never the one
   * being scored.
   */
  fewShotDocs?: readonly BenchmarkDoc[];
  /** How few-shot examples are chosen: seeded `"random"` (default) or the `"first_n"` (MMLU's). */
  fewShotSampler?: "random" | "first_n";
  /** Between few-shot examples and before the query. Default "\n\n" (lm-evaluation-harness). */
  fewShotSeparator?: string;
  /** Text in front of everything (BIG-bench's `task_prefix`). Default "". */
  description?: string;
  /** Generation: metrics; the first is the task's score. Default `["exact_match"]`. */
  metrics?: readonly GenerationMetric[];
  /** Generation: stop sequences (removed from the output). Default `["\n"]`. */
  stop?: readonly string[];
  /**
   * Generation: look for the stop sequences only after the output's leading whitespace, so an
   * answer may begin with a newline (the embedded suite's completions do). Generation then runs
   * to end-of-text or `maxNewTokens` and the text is cut afterwards. Default false.
   */
  stopAfterContent?: boolean;
  /**
   * Generation: most new tokens. Default: the longest target's tokens plus 8, at most 64 and at
   * most half the model's context.
   */
  maxNewTokens?: number;
}

/** Options for {@linkcode buildContext}. */
export interface FewShotOptions {
  /** Number of solved examples in front of the query. Default 0. */
  shots?: number;
  /** Seed of the `"random"` sampler. Default 1234 (lm-evaluation-harness's). */
  seed?: number;
}

/**
 * The answer a document shows when used as a few-shot example: its gold choice, else its first
 * target.
 *
 * @example
 * ```ts
 * import { shotAnswer } from "../../mod.ts";
 * if (shotAnswer({ prompt: "Q", choices: [" a", " b"], gold: 1 }) !== " b") throw new Error();
 * ```
 */
export function shotAnswer(doc: BenchmarkDoc, where = "document"): string {
  if (doc.choices !== undefined && doc.gold !== undefined) return doc.choices[doc.gold];
  if (doc.targets !== undefined && doc.targets.length > 0) return doc.targets[0];
  throw new RangeError(`Cannot use ${where} as a few-shot example: it has no gold answer`);
}

/**
 * The context (prompt) for document `index` of `task` with `shots` solved examples in front. With
 * the `"random"` sampler, the examples are drawn without replacement by a generator seeded with
 * `(seed, index)`, so a document's prompt depends on the seed and its index alone, not on the
 * order documents are evaluated in. Examples come from `fewShotDocs` (or the other documents),
 * restricted to the document's `group` when it has one.
 *
 * @example
 * ```ts
 * import { buildContext } from "../../mod.ts";
 * const docs = [
 *   { prompt: "1+1=", targets: ["2"] },
 *   { prompt: "2+2=", targets: ["4"] },
 *   { prompt: "3+3=", targets: ["6"] },
 * ];
 * const task = { name: "add", kind: "generate" as const, docs, fewShotSeparator: "\n" };
 * const ctx = buildContext(task, 0, { shots: 2, seed: 1 });
 * if (!ctx.endsWith("\n1+1=") || ctx.split("\n").length !== 3) throw new Error(ctx);
 * ```
 */
export function buildContext(
  task: BenchmarkTask,
  index: number,
  options: FewShotOptions = {},
): string {
  const doc = task.docs[index];
  if (doc === undefined) {
    throw new RangeError(`Cannot build a prompt for task "${task.name}": no document ${index}`);
  }
  const shots = options.shots ?? 0;
  if (!Number.isInteger(shots) || shots < 0) {
    throw new RangeError(
      `Cannot build a prompt: shots must be a non-negative integer, got ${shots}`,
    );
  }
  const description = doc.description ?? task.description ?? "";
  if (shots === 0) return description + doc.prompt;
  const from = task.fewShotDocs ?? task.docs;
  const pool = from.filter((d) =>
    d !== doc && (doc.group === undefined || d.group === undefined || d.group === doc.group)
  );
  if (pool.length < shots) {
    const group = doc.group !== undefined ? ` in group "${doc.group}"` : "";
    throw new RangeError(
      `Cannot build a ${shots}-shot prompt for task "${task.name}" document ${index}: only ${pool.length} examples${group} to draw from`,
    );
  }
  let chosen: BenchmarkDoc[];
  if ((task.fewShotSampler ?? "random") === "first_n") {
    chosen = pool.slice(0, shots);
  } else {
    // A partial Fisher–Yates shuffle: the first `shots` entries are a uniform draw.
    const rng = new Rng(counterHash(options.seed ?? 1234, index));
    const order = pool.slice();
    for (let i = 0; i < shots; i++) {
      const j = i + rng.int(order.length - i);
      [order[i], order[j]] = [order[j], order[i]];
    }
    chosen = order.slice(0, shots);
  }
  const separator = task.fewShotSeparator ?? "\n\n";
  const solved = chosen.map((d) => d.prompt + shotAnswer(d, `a document of task "${task.name}"`));
  return description + solved.join(separator) + separator + doc.prompt;
}

/** Options for {@linkcode suiteBenchmarkTask}. */
export interface SuiteBenchmarkOptions {
  /**
   * How the suite's classification task (metric `accuracy`, with choices) is scored:
   * `"loglikelihood"` (default; the most likely label, as `mc_accuracy`) or `"generate"` (the
   * generated label must equal the answer).
   */
  classification?: "loglikelihood" | "generate";
}

/**
 * One task of the embedded suite (its test split, few-shot examples from its dev split) as a
 * benchmark task, by the task's metric: `mc_accuracy` → multiple choice; `accuracy` → multiple
 * choice over its labels (or generation, see the options); `rouge`, `bleu`, `exact_match` →
 * greedy generation of one line (answers may start with a newline, so the newline stop applies
 * after the output's leading whitespace) scored with that metric.
 *
 * @example
 * ```ts
 * import { buildSuite, suiteBenchmarkTask } from "../../mod.ts";
 * const [data] = buildSuite({ tasks: ["arithmetic"], sizes: { train: 0, dev: 2, test: 3 } });
 * const task = suiteBenchmarkTask(data);
 * if (task.kind !== "generate" || task.docs.length !== 3) throw new Error();
 * ```
 */
export function suiteBenchmarkTask(
  data: SuiteTaskData,
  options: SuiteBenchmarkOptions = {},
): BenchmarkTask {
  const { task } = data;
  const toDoc = (e: SuiteTaskData["test"][number]): BenchmarkDoc => ({
    prompt: e.prompt,
    targets: [e.completion],
    ...(e.choices !== undefined ? { choices: e.choices, gold: e.gold } : {}),
  });
  const byChoice = task.metric === "mc_accuracy" ||
    (task.metric === "accuracy" && (options.classification ?? "loglikelihood") === "loglikelihood");
  if (byChoice) {
    const missing = data.test.findIndex((e) => e.choices === undefined || e.gold === undefined);
    if (missing >= 0) {
      throw new RangeError(
        `Cannot score suite task "${task.name}" by log-likelihood: test example ${missing} has no choices`,
      );
    }
  }
  const metric: GenerationMetric = task.metric === "mc_accuracy" ? "accuracy" : task.metric;
  return {
    name: task.name,
    kind: byChoice ? "multiple_choice" : "generate",
    docs: data.test.map(toDoc),
    fewShotDocs: data.dev.map(toDoc),
    fewShotSeparator: "\n\n",
    ...(byChoice ? {} : { metrics: [metric], stop: ["\n"], stopAfterContent: true }),
  };
}
