/**
 * Turning log-likelihoods and generated texts into task metrics, on a 0–100 scale. Pure: no
 * model, no GPU.
 *
 * @module
 */

import { type Metric, scoreCorpus } from "../metric.ts";
import { metricByName } from "../metrics/table.ts";
import type { BenchmarkDoc, GenerationMetric } from "./task.ts";

/** Multiple-choice results of a set of documents. */
export interface MultipleChoiceScores {
  /** Metrics on a 0–100 scale: `acc`, `acc_norm` and `multiple_choice_grade`. */
  metrics: { acc: number; acc_norm: number; multiple_choice_grade: number };
  /** Per document: the index of the most likely choice (first on ties). */
  predictions: number[];
  /** Per document: whether that is the gold choice. */
  correct: boolean[];
  /** Per document: the probability of the predicted choice, softmax over the choices' log-likelihoods. */
  confidences: number[];
}

/** Index of the first largest value. */
function argmax(values: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

/**
 * Scores multiple choice from each document's per-choice log-likelihoods (summed over the
 * continuation's tokens), as lm-evaluation-harness does: `acc` takes the most likely choice;
 * `acc_norm` divides each log-likelihood by the choice's length in characters (Unicode code
 * points, Python's `len`) first; `multiple_choice_grade` is BIG-bench's: the mean
 * `choiceScores` of the chosen choices. Ties go to the first choice (numpy's argmax).
 *
 * @example
 * ```ts
 * import { multipleChoiceScores } from "../../mod.ts";
 * const docs = [{ prompt: "Q:", choices: [" a", " bbbbbb"], gold: 1 }];
 * // -3 for " a" (2 chars) and -4 for " bbbbbb" (7 chars): acc picks " a", acc_norm " bbbbbb".
 * const s = multipleChoiceScores(docs, [[-3, -4]]);
 * if (s.metrics.acc !== 0 || s.metrics.acc_norm !== 100) throw new Error();
 * ```
 */
export function multipleChoiceScores(
  docs: readonly BenchmarkDoc[],
  loglikelihoods: readonly (readonly number[])[],
): MultipleChoiceScores {
  if (docs.length !== loglikelihoods.length) {
    throw new RangeError(
      `Cannot score multiple choice: ${docs.length} documents but ${loglikelihoods.length} sets of log-likelihoods`,
    );
  }
  if (docs.length === 0) throw new RangeError("Cannot score multiple choice: no documents");
  let acc = 0, accNorm = 0, grade = 0;
  const predictions: number[] = [], correct: boolean[] = [], confidences: number[] = [];
  docs.forEach((doc, i) => {
    const lls = loglikelihoods[i];
    const { choices, gold } = doc;
    if (choices === undefined || gold === undefined || choices.length !== lls.length) {
      throw new RangeError(
        `Cannot score multiple choice: document ${i} has ${choices?.length ?? 0} choices${
          gold === undefined ? " and no gold index" : ""
        } but ${lls.length} log-likelihoods`,
      );
    }
    const pick = argmax(lls);
    const pickNorm = argmax(lls.map((ll, c) => ll / [...choices[c]].length));
    const scores = doc.choiceScores ?? choices.map((_, c) => c === gold ? 1 : 0);
    acc += pick === gold ? 1 : 0;
    accNorm += pickNorm === gold ? 1 : 0;
    grade += scores[pick];
    predictions.push(pick);
    correct.push(pick === gold);
    let z = 0;
    for (const ll of lls) z += Math.exp(ll - lls[pick]);
    confidences.push(1 / z);
  });
  const n = docs.length;
  return {
    metrics: {
      acc: 100 * acc / n,
      acc_norm: 100 * accNorm / n,
      multiple_choice_grade: 100 * grade / n,
    },
    predictions,
    correct,
    confidences,
  };
}

/**
 * Per-group accuracy (e.g. per MMLU subject) and the two overall averages: `micro` weighs every
 * document equally (the size-weighted mean of the groups), `macro` every group equally. All 0–100.
 *
 * @example
 * ```ts
 * import { groupAccuracy } from "../../mod.ts";
 * const g = groupAccuracy(["a", "a", "a", "b"], [true, true, false, false]);
 * // a: 2/3, b: 0; micro 2/4; macro (2/3 + 0) / 2.
 * if (g.micro !== 50 || Math.abs(g.macro - 100 / 3) > 1e-12) throw new Error();
 * ```
 */
export function groupAccuracy(
  groups: readonly string[],
  correct: readonly boolean[],
): { groups: Record<string, { n: number; acc: number }>; micro: number; macro: number } {
  if (groups.length !== correct.length || groups.length === 0) {
    throw new RangeError(
      `Cannot average groups: ${groups.length} group names for ${correct.length} results`,
    );
  }
  const count = new Map<string, [number, number]>();
  groups.forEach((g, i) => {
    const c = count.get(g) ?? [0, 0];
    c[0]++;
    if (correct[i]) c[1]++;
    count.set(g, c);
  });
  const out: Record<string, { n: number; acc: number }> = {};
  let right = 0, macro = 0;
  for (const [g, [n, r]] of [...count].sort((a, b) => a[0] < b[0] ? -1 : 1)) {
    out[g] = { n, acc: 100 * r / n };
    right += r;
    macro += 100 * r / n;
  }
  return { groups: out, micro: 100 * right / groups.length, macro: macro / count.size };
}

/** A generation metric given by name (looked up in the metrics table) or as a {@linkcode Metric}. */
function resolveMetric(metric: GenerationMetric): Metric {
  return typeof metric === "string" ? metricByName(metric) : metric;
}

/** What {@linkcode generationScores} measured. */
export interface GenerationScores {
  /** Every metric's parts by name, 0–100 (`"rouge"` adds rouge1, rouge2, rougeL and rougeLsum). */
  metrics: Record<string, number>;
  /** Per document: right or wrong by the first right-or-wrong metric, or null when there is none. */
  correct: boolean[] | null;
  /** Each metric's signature by metric name: how its score was computed. */
  signatures: Record<string, string>;
}

/**
 * Scores generated texts against each document's targets with the given metrics: names from the
 * metrics table ({@linkcode METRICS}) or {@linkcode Metric} objects, each through
 * {@linkcode scoreCorpus} (per-document statistics, one corpus score, a signature). Returns every
 * metric's parts by name (`"rouge"` adds `rouge1`, `rouge2`, `rougeL` and `rougeLsum`), and the
 * per-document correctness of the first right-or-wrong metric (exact match, accuracy).
 *
 * @example
 * ```ts
 * import { generationScores } from "../../mod.ts";
 * const s = generationScores(["exact_match", "token_f1"], [" 4 ", "five"], [["4"], ["5"]]);
 * if (s.metrics.exact_match !== 50 || s.metrics.token_f1 !== 50) throw new Error();
 * if (s.correct?.join() !== "true,false" || s.signatures.exact_match !== "nrefs:1|norm:trim") throw new Error();
 * ```
 */
export function generationScores(
  metrics: readonly GenerationMetric[],
  predictions: readonly string[],
  targets: readonly (readonly string[])[],
): GenerationScores {
  if (predictions.length !== targets.length) {
    throw new RangeError(
      `Cannot score generations: ${predictions.length} predictions but ${targets.length} target lists`,
    );
  }
  if (predictions.length === 0) throw new RangeError("Cannot score generations: no predictions");
  targets.forEach((t, i) => {
    if (t.length === 0) {
      throw new RangeError(`Cannot score generations: document ${i} has no target`);
    }
  });
  const resolved = metrics.map(resolveMetric);
  const out: Record<string, number> = {};
  const signatures: Record<string, string> = {};
  let correct: boolean[] | null = null;
  for (const metric of resolved) {
    const result = scoreCorpus(metric, predictions, targets);
    Object.assign(out, result.parts);
    signatures[metric.name] = result.signature;
    if (correct === null && metric.correct) {
      correct = result.statistics.map((stats) => metric.correct!(stats));
    }
  }
  return { metrics: out, correct, signatures };
}

/**
 * The metric that is a generation task's score: the metric's `mainPart` (rougeL for `"rouge"`,
 * else the metric itself).
 *
 * @example
 * ```ts
 * import { mainMetricName } from "../../mod.ts";
 * if (mainMetricName("rouge") !== "rougeL" || mainMetricName("bleu") !== "bleu") throw new Error();
 * ```
 */
export function mainMetricName(metric: GenerationMetric): string {
  return resolveMetric(metric).mainPart;
}

/**
 * `text` cut where the first stop sequence starts (the sequence removed). With
 * `afterLeadingWhitespace`, matches are looked for only after the text's leading whitespace, so an
 * answer may begin with a newline even when "\n" is a stop sequence.
 *
 * @example
 * ```ts
 * import { applyStopSequences } from "../../mod.ts";
 * if (applyStopSequences("\n42\nQ:", ["\n"]) !== "") throw new Error();
 * if (applyStopSequences("\n42\nQ:", ["\n"], { afterLeadingWhitespace: true }) !== "\n42") throw new Error();
 * ```
 */
export function applyStopSequences(
  text: string,
  stop: readonly string[],
  options: { afterLeadingWhitespace?: boolean } = {},
): string {
  const from = options.afterLeadingWhitespace ? text.length - text.trimStart().length : 0;
  let end = text.length;
  for (const s of stop) {
    if (s.length === 0) throw new RangeError("Cannot apply stop sequences: one is empty");
    const i = text.indexOf(s, from);
    if (i >= 0 && i < end) end = i;
  }
  return text.slice(0, end);
}
