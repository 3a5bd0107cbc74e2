/**
 * Held-out word games, kept out of the training mixture to measure forgetting: reversing the
 * order of a few words, writing them in capitals, and counting them. Each is scored with exact
 * match.
 *
 * @module
 */

import { defineTask, drawUnique, type Task } from "../task.ts";
import { GAME_WORDS, pick } from "./words.ts";

function words(rng: { int(n: number): number }, min: number, max: number): string[] {
  return Array.from({ length: min + rng.int(max - min + 1) }, () => pick(rng, GAME_WORDS));
}

/**
 * Reverse the order of 3 to 5 words (metric `exact_match`).
 *
 * @example
 * ```ts
 * import { reverseWordsTask } from "../../mod.ts";
 * const [inst] = reverseWordsTask.generate(0, 1);
 * if (inst.values.input.split(" ").reverse().join(" ") !== inst.answer) throw new Error();
 * ```
 */
export const reverseWordsTask: Task = defineTask({
  name: "reverse_words",
  metric: "exact_match",
  description: "Write a few words in reverse order.",
  inputs: ["input"],
  hasOptions: false,
  templates: [
    { prompt: "Reverse the words: {input}\nOutput:", completion: " {answer}" },
    { prompt: "Words: {input}\nBackwards:", completion: " {answer}" },
    { prompt: "Write these words last to first.\n{input}\n", completion: "{answer}" },
    { prompt: "{input}\nReversed:", completion: " {answer}" },
    { prompt: 'Flip the word order of "{input}".', completion: "\n{answer}" },
  ],
  generate: (seed, n) =>
    drawUnique("reverse_words", seed, n, (rng) => {
      const list = words(rng, 3, 5);
      const input = list.join(" ");
      return { key: input, values: { input }, answer: [...list].reverse().join(" ") };
    }),
});

/**
 * Write 2 to 4 words in capital letters (metric `exact_match`).
 *
 * @example
 * ```ts
 * import { uppercaseTask } from "../../mod.ts";
 * const [inst] = uppercaseTask.generate(0, 1);
 * if (inst.values.input.toUpperCase() !== inst.answer) throw new Error();
 * ```
 */
export const uppercaseTask: Task = defineTask({
  name: "uppercase",
  metric: "exact_match",
  description: "Write a few words in capital letters.",
  inputs: ["input"],
  hasOptions: false,
  templates: [
    { prompt: "Uppercase: {input}\nOutput:", completion: " {answer}" },
    { prompt: "Write in capitals: {input}\n", completion: "{answer}" },
    { prompt: "{input}\nIn capital letters:", completion: " {answer}" },
    { prompt: "Shout this: {input}", completion: "\n{answer}" },
    { prompt: "Text: {input}\nCaps:", completion: " {answer}" },
  ],
  generate: (seed, n) =>
    drawUnique("uppercase", seed, n, (rng) => {
      const input = words(rng, 2, 4).join(" ");
      return { key: input, values: { input }, answer: input.toUpperCase() };
    }),
});

/**
 * Count 1 to 7 words (metric `exact_match`).
 *
 * @example
 * ```ts
 * import { countWordsTask } from "../../mod.ts";
 * const [inst] = countWordsTask.generate(0, 1);
 * if (inst.values.input.split(" ").length !== Number(inst.answer)) throw new Error();
 * ```
 */
export const countWordsTask: Task = defineTask({
  name: "count_words",
  metric: "exact_match",
  description: "Count the words in a short list.",
  inputs: ["input"],
  hasOptions: false,
  templates: [
    { prompt: "How many words? {input}\nAnswer:", completion: " {answer}" },
    { prompt: "Count the words: {input}\nCount:", completion: " {answer}" },
    { prompt: "{input}\nNumber of words:", completion: " {answer}" },
    { prompt: "Words: {input}\nHow many?", completion: " {answer}" },
    { prompt: 'Q: How many words are in "{input}"?\nA:', completion: " {answer}" },
  ],
  generate: (seed, n) =>
    drawUnique("count_words", seed, n, (rng) => {
      const list = words(rng, 1, 7);
      const input = list.join(" ");
      return { key: input, values: { input }, answer: `${list.length}` };
    }),
});
