/**
 * HELM-style reports (Liang et al., 2022, "Holistic Evaluation of Language Models"): per task,
 * accuracy, calibration, robustness and efficiency side by side, as a Markdown table and JSON.
 * Pure: the seeded perturbations and the report arithmetic; {@linkcode evaluateHelm} runs the
 * model.
 *
 * - accuracy: the task's score (0–100);
 * - calibration: expected calibration error (10 equal-width bins, HELM's `ece_10_bin`) of the
 *   probability of the chosen answer in multiple-choice tasks (softmax over the choices'
 *   log-likelihoods); generation tasks have none;
 * - robustness: the worst score over the clean inputs and each perturbation (typos, casing).
 *   HELM takes the worst case per instance; this takes it per task, because corpus metrics (BLEU)
 *   have no per-instance score;
 * - efficiency: tokens processed per second (prompt, scored and generated tokens, no padding).
 *
 * @module
 */

import { expectedCalibrationError } from "./expected_calibration_error.ts";
import type { BenchmarkTask } from "./harness/task.ts";
import { counterHash, Rng } from "../runtime/rng.ts";

/** A seeded change of a prompt's input that should not change its answer. */
export interface Perturbation {
  /** The column name in reports. */
  name: string;
  /**
   * `"typos"`: each letter becomes a neighbouring key on a QWERTY keyboard with probability
   * `rate` (case kept; HELM's "butter finger" typos); `"lowercase"`, `"uppercase"`: the whole
   * input changes case.
   */
  kind: "typos" | "lowercase" | "uppercase";
  /** Typos: probability per letter. Default 0.05. */
  rate?: number;
}

/** Typos at 5% of letters, all lowercase, all uppercase. */
export const DEFAULT_PERTURBATIONS: readonly Perturbation[] = Object.freeze([
  { name: "typos", kind: "typos", rate: 0.05 },
  { name: "lowercase", kind: "lowercase" },
  { name: "uppercase", kind: "uppercase" },
]);

const KEYBOARD = ["qwertyuiop", "asdfghjkl", "zxcvbnm"];

/**
 * Letters next to each letter on a QWERTY keyboard, whose rows are staggered: the same row's
 * left and right keys, the two keys above (same index and one right) and the two below (one left
 * and same index). E.g. "g": f, h, t, y, v, b.
 */
const NEIGHBOURS: ReadonlyMap<string, string> = (() => {
  const m = new Map<string, string>();
  KEYBOARD.forEach((row, r) => {
    [...row].forEach((key, c) => {
      const near = [
        row[c - 1],
        row[c + 1],
        KEYBOARD[r - 1]?.[c],
        KEYBOARD[r - 1]?.[c + 1],
        KEYBOARD[r + 1]?.[c - 1],
        KEYBOARD[r + 1]?.[c],
      ];
      m.set(key, near.filter((k) => k !== undefined).join(""));
    });
  });
  return m;
})();

/**
 * `text` under a perturbation; typos are drawn by a generator seeded with `seed`.
 *
 * @example
 * ```ts
 * import { perturbText } from "../mod.ts";
 * const typo = perturbText("Hello world", { name: "typos", kind: "typos", rate: 0.5 }, 3);
 * if (typo.length !== 11 || typo === "Hello world") throw new Error(typo);
 * if (perturbText("Hi", { name: "uc", kind: "uppercase" }, 0) !== "HI") throw new Error();
 * ```
 */
export function perturbText(text: string, perturbation: Perturbation, seed: number): string {
  switch (perturbation.kind) {
    case "lowercase":
      return text.toLowerCase();
    case "uppercase":
      return text.toUpperCase();
    case "typos": {
      const rate = perturbation.rate ?? 0.05;
      if (!(rate >= 0 && rate <= 1)) {
        throw new RangeError(`Cannot perturb: typo rate must be in [0, 1], got ${rate}`);
      }
      const rng = new Rng(seed);
      let out = "";
      for (const ch of text) {
        const lower = ch.toLowerCase();
        const near = NEIGHBOURS.get(lower);
        if (near !== undefined && rng.float() < rate) {
          const k = near[rng.int(near.length)];
          out += ch === lower ? k : k.toUpperCase();
        } else {
          out += ch;
        }
      }
      return out;
    }
    default:
      throw new RangeError(
        `Cannot perturb: unknown kind "${(perturbation as Perturbation).kind}"`,
      );
  }
}

