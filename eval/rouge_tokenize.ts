import { porterStem } from "./porter_stem.ts";

/** Options for {@linkcode rougeTokenize}. */
export interface RougeTokenizeOptions {
  /**
   * Porter-stem tokens longer than 3 characters, as rouge_score's `use_stemmer=True`.
   * Default false.
   */
  useStemmer?: boolean;
}

/**
 * rouge_score 0.1.2's default tokenizer (`rouge/tokenize.py`): lowercase, turn
 * every run of characters outside `[a-z0-9]` into one space, split on
 * whitespace, optionally Porter-stem tokens longer than 3 characters, and drop
 * empty tokens.
 *
 * This tokenizer is ASCII-only, which surprises non-English users:
 * - accented letters are separators: "café" gives ["caf"] and "naïve" gives
 *   ["na", "ve"];
 * - text with no ASCII letters or digits gives no tokens at all: Chinese,
 *   Japanese, Greek, Cyrillic, Arabic, emoji... so any ROUGE score on them is 0;
 * - apostrophes and hyphens split words: "don't" gives ["don", "t"] and
 *   "state-of-the-art" four tokens; "1,000.5" gives ["1", "000", "5"];
 * - lowercasing happens first and is Unicode-aware, so the few characters whose
 *   lowercase is ASCII survive: "İ" (U+0130) lowercases to "i" plus a
 *   combining dot, so "İstanbul" gives ["i", "stanbul"], and the Kelvin sign
 *   "K" (U+212A) becomes "k".
 * Use {@linkcode unicodeRougeTokenize} for text that is not English.
 *
 * @example
 * ```ts
 * import { rougeTokenize } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(rougeTokenize("The friends had a meeting."), ["the", "friends", "had", "a", "meeting"]);
 * assert.deepEqual(rougeTokenize("The friends had a meeting.", { useStemmer: true }), ["the", "friend", "had", "a", "meet"]);
 * assert.deepEqual(rougeTokenize("Café 東京 🙂"), ["caf"]);
 * ```
 */
export function rougeTokenize(text: string, options: RougeTokenizeOptions = {}): string[] {
  const spaced = text.toLowerCase().replace(/[^a-z0-9]+/g, " ");
  let tokens = spaced.split(/\s+/);
  if (options.useStemmer) {
    tokens = tokens.map((token) => token.length > 3 ? porterStem(token) : token);
  }
  return tokens.filter((token) => /^[a-z0-9]+$/.test(token));
}
