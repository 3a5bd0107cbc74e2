import { chrfSettings, fScore } from "./_chrf.ts";
import { codePoints, pySplit } from "./_python.ts";
import type { ChrfOptions } from "./chrf_from_statistics.ts";

// Python's string.punctuation, which chrF++ splits off word edges.
const PUNCTUATION = new Set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~");

/**
 * The sufficient statistics of one segment for chrF, as sacreBLEU 2.x's
 * `CHRF._compute_segment_statistics`: one triple `[hypothesis n-grams,
 * reference n-grams, matches]` per order, character orders 1..charOrder then
 * word orders 1..wordOrder. With several references, the triples of the
 * reference with the best chrF are returned (the first on a tie).
 *
 * Character n-grams are taken over code points after removing all whitespace
 * (unless `whitespace`). For word n-grams (chrF++), words are split on
 * whitespace and one ASCII punctuation mark is split off the end of a word, or
 * else off its start ("(hi)" gives "(hi" and ")"). Where the reference has no
 * n-gram of some order, the hypothesis count for that order is recorded as 0.
 *
 * @example
 * ```ts
 * import { chrfStatistics } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * // "a b" loses its space: unigrams a, b and the bigram "ab" match "abc".
 * const stats = chrfStatistics("a b", ["abc"], { charOrder: 3 });
 * assert.deepEqual(stats, [2, 3, 2, 1, 2, 1, 0, 1, 0]);
 * ```
 */
export function chrfStatistics(
  hypothesis: string,
  references: readonly string[],
  options: ChrfOptions = {},
): number[] {
  const settings = chrfSettings(options);
  if (references.length === 0) throw new RangeError("Cannot compute chrF: no references given");
  const extract = (segment: string): Map<string, number>[] => {
    if (settings.lowercase) segment = segment.toLowerCase();
    const chars = codePoints(settings.whitespace ? segment : pySplit(segment).join(""));
    const counters: Map<string, number>[] = [];
    for (let n = 1; n <= settings.charOrder; n++) counters.push(countNgrams(chars, n, ""));
    if (settings.wordOrder > 0) {
      const words = splitPunctuation(segment);
      for (let n = 1; n <= settings.wordOrder; n++) counters.push(countNgrams(words, n, " "));
    }
    return counters;
  };

  const hypNgrams = extract(hypothesis);
  const order = settings.charOrder + settings.wordOrder;
  let best: number[] = [];
  let bestScore = -1;
  for (const reference of references) {
    const refNgrams = extract(reference);
    const stats = hypNgrams.flatMap((hyp, k) => matchStatistics(hyp, refNgrams[k]));
    const score = fScore(stats, order, settings.beta, settings.epsSmoothing);
    if (score > bestScore) {
      bestScore = score;
      best = stats;
    }
  }
  return best;
}

function countNgrams(items: readonly string[], n: number, separator: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i + n <= items.length; i++) {
    const key = items.slice(i, i + n).join(separator);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

function matchStatistics(hyp: Map<string, number>, ref: Map<string, number>): number[] {
  let hypCount = 0;
  let matches = 0;
  let refCount = 0;
  for (const [ngram, count] of hyp) {
    hypCount += count;
    matches += Math.min(count, ref.get(ngram) ?? 0);
  }
  for (const count of ref.values()) refCount += count;
  return [ref.size > 0 ? hypCount : 0, refCount, matches];
}

// sacreBLEU's CHRF._remove_punctuation: at most one mark per word, the end first.
function splitPunctuation(segment: string): string[] {
  const words: string[] = [];
  for (const word of pySplit(segment)) {
    const chars = codePoints(word);
    if (chars.length === 1) {
      words.push(word);
    } else if (PUNCTUATION.has(chars[chars.length - 1])) {
      words.push(chars.slice(0, -1).join(""), chars[chars.length - 1]);
    } else if (PUNCTUATION.has(chars[0])) {
      words.push(chars[0], chars.slice(1).join(""));
    } else {
      words.push(word);
    }
  }
  return words;
}
