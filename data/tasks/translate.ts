/**
 * Translation into Toy, a rule-based language: each English word has one Toy word (a fixed
 * lexicon), "the" is dropped, adjectives follow their noun and the verb goes last (subject,
 * object, verb). "the big cat sees the dog" becomes "miso gra rulo tak". Scored with BLEU.
 *
 * @module
 */

import { defineTask, drawUnique, type Task } from "../task.ts";
import { pick } from "./words.ts";

const NOUNS: Readonly<Record<string, string>> = {
  cat: "miso",
  dog: "rulo",
  bird: "pika",
  fish: "tano",
  man: "zeb",
  girl: "lin",
  boy: "dak",
  king: "vor",
};
const ADJECTIVES: Readonly<Record<string, string>> = {
  big: "gra",
  small: "pim",
  red: "ruk",
  old: "sev",
  happy: "jol",
  sad: "mur",
};
const VERBS: Readonly<Record<string, string>> = {
  sees: "tak",
  likes: "mev",
  eats: "nom",
  finds: "fel",
  helps: "sud",
};

/** The English → Toy lexicon (nouns, adjectives and verbs). */
export const TOY_LEXICON: Readonly<Record<string, string>> = { ...NOUNS, ...ADJECTIVES, ...VERBS };

/**
 * Translates an English sentence of the form `the [adj] noun verb the [adj] noun` into Toy.
 * Throws on any other form or an unknown word.
 *
 * @example
 * ```ts
 * import { toToy } from "../../mod.ts";
 * if (toToy("the big cat sees the dog") !== "miso gra rulo tak") throw new Error();
 * ```
 */
export function toToy(sentence: string): string {
  const words = sentence.split(" ");
  const bad = () =>
    new Error(
      `Cannot translate ${JSON.stringify(sentence)}: not "the [adj] noun verb the [adj] noun"`,
    );
  const phrase = (): string[] => {
    if (words.shift() !== "the") throw bad();
    const w = words.shift() ?? "";
    if (w in ADJECTIVES) {
      const noun = words.shift() ?? "";
      if (!(noun in NOUNS)) throw bad();
      return [NOUNS[noun], ADJECTIVES[w]];
    }
    if (!(w in NOUNS)) throw bad();
    return [NOUNS[w]];
  };
  const subject = phrase();
  const verb = words.shift() ?? "";
  if (!(verb in VERBS)) throw bad();
  const object = phrase();
  if (words.length > 0) throw bad();
  return [...subject, ...object, VERBS[verb]].join(" ");
}

/**
 * The translation task (metric `bleu`).
 *
 * @example
 * ```ts
 * import { toToy, translateTask } from "../../mod.ts";
 * const [inst] = translateTask.generate(0, 1);
 * if (toToy(inst.values.input) !== inst.answer) throw new Error();
 * ```
 */
export const translateTask: Task = defineTask({
  name: "translate",
  metric: "bleu",
  description: "Translate an English sentence into the rule-based toy language Toy.",
  inputs: ["input"],
  hasOptions: false,
  templates: [
    { prompt: "Translate to Toy: {input}\nToy:", completion: " {answer}" },
    { prompt: "English: {input}\nToy:", completion: " {answer}" },
    { prompt: 'How do you say "{input}" in Toy?', completion: "\n{answer}" },
    { prompt: "{input}\nIn Toy:", completion: " {answer}" },
    { prompt: "Say this in Toy.\n{input}\n", completion: "{answer}" },
  ],
  generate: (seed, n) =>
    drawUnique("translate", seed, n, (rng) => {
      const phrase = () => {
        const adj = rng.int(Object.keys(ADJECTIVES).length + 1);
        const noun = pick(rng, Object.keys(NOUNS));
        return adj === 0 ? `the ${noun}` : `the ${Object.keys(ADJECTIVES)[adj - 1]} ${noun}`;
      };
      const input = `${phrase()} ${pick(rng, Object.keys(VERBS))} ${phrase()}`;
      return { key: input, values: { input }, answer: toToy(input) };
    }),
});
