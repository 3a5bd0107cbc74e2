/**
 * Tasks: a generator of distinct instances, the instruction templates that turn an instance into
 * a prompt/completion pair, and the metric that scores it. Templates are validated when the task
 * is defined, so a typo in a placeholder fails at import, not mid-run.
 *
 * @module
 */

import type { MetricName } from "../eval/metrics/table.ts";
import { Rng } from "../runtime/rng.ts";
import { deriveSeed } from "./_hash.ts";
import type { PromptCompletion } from "./examples.ts";
import type { Splits } from "./split.ts";
import {
  ANSWER_FIELD,
  compileTemplate,
  renderTemplate,
  type Template,
  type TemplateSpec,
} from "./template.ts";

/**
 * How a task is scored: a metric of eval/'s metrics table by name (`"rouge"`: ROUGE-L F1 of the
 * generated completion, `"bleu"`: corpus BLEU, `"exact_match"`: the generated completion equals
 * the answer, `"accuracy"`: the same for labels, …), or `"mc_accuracy"` (the option with the
 * highest log-likelihood is the gold one). The names come from the table itself, so a metric
 * added there can be named here; the import is type-only, so data/ loads no eval/ code.
 */
export type TaskMetric = MetricName | "mc_accuracy";

/** One generated problem before a template renders it. */
export interface TaskInstance {
  /** Identity of the problem (its canonical input): equal keys are the same problem. */
  key: string;
  /** A value for every input field of the task. */
  values: Readonly<Record<string, string>>;
  /** The answer, filling `{answer}`; for tasks with options, `options[gold]`. */
  answer: string;
  /** The choices, for tasks with options. */
  options?: readonly string[];
  /** Index of the answer in `options`. */
  gold?: number;
}

/** A task as written by its author; {@linkcode defineTask} validates it. */
export interface TaskSpec {
  /** A short snake_case name, unique within a suite. */
  name: string;
  /** How it is scored. */
  metric: TaskMetric;
  /** One line saying what the task asks. */
  description: string;
  /** The input fields the templates may use (besides `{options}` and `{answer}`). */
  inputs: readonly string[];
  /** Whether instances carry options (and a gold index), filling `{options}`. */
  hasOptions: boolean;
  /** The instruction templates; one is sampled per example. */
  templates: readonly TemplateSpec[];
  /**
   * `n` instances with distinct keys, a pure function of `(seed, n)`; throws if the task cannot
   * make `n` distinct ones.
   */
  generate(seed: number, n: number): TaskInstance[];
}

/** A validated task. Its `generate` checks every instance it returns. */
export interface Task extends Readonly<Omit<TaskSpec, "templates">> {
  /** The compiled templates. */
  readonly templates: readonly Template[];
}

/**
 * Validates a task's name and templates and wraps its generator with checks (distinct keys,
 * every input field present, options and gold consistent). Throws an error naming the task and
 * template on any problem, e.g. an unknown placeholder.
 *
 * @example
 * ```ts
 * import { defineTask, drawUnique } from "../mod.ts";
 * const double = defineTask({
 *   name: "double", metric: "exact_match", description: "Double a number.",
 *   inputs: ["n"], hasOptions: false,
 *   templates: [{ prompt: "Double {n}:", completion: " {answer}" }],
 *   generate: (seed, n) => drawUnique("double", seed, n, (rng) => {
 *     const k = rng.int(1000);
 *     return { key: `${k}`, values: { n: `${k}` }, answer: `${2 * k}` };
 *   }),
 * });
 * if (double.generate(1, 5).length !== 5) throw new Error();
 * ```
 */
