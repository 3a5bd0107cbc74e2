/**
 * Multi-task mixing, as FLAN and T5 do it: each task's share of the mixture is proportional to its
 * number of examples, capped (`rate ∝ min(n, cap)`) so that a huge task cannot drown the small ones.
 * Explicit weights override the rule for the tasks they name.
 *
 * @module
 */

import { Rng } from "../runtime/rng.ts";
import { deriveSeed } from "./_hash.ts";

/** Options for {@linkcode mixtureRates} and {@linkcode mixTasks}. */
export interface MixtureOptions {
  /** The examples-proportional cap: a task counts as `min(n, cap)` examples. Default 3000 (FLAN). */
  cap?: number;
  /**
   * Explicit shares for some tasks, overriding the rule. If every task has one, they are relative
   * (normalised to sum 1). Otherwise they are fractions of the mixture, summing to at most 1, and
   * the other tasks share the rest in proportion to `min(n, cap)`.
   */
  weights?: Readonly<Record<string, number>>;
}

/**
 * The share of each task in the mixture (summing to 1), from the number of examples per task.
 * Throws, naming the task, on a negative or non-finite count or weight, a weight for an unknown
 * task, explicit weights summing to more than 1, or nothing to mix.
 *
 * @example
 * ```ts
 * import { mixtureRates } from "../mod.ts";
 * // min(n, cap) = 100, 50, 100 → 0.4, 0.2, 0.4
 * const r = mixtureRates({ a: 100, b: 50, c: 5000 }, { cap: 100 });
 * if (r.a !== 0.4 || r.b !== 0.2 || r.c !== 0.4) throw new Error();
 * ```
 */
export function mixtureRates(
  sizes: Readonly<Record<string, number>>,
  options: MixtureOptions = {},
): Record<string, number> {
  const cap = options.cap ?? 3000;
  const weights = options.weights ?? {};
  const names = Object.keys(sizes);
  if (names.length === 0) throw new RangeError("Cannot mix: there are no tasks");
  if (!(cap > 0)) throw new RangeError(`Cannot mix: cap must be > 0, got ${cap}`);
  for (const name of names) {
    const n = sizes[name];
    if (!Number.isInteger(n) || n < 0) {
      throw new RangeError(`Cannot mix: task "${name}" has ${n} examples`);
    }
  }
  for (const [name, w] of Object.entries(weights)) {
    if (!(name in sizes)) {
      throw new RangeError(
        `Cannot mix: weight for unknown task "${name}" (tasks: ${names.join(", ")})`,
      );
    }
    if (!Number.isFinite(w) || w < 0) {
      throw new RangeError(
        `Cannot mix: weight of task "${name}" must be a finite number ≥ 0, got ${w}`,
      );
    }
  }
  const rates: Record<string, number> = {};
  const weighted = names.filter((n) => n in weights);
  const free = names.filter((n) => !(n in weights));
  const explicit = weighted.reduce((s, n) => s + weights[n], 0);
  if (free.length === 0) {
    if (explicit === 0) throw new RangeError("Cannot mix: every weight is 0");
    for (const n of names) rates[n] = weights[n] / explicit;
    return rates;
  }
  if (explicit > 1 + 1e-9) {
    throw new RangeError(
      `Cannot mix: explicit weights sum to ${Number(explicit.toFixed(6))} > 1 while other tasks (${
        free.join(", ")
      }) have none`,
    );
  }
  for (const n of weighted) rates[n] = weights[n];
  const mass = free.reduce((s, n) => s + Math.min(sizes[n], cap), 0);
  const rest = Math.max(0, 1 - explicit);
  if (mass === 0 && rest > 1e-9) {
    throw new RangeError(
      `Cannot mix: tasks without weights (${
        free.join(", ")
      }) have no examples to fill ${rest} of the mixture`,
    );
  }
  for (const n of free) rates[n] = mass === 0 ? 0 : (rest * Math.min(sizes[n], cap)) / mass;
  for (const n of names) {
    if (rates[n] > 0 && sizes[n] === 0) {
      throw new RangeError(`Cannot mix: task "${n}" has weight ${rates[n]} but no examples`);
    }
  }
  return rates;
}

/** One line of a mixture report. */
export interface MixtureShare {
  /** The task name. */
  task: string;
  /** Its examples available for mixing. */
  available: number;
  /** Its target share of the mixture, from {@linkcode mixtureRates}. */
  rate: number;
  /** Examples of it in the mixture. */
  count: number;
  /** `count / size`: its actual share. */
  fraction: number;
  /** `count / available`: how many times it is seen per mixture (above 1, examples repeat). */
  epochs: number;
}

