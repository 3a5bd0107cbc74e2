/**
 * The embedded pretraining corpus of the default base model: short plain-English documents built
 * from the suite's word lists (little stories, facts about categories and opposites, counting),
 * the held-out tasks' training examples (so the base model can already do the tasks that the
 * default fine-tuning run never trains, and forgetting can be measured on them), and text of the
 * kinds the trained tasks use, never in their formats: reviews that say how the writer felt
 * ("I hated the hotel. I was upset."), sums written out ("12 plus 5 is 17."), and words of the
 * toy language Toy ("In Toy, cat is miso."). The trained tasks' templates, labels and test
 * problems are absent: what the fine-tuned model knows of the tasks' formats comes from
 * fine-tuning, and it is scored on problems it never saw.
 *
 * Held-out examples come from `taskSplits(task, { seed, sizes })`'s train split with the default
 * suite sizes, which never overlaps that seed's dev and test splits; reviews and sums skip the
 * sentences and problems of the trained tasks' dev and test splits for that seed.
 *
 * @module
 */

import { deriveSeed } from "./_hash.ts";
import { DEFAULT_SUITE_SIZES, HELD_OUT_TASKS } from "./suite.ts";
import { type Task, taskSplits } from "./task.ts";
import { arithmeticTask, workedAnswer } from "./tasks/arithmetic.ts";
import { reviewSentence, sentimentTask } from "./tasks/sentiment.ts";
import { TOY_LEXICON } from "./tasks/translate.ts";
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
  /**
   * Documents of reviews; four times as many of sums (arithmetic needs the most examples) and a
   * quarter as many (rounded up) of Toy words (there are only 19). Default 0.
   */
  taskText?: number;
  /** Suite seed whose dev/test splits the corpus must not overlap. Default 0. */
  suiteSeed?: number;
  /** Further documents of reviews, each followed by how the writer felt. Default 0. */
  reviews?: number;
  /**
   * Documents of sums and differences worked in columns, as {@linkcode workedAnswer} writes
   * them ("Work out 37 + 48: units 7 + 8 = 15, tens 3 + 4 + 1 = 8, so 85."). Default 0.
   */
  workedSums?: number;
  /** Documents of the one-digit facts column steps use ("7 + 8 = 15. 13 - 7 = 6."). Default 0. */
  digitFacts?: number;
  /** Documents comparing two numbers below 100 ("60 is more than 39."). Default 0. */
  comparisons?: number;
  /** Further documents of Toy words. Default 0. */
  toyFacts?: number;
}

/**
 * The corpus as documents (strings), shuffled deterministically.
 *
 * @example
 * ```ts
 * import { pretrainCorpus } from "../mod.ts";
 * const docs = pretrainCorpus({ seed: 1, documents: 5, heldOutExamples: 2, taskText: 1 });
 * if (docs.length !== 5 + 2 * 3 + (1 + 4 + 1)) throw new Error(`got ${docs.length}`);
 * ```
 */
