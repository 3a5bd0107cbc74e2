// Characters of scripts written without spaces between words, scored one
// character at a time (the usual choice for Chinese and Japanese ROUGE).
const UNSPACED_CHAR = String.raw`[\p{scx=Han}\p{scx=Hiragana}\p{scx=Katakana}]`;
const TOKEN = new RegExp(
  `${UNSPACED_CHAR}|(?:(?!${UNSPACED_CHAR})[\\p{L}\\p{M}\\p{N}])+`,
  "gu",
);

/**
 * An opt-in Unicode-aware tokenizer for ROUGE on text that is not English;
 * NOT what rouge_score does (see {@linkcode rougeTokenize}), so scores made
 * with it are not comparable to published rouge_score numbers.
 *
 * The text is NFKC-normalised (full-width "Ａ１" becomes "a1") and lowercased.
 * A token is then either a single Han, Hiragana or Katakana character, or a
 * run of other letters, combining marks and digits (`\p{L}\p{M}\p{N}`), so
 * accented words stay whole. Everything else separates tokens and is dropped:
 * spaces, punctuation, symbols and emoji. Other scripts written without spaces
 * (Thai, Lao, Khmer, Burmese) come out as one token per space-separated chunk.
 * No stemming is applied.
 *
 * Pass it as the `tokenizer` option of {@linkcode rouge}.
 *
 * @example
 * ```ts
 * import { rouge, unicodeRougeTokenize } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(unicodeRougeTokenize("Café naïve, 東京へ!"), ["café", "naïve", "東", "京", "へ"]);
 * const scores = rouge("東京都", "京都", { tokenizer: unicodeRougeTokenize });
 * assert.equal(scores.rouge1.recall, 2 / 3);
 * ```
 */
export function unicodeRougeTokenize(text: string): string[] {
  return text.normalize("NFKC").toLowerCase().match(TOKEN) ?? [];
}