export function defineTask(spec: TaskSpec): Task {
  if (!/^[a-z][a-z0-9_]*$/.test(spec.name)) {
    throw new Error(`Cannot define task ${JSON.stringify(spec.name)}: the name must be snake_case`);
  }
  const where = `task "${spec.name}"`;
  if (spec.templates.length === 0) throw new Error(`Cannot define ${where}: it has no templates`);
  for (const f of spec.inputs) {
    if (f === ANSWER_FIELD || f === "options") {
      throw new Error(`Cannot define ${where}: {${f}} is reserved and cannot be an input field`);
    }
  }
  const templates = spec.templates.map((t, i) =>
    compileTemplate(
      t,
      { inputs: spec.inputs, hasOptions: spec.hasOptions },
      `${where} template ${i}`,
    )
  );
  const generate = (seed: number, n: number): TaskInstance[] => {
    if (!Number.isInteger(n) || n < 0) {
      throw new RangeError(`Cannot generate ${where}: n must be a non-negative integer, got ${n}`);
    }
    const instances = spec.generate(seed, n);
    checkInstances(spec, instances, n);
    return instances;
  };
  return Object.freeze({ ...spec, templates: Object.freeze(templates), generate });
}

function checkInstances(spec: TaskSpec, instances: readonly TaskInstance[], n: number): void {
  const where = `task "${spec.name}"`;
  if (instances.length !== n) {
    throw new Error(`Cannot generate ${where}: asked for ${n} instances, got ${instances.length}`);
  }
  const keys = new Set<string>();
  instances.forEach((inst, i) => {
    const bad = (why: string) => new Error(`Cannot generate ${where}: instance ${i}: ${why}`);
    if (keys.has(inst.key)) throw bad(`duplicate key ${JSON.stringify(inst.key)}`);
    keys.add(inst.key);
    for (const f of spec.inputs) {
      if (typeof inst.values[f] !== "string") throw bad(`no value for {${f}}`);
    }
    if (spec.hasOptions) {
      const { options, gold } = inst;
      if (!options || options.length < 2) throw bad("needs at least two options");
      if (new Set(options).size !== options.length) throw bad("has repeated options");
      if (gold === undefined || !Number.isInteger(gold) || gold < 0 || gold >= options.length) {
        throw bad(`gold index ${gold} is not an index of its ${options.length} options`);
      }
      if (options[gold] !== inst.answer) throw bad("answer is not options[gold]");
    }
  });
}

/**
 * Instances drawn with `draw` from a generator seeded with `seed`, skipping repeated keys, until
 * there are `n`. Throws, naming `task`, after 10,000 repeats in a row: the task has (almost) run
 * out of distinct problems.
 *
 * @example
 * ```ts
 * import { drawUnique } from "../mod.ts";
 * // Only 3 distinct problems exist: asking for 3 works, asking for 4 throws.
 * const draw = (rng: { int(n: number): number }) => {
 *   const k = rng.int(3);
 *   return { key: `${k}`, values: { n: `${k}` }, answer: `${k + 1}` };
 * };
 * if (drawUnique("succ", 1, 3, draw).map((i) => i.key).sort().join() !== "0,1,2") throw new Error();
 * let threw = false;
 * try {
 *   drawUnique("succ", 1, 4, draw);
 * } catch {
 *   threw = true;
 * }
 * if (!threw) throw new Error("a task out of problems must throw");
 * ```
 */
export function drawUnique(
  task: string,
  seed: number,
  n: number,
  draw: (rng: Rng) => TaskInstance,
): TaskInstance[] {
  const rng = new Rng(deriveSeed(seed, `generate ${task}`));
  const seen = new Set<string>();
  const out: TaskInstance[] = [];
  let misses = 0;
  while (out.length < n) {
    const inst = draw(rng);
    if (!seen.has(inst.key)) {
      seen.add(inst.key);
      out.push(inst);
      misses = 0;
    } else if (++misses >= 10_000) {
      throw new RangeError(
        `Cannot generate task "${task}": asked for ${n} distinct instances, ` +
          `but 10000 draws in a row after the first ${out.length} repeated earlier ones`,
      );
    }
  }
  return out;
}

