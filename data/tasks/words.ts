/**
 * The word lists the embedded task suite draws from: short, common words, so that a byte-level
 * model with a 128-token context has room for prompt and answer.
 *
 * @module
 */

/** First names. */
export const NAMES = [
  "Ann",
  "Bob",
  "Cal",
  "Dan",
  "Eve",
  "Fay",
  "Gus",
  "Hal",
  "Ivy",
  "Jo",
  "Kim",
  "Lee",
  "Max",
  "Ned",
  "Oli",
  "Pam",
  "Ray",
  "Sam",
  "Tom",
  "Una",
  "Val",
  "Wes",
  "Zoe",
  "Mia",
] as const;

/** Members of each category, for "which one is a …" questions. No word is in two categories. */
export const CATEGORIES: Readonly<Record<string, readonly string[]>> = {
  animal: ["cat", "dog", "cow", "pig", "hen", "fox", "owl", "bee", "goat", "frog", "bear", "wolf"],
  color: ["red", "blue", "green", "pink", "gray", "black", "white", "brown"],
  fruit: ["apple", "pear", "plum", "lime", "fig", "grape", "peach", "lemon"],
  vehicle: ["car", "bus", "van", "bike", "boat", "train", "ship", "truck"],
  tool: ["hammer", "saw", "drill", "rake", "axe", "spade", "wrench", "chisel"],
};

/** Pairs of opposites. No word appears twice. */
export const OPPOSITES: readonly (readonly [string, string])[] = [
  ["hot", "cold"],
  ["big", "small"],
  ["up", "down"],
  ["fast", "slow"],
  ["old", "new"],
  ["happy", "sad"],
  ["day", "night"],
  ["open", "shut"],
  ["light", "dark"],
  ["wet", "dry"],
  ["full", "empty"],
  ["early", "late"],
  ["high", "low"],
  ["hard", "soft"],
  ["loud", "quiet"],
  ["rich", "poor"],
];

/** Everyday things, for sentences and word games. */
export const THINGS = [
  "ball",
  "book",
  "cup",
  "hat",
  "box",
  "key",
  "bag",
  "pen",
  "kite",
  "lamp",
  "coat",
  "drum",
] as const;

/** Plain words for the held-out word games (copying, reversing, counting, capitalising). */
export const GAME_WORDS: readonly string[] = [
  ...THINGS,
  ...CATEGORIES.animal,
  ...CATEGORIES.color,
  ...CATEGORIES.fruit,
  "sun",
  "moon",
  "tree",
  "rock",
  "sea",
  "rain",
  "star",
  "road",
];

/** `items[rng.int(items.length)]`. */
export function pick<T>(rng: { int(n: number): number }, items: readonly T[]): T {
  return items[rng.int(items.length)];
}

/** `k` distinct items, in random order. */
export function pickDistinct<T>(
  rng: { int(n: number): number },
  items: readonly T[],
  k: number,
): T[] {
  const pool = [...items];
  const out: T[] = [];
  for (let i = 0; i < k; i++) out.push(pool.splice(rng.int(pool.length), 1)[0]);
  return out;
}