export function pretrainCorpus(options: CorpusOptions): string[] {
  const rng = new Rng(deriveSeed(options.seed, "corpus"));
  const docs: string[] = [];
  for (let d = 0; d < options.documents; d++) {
    const n = 2 + rng.int(4);
    docs.push(Array.from({ length: n }, () => pick(rng, SENTENCES)(rng)).join(" "));
  }
  const suiteSeed = options.suiteSeed ?? 0;
  for (const task of options.heldOutExamples > 0 ? HELD_OUT_TASKS : []) {
    const sizes = {
      ...DEFAULT_SUITE_SIZES,
      train: DEFAULT_SUITE_SIZES.train + options.heldOutExamples,
    };
    const { train } = taskSplits(task, { seed: suiteSeed, sizes });
    for (const e of train.slice(-options.heldOutExamples)) docs.push(e.prompt + e.completion);
  }
  const taskText = options.taskText ?? 0;
  if (taskText > 0) {
    const reviews = new Set(heldOutKeys(sentimentTask, suiteSeed));
    const sums = new Set(heldOutKeys(arithmeticTask, suiteSeed));
    const trng = new Rng(deriveSeed(options.seed, "task text"));
    for (let d = 0; d < taskText; d++) docs.push(reviewDocument(trng, reviews));
    for (let d = 0; d < 4 * taskText; d++) docs.push(sumsDocument(trng, sums));
    for (let d = 0; d < Math.ceil(taskText / 4); d++) docs.push(toyDocument(trng));
  }
  // Each kind below draws from its own stream, so adding one leaves the others' text unchanged.
  const more = (kind: string, n: number | undefined, doc: (r: Rng) => string) => {
    const krng = new Rng(deriveSeed(options.seed, kind));
    for (let d = 0; d < (n ?? 0); d++) docs.push(doc(krng));
  };
  const heldOutReviews = new Set(heldOutKeys(sentimentTask, suiteSeed));
  const heldOutSums = new Set(heldOutKeys(arithmeticTask, suiteSeed));
  more("reviews", options.reviews, (r) => reviewDocument(r, heldOutReviews));
  more("worked sums", options.workedSums, (r) => workedSumsDocument(r, heldOutSums));
  more("digit facts", options.digitFacts, digitFactsDocument);
  more("comparisons", options.comparisons, comparisonsDocument);
  more("toy facts", options.toyFacts, toyDocument);
  return rng.shuffle(docs);
}

/**
 * The keys (canonical inputs) of a task's dev and test problems with the default suite sizes
 * for `suiteSeed`: the same instances `taskSplits` cuts its test and dev splits from, also for
 * the smaller dev splits runs use (test first, then dev).
 */
export function heldOutKeys(task: Task, suiteSeed: number): string[] {
  const { test, dev } = DEFAULT_SUITE_SIZES;
  return task.generate(deriveSeed(suiteSeed, task.name), test + dev).map((i) => i.key);
}

const HAPPY = ["I was happy.", "I was glad.", "I would go again.", "It made my day."];
const UNHAPPY = ["I was sad.", "I was upset.", "I want my money back.", "It spoilt my day."];

/** A sum or a difference of numbers below 100 (never negative) that is not held out. */
function drawProblem(rng: Rng, skip: ReadonlySet<string>): { a: number; b: number; add: boolean } {
  for (;;) {
    const add = rng.int(2) === 0;
    let a = rng.int(100), b = rng.int(100);
    if (!add && b > a) [a, b] = [b, a];
    // The arithmetic task's key: the same problem in any wording is skipped.
    if (!skip.has(`${a}${add ? "+" : "-"}${b}`)) return { a, b, add };
  }
}

/**
 * Two or three sums or differences worked in columns, in the arithmetic task's answer format
 * but not its prompts; none is held out.
 */
function workedSumsDocument(rng: Rng, skip: ReadonlySet<string>): string {
  const n = 2 + rng.int(2);
  return Array.from({ length: n }, () => {
    const { a, b, add } = drawProblem(rng, skip);
    const op = add ? "+" : "-";
    const said = rng.int(2) === 0 ? `${a} ${op} ${b}` : `${a} ${add ? "plus" : "minus"} ${b}`;
    return `Work out ${said}: ${workedAnswer(a, b, op)}.`;
  }).join(" ");
}

/**
 * Six to ten of the one-digit facts a column step uses: x + y, x + y + 1 (a carry), x - y with x
 * up to 18 (after borrowing ten) and x - 1 - y (a borrow), never negative.
 */
function digitFactsDocument(rng: Rng): string {
  const n = 6 + rng.int(5);
  return Array.from({ length: n }, () => {
    const x = rng.int(10), y = rng.int(10);
    switch (rng.int(4)) {
      case 0:
        return `${x} + ${y} = ${x + y}.`;
      case 1:
        return `${x} + ${y} + 1 = ${x + y + 1}.`;
      case 2: {
        const top = x < y ? x + 10 : x;
        return `${top} - ${y} = ${top - y}.`;
      }
      default: {
        const top = Math.max(x, y + 1);
        return `${top} - 1 - ${y} = ${top - 1 - y}.`;
      }
    }
  }).join(" ");
}

