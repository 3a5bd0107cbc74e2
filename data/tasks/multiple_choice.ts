/**
 * Multiple-choice questions with three or four options: "Which one is a fruit?", "What is the
 * opposite of hot?", "Which number is the largest?". Each instance stores its options and the gold
 * index; it is scored by log-likelihood (the option the model finds most likely must be the gold
 * one).
 *
 * @module
 */

import type { Rng } from "../../runtime/rng.ts";
import { defineTask, drawUnique, type Task } from "../task.ts";
import { CATEGORIES, OPPOSITES, pick, pickDistinct } from "./words.ts";

/** A question, its options and the index of the right one. */
interface Question {
  question: string;
  options: string[];
  gold: number;
}

function category(rng: Rng, k: number): Question {
  const names = Object.keys(CATEGORIES);
  const [target, ...others] = pickDistinct(rng, names, k);
  const right = pick(rng, CATEGORIES[target]);
  const wrong = others.map((c) => pick(rng, CATEGORIES[c]));
  return withAnswer(rng, `Which one is a ${target}?`, right, wrong);
}

function opposite(rng: Rng, k: number): Question {
  const [pair, ...others] = pickDistinct(rng, OPPOSITES, k);
  const flip = rng.int(2);
  const wrong = others.map((p) => p[rng.int(2)]);
  return withAnswer(rng, `What is the opposite of ${pair[flip]}?`, pair[1 - flip], wrong);
}

function largest(rng: Rng, k: number): Question {
  const numbers = pickDistinct(rng, Array.from({ length: 100 }, (_, i) => i), k);
  const max = Math.max(...numbers);
  const wrong = numbers.filter((x) => x !== max).map(String);
  return withAnswer(rng, "Which number is the largest?", String(max), wrong);
}

function withAnswer(rng: Rng, question: string, right: string, wrong: string[]): Question {
  const gold = rng.int(wrong.length + 1);
  const options = [...wrong];
  options.splice(gold, 0, right);
  return { question, options, gold };
}

/**
 * The multiple-choice task (metric `mc_accuracy`).
 *
 * @example
 * ```ts
 * import { multipleChoiceTask } from "../../mod.ts";
 * const [inst] = multipleChoiceTask.generate(0, 1);
 * if (inst.options?.[inst.gold ?? -1] !== inst.answer) throw new Error();
 * ```
 */
export const multipleChoiceTask: Task = defineTask({
  name: "multiple_choice",
  metric: "mc_accuracy",
  description:
    "Pick the right option (3 or 4) for a question about categories, opposites or numbers.",
  inputs: ["question"],
  hasOptions: true,
  templates: [
    {
      prompt: "Question: {question}\nOptions:\n{options}\nAnswer:",
      completion: " {answer}",
      optionStyle: "dash",
    },
    { prompt: "{question} {options}\nAnswer:", completion: " {answer}", optionStyle: "letters" },
    {
      prompt: "{question}\nChoose one: {options}.\nAnswer:",
      completion: " {answer}",
      optionStyle: "inline",
    },
    {
      prompt: "Q: {question}\n{options}\nA:",
      completion: " {answer}",
      optionStyle: "numbered",
    },
    {
      prompt: "Pick the answer.\n{question}\n{options}\n",
      completion: "{answer}",
      optionStyle: "dash",
    },
  ],
  generate: (seed, n) =>
    drawUnique("multiple_choice", seed, n, (rng) => {
      const k = 3 + rng.int(2);
      const { question, options, gold } = [category, opposite, largest][rng.int(3)](rng, k);
      return {
        key: `${question} ${options.join("|")}`,
        values: { question },
        answer: options[gold],
        options,
        gold,
      };
    }),
});
