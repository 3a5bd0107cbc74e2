import { pySplit } from "./_python.ts";

/** Which normalisations {@linkcode normalizeAnswer} applies; all default to true (SQuAD's). */
export interface NormalizeAnswerOptions {
  /** Lowercase the text. */
  lowercase?: boolean;
  /** Remove ASCII punctuation (Python's `string.punctuation`). */
  stripPunctuation?: boolean;
  /** Remove the whole words "a", "an" and "the" (lowercase only, so lowercase first). */
  stripArticles?: boolean;
  /** Trim, and collapse every run of whitespace to one space. */
  collapseWhitespace?: boolean;
}

// Python's string.punctuation.
const ASCII_PUNCTUATION = /[!"#$%&'()*+,\-./:;<=>?@[\\\]^_`{|}~]/g;
// SQuAD's re.sub(r'\b(a|an|the)\b', ' ', text), where \b is Unicode-aware in
// Python 3: a word character is a letter, a number or "_". (JavaScript's \b
// only knows ASCII, so "éthe" would lose its "the".)
const ARTICLES = /(?<![\p{L}\p{N}_])(?:a|an|the)(?![\p{L}\p{N}_])/gu;

/**
 * Normalises an answer as the official SQuAD evaluation script's
 * `normalize_answer` does: lowercase, remove punctuation, remove articles,
 * collapse whitespace (in that order). Each step can be turned off.
 *
 * Only ASCII punctuation is removed: curly quotes, "«»", "¿" or the
 * ideographic full stop "。" stay.
 *
 * @example
 * ```ts
 * import { normalizeAnswer } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(normalizeAnswer("  The Eiffel-Tower! "), "eiffeltower");
 * assert.equal(normalizeAnswer("The Eiffel Tower", { stripArticles: false }), "the eiffel tower");
 * ```
 */
export function normalizeAnswer(text: string, options: NormalizeAnswerOptions = {}): string {
  if (options.lowercase ?? true) text = text.toLowerCase();
  if (options.stripPunctuation ?? true) text = text.replace(ASCII_PUNCTUATION, "");
  if (options.stripArticles ?? true) text = text.replace(ARTICLES, " ");
  if (options.collapseWhitespace ?? true) text = pySplit(text).join(" ");
  return text;
}
