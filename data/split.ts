/**
 * Deterministic train/dev/test splits, by seeded shuffling (exact sizes) or by seeded hashing of a
 * key (each item's split depends on its key alone, so adding data never moves an item).
 *
 * @module
 */

import { Rng } from "../runtime/rng.ts";
import { deriveSeed, hashString } from "./_hash.ts";

/** The three splits. */
export type SplitName = "train" | "dev" | "test";

/** The fraction of the data in each split; non-negative, summing to 1. */
export interface SplitRatios {
  /** Fraction for training. */
  train: number;
  /** Fraction for model selection. */
  dev: number;
  /** Fraction for the final scores. */
  test: number;
}

/** Items divided into the three splits. */
export interface Splits<T> {
  /** Training items. */
  train: T[];
  /** Development items. */
  dev: T[];
  /** Test items. */
  test: T[];
}

/** The default ratios: 80% train, 10% dev, 10% test. */
export const DEFAULT_SPLIT_RATIOS: Readonly<SplitRatios> = Object.freeze({
  train: 0.8,
  dev: 0.1,
  test: 0.1,
});

/**
 * Throws unless the ratios are finite, non-negative and sum to 1 (within 1e-9).
 *
 * @example
 * ```ts
 * import { validateSplitRatios } from "../mod.ts";
 * validateSplitRatios({ train: 0.7, dev: 0.1, test: 0.2 });
 * ```
 */
export function validateSplitRatios(ratios: SplitRatios): void {
  for (const name of ["train", "dev", "test"] as const) {
    const r = ratios[name];
    if (typeof r !== "number" || !Number.isFinite(r) || r < 0) {
      throw new RangeError(
        `Cannot split: ratio "${name}" must be a finite number ≥ 0, got ${r}`,
      );
    }
  }
  const sum = ratios.train + ratios.dev + ratios.test;
  if (Math.abs(sum - 1) > 1e-9) {
    throw new RangeError(
      `Cannot split: ratios must sum to 1, got ${ratios.train} + ${ratios.dev} + ${ratios.test} = ${sum}`,
    );
  }
}

/**
 * Shuffles `items` with `seed` and cuts them into splits of sizes `round(n·dev)`,
 * `round(n·test)` and the rest for train. The same items and seed give the same splits.
 *
 * @example
 * ```ts
 * import { splitItems } from "../mod.ts";
 * const { train, dev, test } = splitItems([...Array(10).keys()], { seed: 3 });
 * if (train.length !== 8 || dev.length !== 1 || test.length !== 1) throw new Error();
 * ```
 */
export function splitItems<T>(
  items: readonly T[],
  options: { seed: number; ratios?: SplitRatios },
): Splits<T> {
  const ratios = options.ratios ?? DEFAULT_SPLIT_RATIOS;
  validateSplitRatios(ratios);
  const n = items.length;
  const shuffled = new Rng(deriveSeed(options.seed, "split")).shuffle([...items]);
  const nDev = Math.round(n * ratios.dev);
  const nTest = Math.min(Math.round(n * ratios.test), n - nDev);
  return {
    train: shuffled.slice(nDev + nTest),
    dev: shuffled.slice(0, nDev),
    test: shuffled.slice(nDev, nDev + nTest),
  };
}

/**
 * The split of an item with identity `key`, from a seeded hash of the key: stable no matter what
 * other items exist, so equal keys (duplicates) always land in the same split. Sizes match the
 * ratios only in expectation.
 *
 * @example
 * ```ts
 * import { hashSplit } from "../mod.ts";
 * const ratios = { train: 0.8, dev: 0.1, test: 0.1 };
 * if (hashSplit("some prompt", ratios, 0) !== hashSplit("some prompt", ratios, 0)) throw new Error();
 * ```
 */
export function hashSplit(key: string, ratios: SplitRatios, seed: number): SplitName {
  validateSplitRatios(ratios);
  const u = hashString(key, seed) / 4294967296;
  if (u < ratios.train) return "train";
  return u < ratios.train + ratios.dev ? "dev" : "test";
}

/**
 * Splits items by {@linkcode hashSplit} of `keyOf(item)`.
 *
 * @example
 * ```ts
 * import { splitByHash } from "../mod.ts";
 * const items = ["a", "b", "c", "d"];
 * const s = splitByHash(items, (x) => x, { seed: 1 });
 * if (s.train.length + s.dev.length + s.test.length !== 4) throw new Error();
 * ```
 */
export function splitByHash<T>(
  items: readonly T[],
  keyOf: (item: T) => string,
  options: { seed: number; ratios?: SplitRatios },
): Splits<T> {
  const ratios = options.ratios ?? DEFAULT_SPLIT_RATIOS;
  validateSplitRatios(ratios);
  const out: Splits<T> = { train: [], dev: [], test: [] };
  for (const item of items) out[hashSplit(keyOf(item), ratios, options.seed)].push(item);
  return out;
}