/**
 * A copy of `task` whose documents' inputs are perturbed (the `input` part of each prompt, or the
 * whole prompt when a document names none; the template, choices and targets stay). Document i
 * is perturbed with seed `(seed, i)`. Few-shot examples are left clean.
 *
 * @example
 * ```ts
 * import { perturbTask } from "../mod.ts";
 * const task = {
 *   name: "t", kind: "multiple_choice" as const,
 *   docs: [{ prompt: "Q: Is it hot?\nA:", input: "Is it hot?", choices: [" yes", " no"], gold: 0 }],
 * };
 * const p = perturbTask(task, { name: "uc", kind: "uppercase" }, 0);
 * if (p.docs[0].prompt !== "Q: IS IT HOT?\nA:") throw new Error(p.docs[0].prompt);
 * ```
 */
export function perturbTask(
  task: BenchmarkTask,
  perturbation: Perturbation,
  seed: number,
): BenchmarkTask {
  const docs = task.docs.map((doc, i) => {
    const s = counterHash(seed, i);
    const input = doc.input;
    const at = input === undefined ? -1 : doc.prompt.indexOf(input);
    const prompt = input === undefined || at < 0
      ? perturbText(doc.prompt, perturbation, s)
      : doc.prompt.slice(0, at) + perturbText(input, perturbation, s) +
        doc.prompt.slice(at + input.length);
    return { ...doc, prompt };
  });
  return { ...task, docs, fewShotDocs: task.fewShotDocs ?? task.docs };
}

/** What the report needs of one task's runs. */
export interface HelmTaskInput {
  /** The task's name. */
  task: string;
  /** The name of the score's metric. */
  metric: string;
  /** Documents scored. */
  n: number;
  /** The clean score, 0–100. */
  score: number;
  /** Multiple choice: the probability of each chosen answer. */
  confidences?: readonly number[];
  /** Multiple choice: whether each chosen answer was right. */
  correct?: readonly boolean[];
  /** The score under each perturbation, by perturbation name. */
  perturbed: Readonly<Record<string, number>>;
  /** Tokens processed in the clean run. */
  tokens: number;
  /** Seconds of the clean run. */
  seconds: number;
}

/** One row of a {@linkcode HelmReport}. */
export interface HelmTaskRow {
  /** The task's name. */
  task: string;
  /** The metric of `accuracy`. */
  metric: string;
  /** Documents scored. */
  n: number;
  /** The clean score, 0–100. */
  accuracy: number;
  /** Expected calibration error in [0, 1], or null for tasks without probabilities. */
  calibrationError: number | null;
  /** The worst of the clean score and the perturbed ones. */
  robustness: number;
  /** The score under each perturbation. */
  perturbed: Record<string, number>;
  /** Tokens per second of the clean run. */
  tokensPerSecond: number;
}

/** A HELM-style report: a row per task and the means over tasks. */
export interface HelmReport {
  /** The perturbations, in column order. */
  perturbations: string[];
  /** The seed of the perturbations. */
  seed: number;
  /** Bins of the calibration error. */
  calibrationBins: number;
  /** One row per task. */
  tasks: HelmTaskRow[];
  /**
   * Means over tasks (calibration over the tasks that have it, null if none; tokens per second as
   * all tokens over all seconds).
   */
  mean: {
    accuracy: number;
    calibrationError: number | null;
    robustness: number;
    tokensPerSecond: number;
  };
}

/**
 * Builds the report from each task's clean and perturbed runs. Every task must have been scored
 * under the same perturbations.
 *
 * @example
 * ```ts
 * import { helmReport } from "../mod.ts";
 * const r = helmReport([{
 *   task: "t", metric: "acc", n: 2, score: 50, confidences: [0.9, 0.6], correct: [true, false],
 *   perturbed: { typos: 40, lowercase: 55 }, tokens: 100, seconds: 2,
 * }]);
 * if (r.tasks[0].robustness !== 40 || r.tasks[0].tokensPerSecond !== 50) throw new Error();
 * ```
 */
