/**
 * Arithmetic task: additions and subtractions of numbers below 100 (never negative), answered
 * in column steps ending with the result ({@linkcode workedAnswer}: "units 7 + 8 = 15, tens 3 +
 * 4 + 1 = 8, so 85"). Scored with exact match of the whole worked answer.
 *
 * Why worked answers: the result's tens digit comes first but depends on the units' carry, which
 * a small model must work out in one step; measured on the embedded base (full fine-tuning on
 * this task alone), plain answers reached 3% exact match after 25,600 examples, worked answers
 * 46% after 12,800. Each step is a one-digit fact or a copy, and the carry is written down.
 *
 * @module
 */

import { defineTask, drawUnique, type Task } from "../task.ts";

/**
 * `a op b` worked in columns: the units (borrowing ten when a subtraction needs it), then the
 * tens with the carry or the borrow, then the result. Operands are below 100; a difference is
 * never negative.
 *
 * @example
 * ```ts
 * import { workedAnswer } from "./arithmetic.ts";
 * if (workedAnswer(37, 48, "+") !== "units 7 + 8 = 15, tens 3 + 4 + 1 = 8, so 85") throw new Error();
 * if (workedAnswer(83, 47, "-") !== "units 13 - 7 = 6, tens 8 - 1 - 4 = 3, so 36") throw new Error();
 * if (workedAnswer(5, 3, "-") !== "units 5 - 3 = 2, tens 0 - 0 = 0, so 2") throw new Error();
 * ```
 */
export function workedAnswer(a: number, b: number, op: "+" | "-"): string {
  if (!(Number.isInteger(a) && Number.isInteger(b) && a >= 0 && b >= 0 && a < 100 && b < 100)) {
    throw new RangeError(`Cannot work out ${a} ${op} ${b}: operands must be integers 0-99`);
  }
  if (op === "-" && b > a) throw new RangeError(`Cannot work out ${a} - ${b}: it is negative`);
  const [aTens, aUnits, bTens, bUnits] = [Math.floor(a / 10), a % 10, Math.floor(b / 10), b % 10];
  if (op === "+") {
    const units = aUnits + bUnits, carry = units >= 10;
    const tens = `${aTens} + ${bTens}${carry ? " + 1" : ""} = ${aTens + bTens + (carry ? 1 : 0)}`;
    return `units ${aUnits} + ${bUnits} = ${units}, tens ${tens}, so ${a + b}`;
  }
  const borrow = aUnits < bUnits, top = aUnits + (borrow ? 10 : 0);
  const tens = `${aTens}${borrow ? " - 1" : ""} - ${bTens} = ${aTens - (borrow ? 1 : 0) - bTens}`;
  return `units ${top} - ${bUnits} = ${top - bUnits}, tens ${tens}, so ${a - b}`;
}

/**
 * The arithmetic task (metric `exact_match`).
 *
 * @example
 * ```ts
 * import { arithmeticTask } from "../../mod.ts";
 * const [inst] = arithmeticTask.generate(0, 1);
 * const { a, b, op } = inst.values;
 * if (!inst.answer.endsWith(`so ${op === "+" ? +a + +b : +a - +b}`)) throw new Error();
 * ```
 */
export const arithmeticTask: Task = defineTask({
  name: "arithmetic",
  metric: "exact_match",
  description: "Add or subtract two numbers below 100, in column steps.",
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
      const op: "+" | "-" = add ? "+" : "-";
      return {
        key: `${a}${op}${b}`,
        values: { a: `${a}`, b: `${b}`, op, opword: add ? "plus" : "minus" },
        answer: workedAnswer(a, b, op),
      };
    }),
});