/** Two to four comparisons of two different numbers below 100. */
function comparisonsDocument(rng: Rng): string {
  const n = 2 + rng.int(3);
  return Array.from({ length: n }, () => {
    const a = rng.int(100);
    let b = rng.int(99);
    if (b >= a) b++;
    const [big, small] = a > b ? [a, b] : [b, a];
    return rng.int(2) === 0 ? `${big} is more than ${small}.` : `${small} is less than ${big}.`;
  }).join(" ");
}

/** Two to four reviews, each followed by how the writer felt; none is a held-out sentence. */
function reviewDocument(rng: Rng, skip: ReadonlySet<string>): string {
  const n = 2 + rng.int(3);
  const out: string[] = [];
  while (out.length < n) {
    const { input, positive } = reviewSentence(rng);
    if (skip.has(input)) continue;
    out.push(`${cap(input)}. ${pick(rng, positive ? HAPPY : UNHAPPY)}`);
  }
  return out.join(" ");
}

/** Three to five sums or differences of numbers below 100, written out; none is held out. */
function sumsDocument(rng: Rng, skip: ReadonlySet<string>): string {
  const n = 3 + rng.int(3);
  return Array.from({ length: n }, () => {
    const { a, b, add } = drawProblem(rng, skip);
    const c = add ? a + b : a - b;
    const forms = add
      ? [`${a} plus ${b} is ${c}.`, `${a} + ${b} is ${c}.`, `Add ${a} and ${b} to get ${c}.`]
      : [`${a} minus ${b} is ${c}.`, `${a} - ${b} is ${c}.`, `Take ${b} from ${a} to get ${c}.`];
    return pick(rng, forms);
  }).join(" ");
}

const TOY_FORMS: readonly ((english: string, toy: string) => string)[] = [
  (e, t) => `In Toy, ${e} is ${t}.`,
  (e, t) => `The Toy word for ${e} is ${t}.`,
  (e, t) => `${cap(t)} means ${e} in Toy.`,
];

/** Three to five facts about Toy words. */
function toyDocument(rng: Rng): string {
  const words = Object.keys(TOY_LEXICON);
  const n = 3 + rng.int(3);
  return Array.from({ length: n }, () => {
    const word = pick(rng, words);
    return pick(rng, TOY_FORMS)(word, TOY_LEXICON[word]);
  }).join(" ");
}

/**
 * Packs documents into rows of exactly `T` token ids, for next-token pretraining: labels equal
 * ids. Each document is followed by `eosId` (so the model learns to end a text), or by "\n\n"
 * when there is none. The tail that does not fill a row is dropped.
 *
 * @example
 * ```ts
 * import { packDocuments } from "../mod.ts";
 * const bytes = (s: string) => [...new TextEncoder().encode(s)];
 * // "ab" EOS "c" EOS is 5 tokens: two rows of 2, the last token dropped.
 * const rows = packDocuments(["ab", "c"], bytes, 2, 256);
 * if (rows.length !== 2 || rows[1].join() !== "256,99") throw new Error(JSON.stringify(rows));
 * // Without an end-of-text id: "ab\n\nc\n\n", two rows of 3.
 * if (packDocuments(["ab", "c"], bytes, 3)[1].join() !== "10,99,10") throw new Error();
 * ```
 */
export function packDocuments(
  docs: readonly string[],
  encode: (text: string) => number[],
  T: number,
  eosId?: number,
): number[][] {
  const stream: number[] = [];
  for (const d of docs) {
    if (eosId === undefined) stream.push(...encode(d + "\n\n"));
    else stream.push(...encode(d), eosId);
  }
  const rows: number[][] = [];
  for (let i = 0; i + T <= stream.length; i += T) rows.push(stream.slice(i, i + T));
  return rows;
}
