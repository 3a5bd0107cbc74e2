import { rougeTokenize } from "./rouge_tokenize.ts";

/** Precision, recall and F1 of one ROUGE type, each in [0, 1]. */
export interface RougeScore {
  /** Matches divided by the prediction's n-gram (or token) count. */
  precision: number;
  /** Matches divided by the target's n-gram (or token) count. */
  recall: number;
  /** Harmonic mean of precision and recall; 0 when both are 0. */
  fmeasure: number;
}

/** One {@linkcode RougeScore} per requested ROUGE type, keyed by type name. */
export type RougeScores = Record<string, RougeScore>;

/** Options for {@linkcode rouge}. */
export interface RougeOptions {
  /**
   * Which scores to compute: "rouge1" ... "rouge9" (n-gram overlap), "rougeL"
   * (longest common subsequence over the whole text) and "rougeLsum"
   * (summary-level LCS over newline-separated sentences).
   * Default ["rouge1", "rouge2", "rougeL", "rougeLsum"].
   */
  rougeTypes?: readonly string[];
  /** Porter-stem tokens longer than 3 characters (rouge_score's `use_stemmer`). Default false. */
  useStemmer?: boolean;
  /**
   * Replaces the default tokenizer ({@linkcode rougeTokenize}); `useStemmer`
   * is then ignored, as in rouge_score. See {@linkcode unicodeRougeTokenize}.
   */
  tokenizer?: (text: string) => string[];
}

/**
 * The ROUGE types computed when none are requested.
 *
 * @example
 * ```ts
 * import { DEFAULT_ROUGE_TYPES, rouge } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(Object.keys(rouge("a b", "a b")), DEFAULT_ROUGE_TYPES);
 * ```
 */
export const DEFAULT_ROUGE_TYPES: readonly string[] = ["rouge1", "rouge2", "rougeL", "rougeLsum"];

/**
 * Scores one prediction against one target exactly as rouge_score 0.1.2's
 * `RougeScorer(rouge_types, use_stemmer).score(target, prediction)` does. Note
 * the argument order: the target (reference) comes first.
 *
 * - rougeN: clipped n-gram matches; precision divides by the prediction's
 *   n-gram count and recall by the target's (each at least 1).
 * - rougeL: the LCS length over the whole texts (newlines are just spaces).
 * - rougeLsum: texts are split into sentences on "\n" only (empty lines
 *   dropped); for each target sentence the union of its LCS with every
 *   prediction sentence is counted, without counting any token more often than
 *   it occurs on either side, then divided by the total token counts.
 *
 * A side with no tokens (empty, punctuation only, or non-ASCII text with the
 * default tokenizer) scores 0 for precision, recall and F1.
 *
 * @example
 * ```ts
 * import { rouge } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const scores = rouge("testing one two", "testing one");
 * assert.equal(scores.rouge1.precision, 1);
 * assert.equal(scores.rouge1.recall, 2 / 3);
 * assert.equal(scores.rouge2.fmeasure, 2 / 3);
 * assert.equal(scores.rougeL.fmeasure, 0.8);
 * ```
 */
export function rouge(target: string, prediction: string, options: RougeOptions = {}): RougeScores {
  const rougeTypes = options.rougeTypes ?? DEFAULT_ROUGE_TYPES;
  const tokenize = options.tokenizer ??
    ((text: string) => rougeTokenize(text, { useStemmer: options.useStemmer }));
  const targetTokens = tokenize(target);
  const predictionTokens = tokenize(prediction);
  const scores: RougeScores = {};
  for (const rougeType of rougeTypes) {
    if (rougeType === "rougeL") {
      scores[rougeType] = scoreLcs(targetTokens, predictionTokens);
    } else if (rougeType === "rougeLsum") {
      scores[rougeType] = scoreSummaryLcs(
        sentences(target).map(tokenize),
        sentences(prediction).map(tokenize),
      );
    } else {
      const n = ngramOrder(rougeType);
      scores[rougeType] = scoreNgrams(ngrams(targetTokens, n), ngrams(predictionTokens, n));
    }
  }
  return scores;
}

// "rouge1" .. "rouge9"; rouge_score rejects "rouge0", "rougen" and "rouge10".
function ngramOrder(rougeType: string): number {
  const match = /^rouge([0-9])$/.exec(rougeType);
  if (match === null) throw new RangeError(`Cannot score ROUGE: invalid rouge type "${rougeType}"`);
  const n = Number(match[1]);
  if (n <= 0) throw new RangeError(`Cannot score ROUGE: "${rougeType}" needs a positive n`);
  return n;
}