/**
 * Renders one instance with template `templateIndex` into a prompt/completion pair tagged with
 * the task name; for tasks with options, `choices` holds the completion for every option and
 * `gold` the right one.
 *
 * @example
 * ```ts
 * import { defineTask, renderInstance } from "../mod.ts";
 * const task = defineTask({
 *   name: "pick", metric: "accuracy", description: "Pick the larger number.",
 *   inputs: ["a", "b"], hasOptions: true,
 *   templates: [
 *     { prompt: "Larger of {a} and {b}? {options}", completion: " {answer}", optionStyle: "inline" },
 *   ],
 *   generate: () => [],
 * });
 * const instance = { key: "3,5", values: { a: "3", b: "5" }, answer: "5", options: ["3", "5"], gold: 1 };
 * const example = renderInstance(task, instance, 0);
 * if (example.completion !== " 5" || example.choices?.join("|") !== " 3| 5" || example.gold !== 1) {
 *   throw new Error(JSON.stringify(example));
 * }
 * ```
 */
export function renderInstance(
  task: Task,
  instance: TaskInstance,
  templateIndex: number,
): PromptCompletion {
  const template = task.templates[templateIndex];
  if (template === undefined) {
    throw new RangeError(`Cannot render task "${task.name}": no template ${templateIndex}`);
  }
  const values = { ...instance.values, [ANSWER_FIELD]: instance.answer };
  const { prompt, completion } = renderTemplate(template, values, instance.options);
  const out: PromptCompletion = { prompt, completion, task: task.name };
  if (instance.options !== undefined && instance.gold !== undefined) {
    out.choices = instance.options.map((o) =>
      renderTemplate(template, { ...values, [ANSWER_FIELD]: o }, instance.options).completion
    );
    out.gold = instance.gold;
  }
  return out;
}

/**
 * Renders instances, each with a template sampled by a generator seeded with `seed` (FLAN-style:
 * the same task in many wordings).
 *
 * @example
 * ```ts
 * import { renderInstances, suiteTask } from "../mod.ts";
 * const task = suiteTask("arithmetic");
 * const examples = renderInstances(task, task.generate(0, 3), 0);
 * if (examples.some((e) => e.task !== "arithmetic")) throw new Error();
 * ```
 */
export function renderInstances(
  task: Task,
  instances: readonly TaskInstance[],
  seed: number,
): PromptCompletion[] {
  const rng = new Rng(deriveSeed(seed, `templates ${task.name}`));
  return instances.map((inst) => renderInstance(task, inst, rng.int(task.templates.length)));
}

/** How many instances each split of a task gets. */
export interface SplitSizes {
  /** Training examples. */
  train: number;
  /** Development examples. */
  dev: number;
  /** Test examples. */
  test: number;
}

/**
 * A task's train/dev/test splits: `test + dev + train` distinct instances generated from a seed
 * derived from (seed, task name), cut in that order (so no problem is in two splits, and the test
 * split does not change with the train size) and rendered with sampled templates, each split with
 * its own template stream.
 *
 * @example
 * ```ts
 * import { suiteTask, taskSplits } from "../mod.ts";
 * const s = taskSplits(suiteTask("arithmetic"), { seed: 0, sizes: { train: 20, dev: 5, test: 5 } });
 * if (s.train.length !== 20 || s.test.length !== 5) throw new Error();
 * ```
 */
export function taskSplits(
  task: Task,
  options: { seed: number; sizes: SplitSizes },
): Splits<PromptCompletion> {
  const { seed, sizes } = options;
  for (const name of ["train", "dev", "test"] as const) {
    if (!Number.isInteger(sizes[name]) || sizes[name] < 0) {
      throw new RangeError(
        `Cannot split task "${task.name}": size of "${name}" must be a non-negative integer, got ${
          sizes[name]
        }`,
      );
    }
  }
  const all = task.generate(deriveSeed(seed, task.name), sizes.train + sizes.dev + sizes.test);
  // Test first, then dev: the test set depends on (seed, test size) alone, so runs with more or
  // less training data are scored on the same problems.
  const test = all.slice(0, sizes.test);
  const dev = all.slice(sizes.test, sizes.test + sizes.dev);
  const train = all.slice(sizes.test + sizes.dev);
  return {
    train: renderInstances(task, train, deriveSeed(seed, "train")),
    dev: renderInstances(task, dev, deriveSeed(seed, "dev")),
    test: renderInstances(task, test, deriveSeed(seed, "test")),
  };
}