/** A mixed dataset and the proportions it ended up with. */
export interface Mixture<T> {
  /** The examples, shuffled, each tagged with its task. */
  examples: (T & { task: string })[];
  /** One line per task, in input order. */
  report: MixtureShare[];
}

/**
 * Mixes per-task example lists into one shuffled list of `size` examples (default
 * `Σ min(n, cap)`), with per-task counts from {@linkcode mixtureRates} rounded by largest remainder
 * (so they sum to `size` exactly). Each task's examples are taken in a seeded shuffled order,
 * cycling (and reshuffling) when a task needs more than it has. Deterministic given the seed.
 *
 * @example
 * ```ts
 * import { mixTasks } from "../mod.ts";
 * const m = mixTasks(
 *   { add: [{ prompt: "1+1=", completion: "2" }], copy: [{ prompt: "a", completion: "a" }] },
 *   { seed: 0, size: 4 },
 * );
 * if (m.examples.length !== 4 || m.report[0].count !== 2) throw new Error();
 * ```
 */
export function mixTasks<T extends object>(
  tasks: Readonly<Record<string, readonly T[]>>,
  options: MixtureOptions & { seed: number; size?: number },
): Mixture<T> {
  const names = Object.keys(tasks);
  const sizes = Object.fromEntries(names.map((n) => [n, tasks[n].length]));
  const rates = mixtureRates(sizes, options);
  const cap = options.cap ?? 3000;
  const size = options.size ?? names.reduce((s, n) => s + Math.min(sizes[n], cap), 0);
  if (!Number.isInteger(size) || size < 0) {
    throw new RangeError(`Cannot mix: size must be a non-negative integer, got ${size}`);
  }
  const counts = largestRemainder(names.map((n) => rates[n] * size), size);
  const examples: (T & { task: string })[] = [];
  names.forEach((name, i) => {
    const pool = tasks[name];
    const rng = new Rng(deriveSeed(options.seed, `mix ${name}`));
    let order: number[] = [];
    for (let k = 0; k < counts[i]; k++) {
      if (k % pool.length === 0) order = rng.shuffle(Array.from(pool, (_, j) => j));
      examples.push({ ...pool[order[k % pool.length]], task: name });
    }
  });
  new Rng(deriveSeed(options.seed, "mix")).shuffle(examples);
  const report = names.map((task, i) => ({
    task,
    available: sizes[task],
    rate: rates[task],
    count: counts[i],
    fraction: size === 0 ? 0 : counts[i] / size,
    epochs: sizes[task] === 0 ? 0 : counts[i] / sizes[task],
  }));
  return { examples, report };
}

/**
 * A mixture report as a plain-text table, one task a line.
 *
 * @example
 * ```ts
 * import { formatMixture } from "../mod.ts";
 * const text = formatMixture([
 *   { task: "add", available: 10, rate: 0.5, count: 5, fraction: 0.5, epochs: 0.5 },
 * ]);
 * if (!text.includes("add")) throw new Error();
 * ```
 */
export function formatMixture(report: readonly MixtureShare[]): string {
  const width = Math.max(4, ...report.map((r) => r.task.length));
  const head = `${"task".padEnd(width)}  available    count   share  epochs`;
  const rows = report.map((r) =>
    `${r.task.padEnd(width)}  ${String(r.available).padStart(9)}  ${
      String(r.count).padStart(7)
    }  ` +
    `${(100 * r.fraction).toFixed(1).padStart(5)}%  ${r.epochs.toFixed(2).padStart(6)}`
  );
  return [head, ...rows].join("\n");
}

/**
 * Integers summing to `total`, each the floor of its target plus one for the largest remainders.
 * Tasks with a target of 0 never get an example.
 */
function largestRemainder(targets: readonly number[], total: number): number[] {
  const counts = targets.map((t) => Math.floor(t + 1e-9));
  let left = total - counts.reduce((s, c) => s + c, 0);
  const byRemainder = targets
    .map((t, i) => ({ i, r: t - counts[i], t }))
    .filter((x) => x.t > 0)
    .sort((a, b) => b.r - a.r || b.t - a.t || a.i - b.i);
  for (let k = 0; left > 0; k = (k + 1) % byRemainder.length, left--) counts[byRemainder[k].i]++;
  return counts;
}
