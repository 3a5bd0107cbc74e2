/**
 * The embedded pretraining corpus of the default base model: short plain-English documents built
 * from the suite's word lists (little stories, facts about categories and opposites, counting),
 * plus the held-out tasks' training examples, so the base model can already do the tasks that the
 * default fine-tuning run never trains and forgetting can be measured on them. The trained tasks
 * (summarise, translate, sentiment, arithmetic, multiple choice) are absent on purpose: what the
 * fine-tuned model knows of them comes from fine-tuning.
 *
 * Held-out examples come from `taskSplits(task, { seed, sizes })`'s train split with the default
 * suite sizes, which never overlaps that seed's dev and test splits.
 *
 * @module
 */

import { deriveSeed } from "./_hash.ts";
import { DEFAULT_SUITE_SIZES, HELD_OUT_TASKS } from "./suite.ts";
import { taskSplits } from "./task.ts";
import { CATEGORIES, NAMES, OPPOSITES, pick, THINGS } from "./tasks/words.ts";
import { Rng } from "../runtime/rng.ts";

type R = { int(n: number): number };

const VERBS = ["found", "lost", "got", "made", "took", "sold", "kept", "fixed", "saw", "had"];
const ADJECTIVES = ["big", "small", "new", "old", "red", "blue", "green", "soft", "hard"];
const PLACES = ["park", "shop", "town", "road", "house", "school", "farm", "lake"];
const NUMBER_WORDS = [
  "zero",
  "one",
  "two",
  "three",
  "four",
  "five",
  "six",
  "seven",
  "eight",
  "nine",
  "ten",
];

const SENTENCES: readonly ((r: R) => string)[] = [
  (r) => `${pick(r, NAMES)} ${pick(r, VERBS)} a ${pick(r, ADJECTIVES)} ${pick(r, THINGS)}.`,
  (r) => `${pick(r, NAMES)} ${pick(r, VERBS)} the ${pick(r, THINGS)}.`,
  (r) => `It was ${pick(r, ["sunny", "cold", "windy", "late", "dark", "warm", "early"])}.`,
  (r) => `${pick(r, NAMES)} was ${pick(r, ["sad", "glad", "tired", "calm", "busy", "happy"])}.`,
  (r) => `The ${pick(r, PLACES)} was ${pick(r, ["quiet", "full", "empty", "big", "small"])}.`,
  (r) => `${pick(r, NAMES)} went to the ${pick(r, PLACES)} with ${pick(r, NAMES)}.`,
  (r) => {
    const cat = pick(r, Object.keys(CATEGORIES));
    return `A ${pick(r, CATEGORIES[cat])} is a ${cat}.`;
  },
  (r) => {
    const [a, b] = pick(r, OPPOSITES);
    return r.int(2) ? `The opposite of ${a} is ${b}.` : `${cap(a)} and ${b} are opposites.`;
  },
  (r) => {
    const n = r.int(10) + 1;
    return `${cap(NUMBER_WORDS[n])} is ${n}, and ${n} comes after ${n - 1}.`;
  },
  (r) => `${pick(r, NAMES)} said, "I like the ${pick(r, ADJECTIVES)} ${pick(r, THINGS)}."`,
];

function cap(s: string): string {
  return s[0].toUpperCase() + s.slice(1);
}

/** Options for {@linkcode pretrainCorpus}. */
export interface CorpusOptions {
  /** Seed of the generated text (the held-out examples use the suite's seed 0 splits). */
  seed: number;
  /** Number of plain-text documents. */
  documents: number;
  /** Held-out task training examples per task (taken from the default suite's train split). */
  heldOutExamples: number;
  /** Suite seed whose dev/test splits the held-out examples must not overlap. Default 0. */
  suiteSeed?: number;
}

/**
 * The corpus as documents (strings), shuffled deterministically.
 *
 * @example
 * ```ts
 * import { pretrainCorpus } from "../mod.ts";
 * const docs = pretrainCorpus({ seed: 1, documents: 5, heldOutExamples: 2 });
 * if (docs.length !== 5 + 2 * 3) throw new Error(`got ${docs.length}`);
 * ```
 */
export function pretrainCorpus(options: CorpusOptions): string[] {
  const rng = new Rng(deriveSeed(options.seed, "corpus"));
  const docs: string[] = [];
  for (let d = 0; d < options.documents; d++) {
    const n = 2 + rng.int(4);
    docs.push(Array.from({ length: n }, () => pick(rng, SENTENCES)(rng)).join(" "));
  }
  for (const task of options.heldOutExamples > 0 ? HELD_OUT_TASKS : []) {
    const sizes = {
      ...DEFAULT_SUITE_SIZES,
      train: DEFAULT_SUITE_SIZES.train + options.heldOutExamples,
    };
    const { train } = taskSplits(task, { seed: options.suiteSeed ?? 0, sizes });
    for (const e of train.slice(-options.heldOutExamples)) docs.push(e.prompt + e.completion);
  }
  return rng.shuffle(docs);
}

/**
 * Packs documents (separated by "\n\n") into rows of exactly `T` token ids, for next-token
 * pretraining: labels equal ids. The tail that does not fill a row is dropped.
 *
 * @example
 * ```ts
 * import { packDocuments } from "../mod.ts";
 * const bytes = (s: string) => [...new TextEncoder().encode(s)];
 * // "ab\n\nc\n\n" is 7 tokens: two rows of 3, the last token dropped.
 * const rows = packDocuments(["ab", "c"], bytes, 3);
 * if (rows.length !== 2 || rows[1].join() !== "10,99,10") throw new Error(JSON.stringify(rows));
 * ```
 */
export function packDocuments(
  docs: readonly string[],
  encode: (text: string) => number[],
  T: number,
): number[][] {
  const stream: number[] = [];
  for (const d of docs) stream.push(...encode(d + "\n\n"));
  const rows: number[][] = [];
  for (let i = 0; i + T <= stream.length; i += T) rows.push(stream.slice(i, i + T));
  return rows;
}
