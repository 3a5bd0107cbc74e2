import { pyRstrip, pySplit } from "./_python.ts";
import { bleuTokenize, type BleuTokenizer } from "./bleu_tokenize.ts";

/** How segments are preprocessed and counted for BLEU. */
export interface BleuStatisticsOptions {
  /** Tokenizer applied to hypotheses and references. Default "13a". */
  tokenize?: BleuTokenizer;
  /** Lowercase before tokenizing (case-insensitive BLEU). Default false. */
  lowercase?: boolean;
  /** Longest n-gram counted. Default 4. */
  maxNgramOrder?: number;
}

/**
 * The sufficient statistics of one segment for BLEU, as sacreBLEU 2.x's
 * `BLEU._compute_segment_statistics` lays them out:
 * `[hypLen, refLen, correct_1 .. correct_N, total_1 .. total_N]` with N the
 * maximum n-gram order. Summing these over segments and passing the sum to
 * {@linkcode bleuFromStatistics} gives corpus BLEU.
 *
 * Each segment is lowercased (if asked), stripped of trailing whitespace and
 * tokenized. `correct_n` clips each hypothesis n-gram count to the largest
 * count of that n-gram in any one reference; `refLen` is the reference length
 * closest to the hypothesis length, the shorter one on a tie.
 *
 * @example
 * ```ts
 * import { bleuStatistics } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * // The hypothesis has 6 tokens, the references 8 and 2: the closest is 8.
 * // "am" occurs twice but at most once in any reference, so it counts once;
 * // the bigram "am I" only matches the second reference.
 * const stats = bleuStatistics(
 *   "am I am a character sequence",
 *   ["I am a symbol string sequence a a", "am I"],
 *   { tokenize: "none" },
 * );
 * assert.deepEqual(stats, [6, 8, 4, 3, 1, 0, 6, 5, 4, 3]);
 * ```
 */
export function bleuStatistics(
  hypothesis: string,
  references: readonly string[],
  options: BleuStatisticsOptions = {},
): number[] {
  const maxOrder = validMaxOrder(options.maxNgramOrder ?? 4);
  const tokenizer = options.tokenize ?? "13a";
  if (references.length === 0) throw new RangeError("Cannot compute BLEU: no references given");
  const preprocess = (segment: string) =>
    pySplit(bleuTokenize(pyRstrip(options.lowercase ? segment.toLowerCase() : segment), tokenizer));

  const refNgrams = new Map<string, number>();
  const refLengths: number[] = [];
  for (const reference of references) {
    const tokens = preprocess(reference);
    refLengths.push(tokens.length);
    for (const [ngram, count] of countNgrams(tokens, maxOrder)) {
      refNgrams.set(ngram, Math.max(refNgrams.get(ngram) ?? 0, count));
    }
  }

  const hypTokens = preprocess(hypothesis);
  const correct = new Array<number>(maxOrder).fill(0);
  const total = new Array<number>(maxOrder).fill(0);
  for (const [ngram, count] of countNgrams(hypTokens, maxOrder)) {
    const n = ngram.split(" ").length;
    total[n - 1] += count;
    correct[n - 1] += Math.min(count, refNgrams.get(ngram) ?? 0);
  }
  return [hypTokens.length, closestLength(hypTokens.length, refLengths), ...correct, ...total];
}

function validMaxOrder(maxOrder: number): number {
  if (!Number.isInteger(maxOrder) || maxOrder < 1) {
    throw new RangeError(
      `Cannot compute BLEU: maxNgramOrder must be a positive integer, got ${maxOrder}`,
    );
  }
  return maxOrder;
}

// Tokens never contain spaces (they come from a whitespace split), so a space
// is a safe separator inside n-gram keys.
function countNgrams(tokens: readonly string[], maxOrder: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (let n = 1; n <= maxOrder; n++) {
    for (let i = 0; i + n <= tokens.length; i++) {
      const key = tokens.slice(i, i + n).join(" ");
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  }
  return counts;
}

function closestLength(hypLength: number, refLengths: readonly number[]): number {
  let closest = refLengths[0];
  for (const length of refLengths) {
    const diff = Math.abs(hypLength - length);
    const best = Math.abs(hypLength - closest);
    if (diff < best || (diff === best && length < closest)) closest = length;
  }
  return closest;
}
