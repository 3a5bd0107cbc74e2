/**
 * Forgetting reports: how much a fine-tuned model (or base + adapter) lost, or gained, on tasks it
 * was not trained on, and on general text, compared with its base model. Pure arithmetic over
 * score tables; the harness ({@linkcode evaluateSuite}, {@linkcode textPerplexity}) produces the
 * inputs.
 *
 * @module
 */

/** The inputs of {@linkcode forgettingReport}. */
export interface ForgettingInput {
  /** The base model's scores by task (0–100, higher is better). */
  base: Readonly<Record<string, number>>;
  /** The fine-tuned model's scores by task. */
  tuned: Readonly<Record<string, number>>;
  /** The held-out tasks to compare. Default: every task of `base`. */
  tasks?: readonly string[];
  /** Perplexity of each model on general text (lower is better). */
  perplexity?: { base: number; tuned: number };
  /** Names for the two models in reports. Default "base" and "tuned". */
  names?: { base: string; tuned: string };
}

/** One task of a {@linkcode ForgettingReport}. */
export interface ForgettingRow {
  /** The task's name. */
  task: string;
  /** The base model's score. */
  base: number;
  /** The fine-tuned model's score. */
  tuned: number;
  /** `tuned − base`: negative means forgetting. */
  delta: number;
}

/** Per-task deltas on held-out tasks, their mean, and the perplexity change. */
export interface ForgettingReport {
  /** Names of the two models. */
  names: { base: string; tuned: string };
  /** One row per held-out task, in the order given. */
  tasks: ForgettingRow[];
  /** Mean base score, mean tuned score and mean delta over the tasks. */
  mean: { base: number; tuned: number; delta: number };
  /**
   * Perplexity on general text: both values, `delta = tuned − base` (positive means forgetting)
   * and `ratio = tuned / base`; null when not measured.
   */
  perplexity: { base: number; tuned: number; delta: number; ratio: number } | null;
}

/**
 * Compares base and fine-tuned scores on held-out tasks. A task missing from either table, or a
 * score that is not a finite number, is an error naming it.
 *
 * @example
 * ```ts
 * import { forgettingReport } from "../mod.ts";
 * const r = forgettingReport({
 *   base: { reverse_words: 40, uppercase: 70 },
 *   tuned: { reverse_words: 30, uppercase: 75 },
 *   perplexity: { base: 10, tuned: 12 },
 * });
 * if (r.mean.delta !== -2.5 || r.perplexity?.ratio !== 1.2) throw new Error();
 * ```
 */
export function forgettingReport(input: ForgettingInput): ForgettingReport {
  const names = input.names ?? { base: "base", tuned: "tuned" };
  const tasks = input.tasks ?? Object.keys(input.base);
  if (tasks.length === 0) throw new RangeError("Cannot build a forgetting report: no tasks");
  const score = (table: Readonly<Record<string, number>>, model: string, task: string) => {
    const v = Object.hasOwn(table, task) ? table[task] : undefined;
    if (v === undefined) {
      throw new RangeError(
        `Cannot build a forgetting report: ${model} has no score for task "${task}"`,
      );
    }
    if (!Number.isFinite(v)) {
      throw new RangeError(
        `Cannot build a forgetting report: ${model}'s score for task "${task}" is ${v}`,
      );
    }
    return v;
  };
  const rows = tasks.map((task): ForgettingRow => {
    const base = score(input.base, names.base, task);
    const tuned = score(input.tuned, names.tuned, task);
    return { task, base, tuned, delta: tuned - base };
  });
  const mean = (f: (r: ForgettingRow) => number) =>
    rows.reduce((a, r) => a + f(r), 0) / rows.length;
  let perplexity: ForgettingReport["perplexity"] = null;
  if (input.perplexity) {
    const { base, tuned } = input.perplexity;
    if (!(base > 0 && tuned > 0)) {
      throw new RangeError(
        `Cannot build a forgetting report: perplexities must be positive, got ${base} and ${tuned}`,
      );
    }
    perplexity = { base, tuned, delta: tuned - base, ratio: tuned / base };
  }
  return {
    names,
    tasks: rows,
    mean: { base: mean((r) => r.base), tuned: mean((r) => r.tuned), delta: mean((r) => r.delta) },
    perplexity,
  };
}

/**
 * The report as Markdown: a table of held-out tasks (scores with 2 decimals, deltas signed) with
 * a mean row, and a line on perplexity.
 *
 * @example
 * ```ts
 * import { forgettingMarkdown, forgettingReport } from "../mod.ts";
 * const md = forgettingMarkdown(forgettingReport({ base: { t: 50 }, tuned: { t: 45.5 } }));
 * if (!md.includes("| t | 50.00 | 45.50 | -4.50 |")) throw new Error(md);
 * ```
 */
export function forgettingMarkdown(report: ForgettingReport): string {
  const f = (x: number) => x.toFixed(2);
  const signed = (x: number) => (x > 0 ? "+" : "") + f(x);
  const { base, tuned } = report.names;
  const lines = [
    `| held-out task | ${base} | ${tuned} | Δ |`,
    "| --- | ---: | ---: | ---: |",
    ...report.tasks.map((r) => `| ${r.task} | ${f(r.base)} | ${f(r.tuned)} | ${signed(r.delta)} |`),
    `| **mean** | ${f(report.mean.base)} | ${f(report.mean.tuned)} | ${
      signed(report.mean.delta)
    } |`,
  ];
  const p = report.perplexity;
  if (p) {
    lines.push(
      "",
      `Perplexity on general text: ${base} ${p.base.toFixed(3)}, ${tuned} ${p.tuned.toFixed(3)} ` +
        `(Δ ${p.delta > 0 ? "+" : ""}${p.delta.toFixed(3)}, ×${p.ratio.toFixed(3)}).`,
    );
  }
  return lines.join("\n") + "\n";
}
