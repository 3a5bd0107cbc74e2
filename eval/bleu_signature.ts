import { pyFormatFixed } from "./_python.ts";
import { BLEU_SMOOTH_DEFAULTS, type BleuSmoothMethod } from "./bleu_from_statistics.ts";
import type { BleuTokenizer } from "./bleu_tokenize.ts";

/**
 * The sacreBLEU release whose behaviour eval/ reproduces, as signatures print it.
 *
 * @example
 * ```ts
 * import { SACREBLEU_VERSION, sentenceChrf } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * assert.ok(sentenceChrf("a", ["a"]).signature.endsWith(`|version:${SACREBLEU_VERSION}`));
 * ```
 */
export const SACREBLEU_VERSION = "2.6.0";

/** What a BLEU signature records. */
export interface BleuSignatureOptions {
  /** References per segment, or "var" when segments have different numbers of references. */
  nrefs: number | "var";
  /** Default false ("case:mixed"); true prints "case:lc". */
  lowercase?: boolean;
  /** Default false. */
  effectiveOrder?: boolean;
  /** Default "13a". */
  tokenize?: BleuTokenizer;
  /** Default "exp". */
  smoothMethod?: BleuSmoothMethod;
  /** Printed with two decimals for "floor" and "add-k" (their defaults when unset). */
  smoothValue?: number;
}

/**
 * sacreBLEU 2.x's BLEU signature string, which says exactly how a score was
 * computed: `nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0`.
 * Smoothing methods that take a value print it: `smooth:floor[0.10]`,
 * `smooth:add-k[1.00]`. (A non-default `maxNgramOrder` is not recorded, as in
 * sacreBLEU.)
 *
 * @example
 * ```ts
 * import { bleuSignature } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(bleuSignature({ nrefs: 2 }), "nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0");
 * assert.equal(
 *   bleuSignature({ nrefs: 1, lowercase: true, effectiveOrder: true, smoothMethod: "floor" }),
 *   "nrefs:1|case:lc|eff:yes|tok:13a|smooth:floor[0.10]|version:2.6.0",
 * );
 * ```
 */
export function bleuSignature(options: BleuSignatureOptions): string {
  const smoothMethod = options.smoothMethod ?? "exp";
  let smooth: string = smoothMethod;
  const smoothDefault = BLEU_SMOOTH_DEFAULTS[smoothMethod];
  if (smoothDefault !== null) {
    smooth += `[${pyFormatFixed(options.smoothValue ?? smoothDefault, 2)}]`;
  }
  return [
    `nrefs:${options.nrefs}`,
    `case:${options.lowercase ? "lc" : "mixed"}`,
    `eff:${options.effectiveOrder ? "yes" : "no"}`,
    `tok:${options.tokenize ?? "13a"}`,
    `smooth:${smooth}`,
    `version:${SACREBLEU_VERSION}`,
  ].join("|");
}