export function helmReport(
  inputs: readonly HelmTaskInput[],
  options: { bins?: number; seed?: number } = {},
): HelmReport {
  if (inputs.length === 0) throw new RangeError("Cannot build a HELM report: no tasks");
  const bins = options.bins ?? 10;
  const names = Object.keys(inputs[0].perturbed);
  const tasks = inputs.map((t): HelmTaskRow => {
    const mine = Object.keys(t.perturbed);
    if (mine.length !== names.length || names.some((p) => !(p in t.perturbed))) {
      throw new RangeError(
        `Cannot build a HELM report: task "${t.task}" was perturbed by ${
          mine.join(", ") || "nothing"
        }, task "${inputs[0].task}" by ${names.join(", ") || "nothing"}`,
      );
    }
    const calibrationError = t.confidences && t.correct && t.confidences.length > 0
      ? expectedCalibrationError(t.confidences, t.correct, { bins })
      : null;
    return {
      task: t.task,
      metric: t.metric,
      n: t.n,
      accuracy: t.score,
      calibrationError,
      robustness: Math.min(t.score, ...names.map((p) => t.perturbed[p])),
      perturbed: Object.fromEntries(names.map((p) => [p, t.perturbed[p]])),
      tokensPerSecond: t.seconds > 0 ? t.tokens / t.seconds : 0,
    };
  });
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const eces = tasks.flatMap((t) => t.calibrationError === null ? [] : [t.calibrationError]);
  const seconds = inputs.reduce((a, t) => a + t.seconds, 0);
  return {
    perturbations: names,
    seed: options.seed ?? 0,
    calibrationBins: bins,
    tasks,
    mean: {
      accuracy: mean(tasks.map((t) => t.accuracy)),
      calibrationError: eces.length > 0 ? mean(eces) : null,
      robustness: mean(tasks.map((t) => t.robustness)),
      tokensPerSecond: seconds > 0 ? inputs.reduce((a, t) => a + t.tokens, 0) / seconds : 0,
    },
  };
}

/**
 * The report as a Markdown table: a row per task and a mean row; scores with 2 decimals, ECE
 * with 4, tokens/s with 1; "–" where a task has no calibration.
 *
 * @example
 * ```ts
 * import { helmMarkdown, helmReport } from "../mod.ts";
 * const md = helmMarkdown(helmReport([{
 *   task: "t", metric: "acc", n: 1, score: 100, perturbed: {}, tokens: 10, seconds: 1,
 * }]));
 * if (!md.includes("| t | acc | 1 | 100.00 | – | 100.00 | 10.0 |")) throw new Error(md);
 * ```
 */
export function helmMarkdown(report: HelmReport): string {
  const f2 = (x: number) => x.toFixed(2);
  const ece = (x: number | null) => x === null ? "–" : x.toFixed(4);
  const head = [
    "task",
    "metric",
    "n",
    "accuracy",
    `ECE (${report.calibrationBins} bins)`,
    "robustness",
    ...report.perturbations,
    "tokens/s",
  ];
  const lines = [
    `| ${head.join(" | ")} |`,
    `| ${head.map((_, i) => i < 2 ? "---" : "---:").join(" | ")} |`,
  ];
  for (const t of report.tasks) {
    const cells = [
      t.task,
      t.metric,
      String(t.n),
      f2(t.accuracy),
      ece(t.calibrationError),
      f2(t.robustness),
      ...report.perturbations.map((p) => f2(t.perturbed[p])),
      t.tokensPerSecond.toFixed(1),
    ];
    lines.push(`| ${cells.join(" | ")} |`);
  }
  const m = report.mean;
  const meanOf = (p: string) =>
    f2(report.tasks.reduce((a, t) => a + t.perturbed[p], 0) / report.tasks.length);
  lines.push(
    `| **mean** |  |  | ${f2(m.accuracy)} | ${ece(m.calibrationError)} | ${f2(m.robustness)} | ${
      report.perturbations.map((p) => meanOf(p) + " | ").join("")
    }${m.tokensPerSecond.toFixed(1)} |`,
  );
  return lines.join("\n") + "\n";
}
