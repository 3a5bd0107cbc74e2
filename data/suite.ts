/**
 * The embedded default task suite: five tasks to train on (summarisation, translation into Toy,
 * sentiment classification, arithmetic, multiple choice) and three held-out word games to measure
 * forgetting, all generated from a seed with no files or downloads. Every prompt plus completion
 * fits in {@linkcode SUITE_MAX_CHARS} characters, so with a byte-level tokenizer it fits a
 * 128-token context with EOS to spare.
 *
 * @module
 */

import type { PromptCompletion } from "./examples.ts";
import type { Splits } from "./split.ts";
import { type SplitSizes, type Task, taskSplits } from "./task.ts";
import { arithmeticTask } from "./tasks/arithmetic.ts";
import { multipleChoiceTask } from "./tasks/multiple_choice.ts";
import { sentimentTask } from "./tasks/sentiment.ts";
import { summariseTask } from "./tasks/summarise.ts";
import { translateTask } from "./tasks/translate.ts";
import { countWordsTask, reverseWordsTask, uppercaseTask } from "./tasks/word_games.ts";

/** The longest prompt + completion, in characters, of any suite example. */
export const SUITE_MAX_CHARS = 120;

/** The tasks of the default training mixture. */
export const TRAINED_TASKS: readonly Task[] = Object.freeze([
  summariseTask,
  translateTask,
  sentimentTask,
  arithmeticTask,
  multipleChoiceTask,
]);

/** Tasks never trained on by default, evaluated before and after to measure forgetting. */
export const HELD_OUT_TASKS: readonly Task[] = Object.freeze([
  reverseWordsTask,
  uppercaseTask,
  countWordsTask,
]);

/** Every task of the suite: trained first, then held out. */
export const SUITE_TASKS: readonly Task[] = Object.freeze([...TRAINED_TASKS, ...HELD_OUT_TASKS]);

/** The default split sizes per task. */
export const DEFAULT_SUITE_SIZES: Readonly<SplitSizes> = Object.freeze({
  train: 1000,
  dev: 100,
  test: 100,
});

/**
 * The suite task called `name`; the error lists the names.
 *
 * @example
 * ```ts
 * import { suiteTask } from "../mod.ts";
 * if (suiteTask("translate").metric !== "bleu") throw new Error();
 * ```
 */
export function suiteTask(name: string): Task {
  const task = SUITE_TASKS.find((t) => t.name === name);
  if (!task) {
    throw new Error(
      `Cannot find task "${name}": the suite has ${SUITE_TASKS.map((t) => t.name).join(", ")}`,
    );
  }
  return task;
}

/** One task of a built suite with its rendered splits. */
export interface SuiteTaskData extends Splits<PromptCompletion> {
  /** The task (name, metric, templates). */
  task: Task;
  /** Whether it is held out of training by default. */
  heldOut: boolean;
}

/** Options for {@linkcode buildSuite}. */
export interface SuiteOptions {
  /** Seed of everything generated. Default 0. */
  seed?: number;
  /** Split sizes per task; missing ones default to {@linkcode DEFAULT_SUITE_SIZES}. */
  sizes?: Partial<SplitSizes>;
  /** Which tasks, by name. Default: all of {@linkcode SUITE_TASKS}. */
  tasks?: readonly string[];
}

/**
 * Generates the suite's splits, deterministically from the seed. Each task draws from its own
 * stream (derived from the seed and its name), so choosing other tasks or sizes of other tasks
 * does not change its examples.
 *
 * @example
 * ```ts
 * import { buildSuite } from "../mod.ts";
 * const suite = buildSuite({ seed: 1, sizes: { train: 10, dev: 2, test: 3 } });
 * const mc = suite.find((s) => s.task.name === "multiple_choice");
 * if (mc?.test.length !== 3 || mc.test[0].choices === undefined) throw new Error();
 * ```
 */
export function buildSuite(options: SuiteOptions = {}): SuiteTaskData[] {
  const seed = options.seed ?? 0;
  const sizes = { ...DEFAULT_SUITE_SIZES, ...options.sizes };
  const names = options.tasks ?? SUITE_TASKS.map((t) => t.name);
  if (new Set(names).size !== names.length) {
    throw new Error(`Cannot build the suite: a task is named twice in ${names.join(", ")}`);
  }
  return names.map((name) => {
    const task = suiteTask(name);
    return { task, heldOut: HELD_OUT_TASKS.includes(task), ...taskSplits(task, { seed, sizes }) };
  });
}
