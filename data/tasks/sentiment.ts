/**
 * Classification task: the sentiment of a templated review sentence ("my meal was really
 * good", "the film was not fun"), positive or negative. Negation flips the label, so the words
 * alone do not decide it. Scored with accuracy (the generated label must match).
 *
 * @module
 */

import { defineTask, drawUnique, type Task } from "../task.ts";
import { pick } from "./words.ts";

const SUBJECTS = ["the", "my", "this", "our"] as const;
const NOUNS = ["film", "meal", "book", "song", "game", "show", "hotel", "cake", "trip", "class"];
const GOOD = ["good", "great", "lovely", "fun", "nice", "superb"] as const;
const BAD = ["bad", "awful", "dull", "boring", "poor", "bland"] as const;
const ADVERBS = ["", "very ", "really ", "quite ", "so "] as const;
const LIKED = ["loved", "liked", "enjoyed"] as const;
const DISLIKED = ["hated", "disliked"] as const;

/**
 * One review sentence and whether it is positive, drawn from `rng`: "<who> was [adverb]
 * <adjective>", "<who> was not <adjective>" (the negation flips the label) or "I <verb> <who>".
 * The task's instances use it, and so does the pretraining corpus (data/corpus.ts), which writes
 * reviews without the labels and skips the test split's sentences.
 *
 * @example
 * ```ts
 * import { Rng } from "../../runtime/rng.ts";
 * import { reviewSentence } from "./sentiment.ts";
 * const { input, positive } = reviewSentence(new Rng(1));
 * if (input.length === 0 || typeof positive !== "boolean") throw new Error();
 * ```
 */
export function reviewSentence(rng: { int(n: number): number }): {
  input: string;
  positive: boolean;
} {
  const who = `${pick(rng, SUBJECTS)} ${pick(rng, NOUNS)}`;
  switch (rng.int(3)) {
    case 0: { // "<who> was [adverb] <adjective>"
      const positive = rng.int(2) === 0;
      return {
        input: `${who} was ${pick(rng, ADVERBS)}${pick(rng, positive ? GOOD : BAD)}`,
        positive,
      };
    }
    case 1: { // "<who> was not <adjective>": the negation flips the label
      const good = rng.int(2) === 0;
      return { input: `${who} was not ${pick(rng, good ? GOOD : BAD)}`, positive: !good };
    }
    default: { // "I <verb> <who>"
      const positive = rng.int(2) === 0;
      return { input: `I ${pick(rng, positive ? LIKED : DISLIKED)} ${who}`, positive };
    }
  }
}

/** The two labels, in the order options are shown. */
export const SENTIMENT_LABELS = ["positive", "negative"] as const;

/**
 * The sentiment classification task (metric `accuracy`).
 *
 * @example
 * ```ts
 * import { sentimentTask } from "../../mod.ts";
 * const [inst] = sentimentTask.generate(0, 1);
 * if (inst.answer !== "positive" && inst.answer !== "negative") throw new Error();
 * ```
 */
export const sentimentTask: Task = defineTask({
  name: "sentiment",
  metric: "accuracy",
  description: "Say whether a short review sentence is positive or negative.",
  inputs: ["input"],
  hasOptions: true,
  templates: [
    { prompt: "Review: {input}\nIs this review positive or negative?", completion: "\n{answer}" },
    {
      prompt: "{input}\nSentiment?\nOptions:\n{options}\nAnswer:",
      completion: " {answer}",
      optionStyle: "dash",
    },
    {
      prompt: 'What is the sentiment of "{input}"? {options}\nAnswer:',
      completion: " {answer}",
      optionStyle: "letters",
    },
    { prompt: '"{input}" Is it {options}?', completion: " {answer}", optionStyle: "inline" },
    { prompt: "Text: {input}\nFeeling:", completion: " {answer}" },
    {
      prompt: "Classify: {input}\n{options}\nLabel:",
      completion: " {answer}",
      optionStyle: "numbered",
    },
  ],
  generate: (seed, n) =>
    drawUnique("sentiment", seed, n, (rng) => {
      const { input, positive } = reviewSentence(rng);
      const gold = positive ? 0 : 1;
      return {
        key: input,
        values: { input },
        answer: SENTIMENT_LABELS[gold],
        options: SENTIMENT_LABELS,
        gold,
      };
    }),
});
