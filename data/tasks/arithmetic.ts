/**
 * Arithmetic task: additions and subtractions of numbers below 100 (never negative). Scored
 * with exact match.
 *
 * @module
 */

import { defineTask, drawUnique, type Task } from "../task.ts";

/**
 * The arithmetic task (metric `exact_match`).
 *
 * @example
 * ```ts
 * import { arithmeticTask } from "../../mod.ts";
 * const [inst] = arithmeticTask.generate(0, 1);
 * const { a, b, op } = inst.values;
 * if (Number(inst.answer) !== (op === "+" ? +a + +b : +a - +b)) throw new Error();
 * ```
 */
export const arithmeticTask: Task = defineTask({
  name: "arithmetic",
  metric: "exact_match",
  description: "Add or subtract two numbers below 100.",
  inputs: ["a", "b", "op", "opword"],
  hasOptions: false,
  templates: [
    { prompt: "{a} {op} {b} =", completion: " {answer}" },
    { prompt: "What is {a} {opword} {b}?\nAnswer:", completion: " {answer}" },
    { prompt: "Compute: {a}{op}{b}\nResult:", completion: " {answer}" },
    { prompt: "Q: {a} {opword} {b}\nA:", completion: " {answer}" },
    { prompt: "Calculate {a} {op} {b}.", completion: "\n{answer}" },
  ],
  generate: (seed, n) =>
    drawUnique("arithmetic", seed, n, (rng) => {
      const add = rng.int(2) === 0;
      let a = rng.int(100), b = rng.int(100);
      if (!add && b > a) [a, b] = [b, a];
      const op = add ? "+" : "-";
      return {
        key: `${a}${op}${b}`,
        values: { a: `${a}`, b: `${b}`, op, opword: add ? "plus" : "minus" },
        answer: `${add ? a + b : a - b}`,
      };
    }),
});
