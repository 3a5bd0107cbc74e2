/**
 * Summarisation-like task: a three-sentence paragraph holds one event ("Ann found a big ball.")
 * among two filler sentences (weather, moods, places); the summary is the event without its
 * adjective ("Ann found a ball."). Scored with ROUGE.
 *
 * @module
 */

import { defineTask, drawUnique, type Task } from "../task.ts";
import { NAMES, pick, THINGS } from "./words.ts";

const VERBS = ["found", "lost", "got", "made", "took", "sold", "kept", "fixed"] as const;
const ADJECTIVES = ["big", "small", "new", "red", "blue", "green"] as const;
const FILLERS: readonly ((rng: { int(n: number): number }) => string)[] = [
  (rng) => `It was ${pick(rng, ["sunny", "cold", "windy", "late", "dark", "warm"])}.`,
  (rng) => `${pick(rng, NAMES)} was ${pick(rng, ["sad", "glad", "tired", "calm", "busy"])}.`,
  (rng) =>
    `The ${pick(rng, ["park", "shop", "town", "road"])} was ${pick(rng, ["quiet", "full"])}.`,
];

/**
 * The summarisation task (metric `rouge`).
 *
 * @example
 * ```ts
 * import { summariseTask } from "../../mod.ts";
 * const [inst] = summariseTask.generate(0, 1);
 * if (!inst.values.input.includes(inst.answer.split(" ")[0])) throw new Error();
 * ```
 */
export const summariseTask: Task = defineTask({
  name: "summarise",
  metric: "rouge",
  description: "Summarise a short paragraph into its one event, without adjectives.",
  inputs: ["input"],
  hasOptions: false,
  templates: [
    { prompt: "Summarize: {input}\nSummary:", completion: " {answer}" },
    { prompt: "{input}\nTL;DR:", completion: " {answer}" },
    { prompt: "Text: {input}\nWhat happened?", completion: "\n{answer}" },
    { prompt: "Give the gist.\n{input}\nGist:", completion: " {answer}" },
    { prompt: "{input}\nIn short:", completion: " {answer}" },
  ],
  generate: (seed, n) =>
    drawUnique("summarise", seed, n, (rng) => {
      const name = pick(rng, NAMES), verb = pick(rng, VERBS), thing = pick(rng, THINGS);
      const event = `${name} ${verb} a ${pick(rng, ADJECTIVES)} ${thing}.`;
      const sentences = [pick(rng, FILLERS)(rng), pick(rng, FILLERS)(rng)];
      sentences.splice(rng.int(3), 0, event);
      const input = sentences.join(" ");
      return { key: input, values: { input }, answer: `${name} ${verb} a ${thing}.` };
    }),
});