function fmeasure(precision: number, recall: number): number {
  return precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0;
}

function score(hits: number, predictionCount: number, targetCount: number): RougeScore {
  const precision = hits / predictionCount;
  const recall = hits / targetCount;
  return { precision, recall, fmeasure: fmeasure(precision, recall) };
}

const ZERO: Readonly<RougeScore> = { precision: 0, recall: 0, fmeasure: 0 };

// Sentences for rougeLsum: split on "\n" only, dropping empty strings (but not
// lines of spaces, which simply have no tokens).
function sentences(text: string): string[] {
  return text.split("\n").filter((line) => line.length > 0);
}

function ngrams(tokens: readonly string[], n: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i + n <= tokens.length; i++) {
    const key = tokens.slice(i, i + n).join("\u0000");
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

function total(counts: Map<string, number>): number {
  let sum = 0;
  for (const count of counts.values()) sum += count;
  return sum;
}

function scoreNgrams(target: Map<string, number>, prediction: Map<string, number>): RougeScore {
  let hits = 0;
  for (const [ngram, count] of target) hits += Math.min(count, prediction.get(ngram) ?? 0);
  return score(hits, Math.max(total(prediction), 1), Math.max(total(target), 1));
}

// table[i][j] = LCS length of ref[0..i) and candidate[0..j); (m+1) x (n+1).
function lcsTable(ref: readonly string[], candidate: readonly string[]): Int32Array[] {
  const table = Array.from({ length: ref.length + 1 }, () => new Int32Array(candidate.length + 1));
  for (let i = 1; i <= ref.length; i++) {
    for (let j = 1; j <= candidate.length; j++) {
      table[i][j] = ref[i - 1] === candidate[j - 1]
        ? table[i - 1][j - 1] + 1
        : Math.max(table[i - 1][j], table[i][j - 1]);
    }
  }
  return table;
}

function scoreLcs(target: readonly string[], prediction: readonly string[]): RougeScore {
  if (target.length === 0 || prediction.length === 0) return { ...ZERO };
  const lcs = lcsTable(target, prediction)[target.length][prediction.length];
  return score(lcs, prediction.length, target.length);
}

// Indices into ref of one LCS with the candidate, read back from the end of the
// table. Which LCS is returned matters for the union below, so the tie-breaking
// is rouge_score's: move left only when that cell is strictly larger.
function lcsIndices(ref: readonly string[], candidate: readonly string[]): number[] {
  const table = lcsTable(ref, candidate);
  const indices: number[] = [];
  let i = ref.length;
  let j = candidate.length;
  while (i > 0 && j > 0) {
    if (ref[i - 1] === candidate[j - 1]) {
      indices.push(i - 1);
      i--;
      j--;
    } else if (table[i][j - 1] > table[i - 1][j]) {
      j--;
    } else {
      i--;
    }
  }
  return indices.reverse();
}

function countTokens(sentences: readonly (readonly string[])[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const sentence of sentences) {
    for (const token of sentence) counts.set(token, (counts.get(token) ?? 0) + 1);
  }
  return counts;
}

// Summary-level LCS (ROUGE paper section 3.2) with ROUGE-1.5.5's guard against
// counting a token more times than it occurs in either summary.
function scoreSummaryLcs(
  targetSentences: readonly (readonly string[])[],
  predictionSentences: readonly (readonly string[])[],
): RougeScore {
  if (targetSentences.length === 0 || predictionSentences.length === 0) return { ...ZERO };
  const targetLength = targetSentences.reduce((sum, s) => sum + s.length, 0);
  const predictionLength = predictionSentences.reduce((sum, s) => sum + s.length, 0);
  if (targetLength === 0 || predictionLength === 0) return { ...ZERO };
  const targetLeft = countTokens(targetSentences);
  const predictionLeft = countTokens(predictionSentences);
  let hits = 0;
  for (const ref of targetSentences) {
    const union = new Set<number>();
    for (const candidate of predictionSentences) {
      for (const index of lcsIndices(ref, candidate)) union.add(index);
    }
    for (const index of [...union].sort((a, b) => a - b)) {
      const token = ref[index];
      if ((predictionLeft.get(token) ?? 0) > 0 && (targetLeft.get(token) ?? 0) > 0) {
        hits++;
        predictionLeft.set(token, predictionLeft.get(token)! - 1);
        targetLeft.set(token, targetLeft.get(token)! - 1);
      }
    }
  }
  return score(hits, predictionLength, targetLength);
}
