import { codePoints, pySplit } from "./_python.ts";

/** The sacreBLEU tokenizers available here: "13a" (default), "intl", "char" and "none". */
export type BleuTokenizer = "13a" | "intl" | "char" | "none";

const BLEU_TOKENIZERS: readonly BleuTokenizer[] = ["13a", "intl", "char", "none"];

// sacreBLEU's TokenizerRegexp (tokenizers/tokenizer_re.py), the mteval-v13a rules.
const RULES_13A: readonly [RegExp, string][] = [
  // Split off every ASCII symbol and punctuation mark except ' , - . (and the
  // space, which the class also contains: harmless).
  [/([{-~[-` -&(-+:-@\/])/g, " $1 "],
  // Split off a period or comma unless it sits between digits.
  [/([^0-9])([.,])/g, "$1 $2 "],
  [/([.,])([^0-9])/g, " $1 $2"],
  // Split off a dash that follows a digit.
  [/([0-9])(-)/g, "$1 $2 "],
];

// sacreBLEU's TokenizerV14International (tokenizers/tokenizer_intl.py), mteval-v14.
const RULES_INTL: readonly [RegExp, string][] = [
  [/(\P{N})(\p{P})/gu, "$1 $2 "],
  [/(\p{P})(\P{N})/gu, " $1 $2"],
  [/(\p{S})/gu, " $1 "],
];

function applyRules(line: string, rules: readonly [RegExp, string][]): string {
  for (const [pattern, replacement] of rules) line = line.replace(pattern, replacement);
  return pySplit(line).join(" ");
}

/**
 * Tokenizes one segment as sacreBLEU 2.x does before counting BLEU n-grams,
 * returning the tokens joined by single spaces.
 *
 * - "13a" (mteval-v13a, the default): removes "<skipped>", joins lines ("-\n"
 *   is deleted, "\n" becomes a space), unescapes exactly four HTML entities in
 *   this order: `&quot;` `&amp;` `&lt;` `&gt;` (not `&apos;`, and since `&amp;`
 *   goes before `&lt;`, "&amp;lt;" ends up as "<"), then pads the line with a
 *   space on each side and splits off punctuation: every ASCII symbol except
 *   `'` and `-`, and `.` or `,` unless between digits, so "1,000.5" stays one
 *   token while a sentence-final "2020." becomes "2020 ." thanks to the
 *   padding; a dash is split off only after a digit ("1-2" gives "1 - 2" but
 *   "state-of-the-art" stays whole); apostrophes never split ("don't").
 * - "intl" (mteval-v14): splits off Unicode punctuation (`\p{P}`) when the
 *   character before it, or the one after it, is not a number (`\p{N}`), and
 *   every symbol (`\p{S}`); no padding, so a sentence-final "2020." stays one
 *   token, as in mteval-v14. No entities are unescaped.
 * - "char": joins the characters (code points) with spaces, so each is a
 *   token once BLEU splits on whitespace; whitespace itself disappears.
 * - "none": the segment unchanged (BLEU then splits it on whitespace).
 *
 * @example
 * ```ts
 * import { bleuTokenize } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(bleuTokenize("It wasn't surprising."), "It wasn't surprising .");
 * assert.equal(bleuTokenize("It cost $1,000.5 in 2020."), "It cost $ 1,000.5 in 2020 .");
 * assert.equal(bleuTokenize("It cost $1,000.5 in 2020.", "intl"), "It cost $ 1,000.5 in 2020.");
 * assert.equal(bleuTokenize("dog", "char"), "d o g");
 * ```
 */
export function bleuTokenize(line: string, tokenizer: BleuTokenizer = "13a"): string {
  switch (tokenizer) {
    case "13a": {
      line = line.replaceAll("<skipped>", "").replaceAll("-\n", "").replaceAll("\n", " ");
      if (line.includes("&")) {
        line = line.replaceAll("&quot;", '"').replaceAll("&amp;", "&")
          .replaceAll("&lt;", "<").replaceAll("&gt;", ">");
      }
      return applyRules(` ${line} `, RULES_13A);
    }
    case "intl":
      return applyRules(line, RULES_INTL);
    case "char":
      return codePoints(line).join(" ");
    case "none":
      return line;
    default:
      throw new RangeError(
        `Cannot tokenize: unknown BLEU tokenizer "${tokenizer}" (expected one of ${
          BLEU_TOKENIZERS.join(", ")
        })`,
      );
  }
}
