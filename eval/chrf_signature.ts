import { chrfSettings } from "./_chrf.ts";
import { SACREBLEU_VERSION } from "./bleu_signature.ts";
import type { ChrfOptions } from "./chrf_from_statistics.ts";

/**
 * sacreBLEU 2.x's chrF signature, e.g.
 * `nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0`. "eff:yes"
 * means sacreBLEU's effective-order averaging, i.e. `epsSmoothing` off.
 *
 * @example
 * ```ts
 * import { chrfSignature } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(
 *   chrfSignature({ nrefs: 1, wordOrder: 2 }),
 *   "nrefs:1|case:mixed|eff:yes|nc:6|nw:2|space:no|version:2.6.0",
 * );
 * ```
 */
export function chrfSignature(options: ChrfOptions & { nrefs: number | "var" }): string {
  const settings = chrfSettings(options);
  return [
    `nrefs:${options.nrefs}`,
    `case:${settings.lowercase ? "lc" : "mixed"}`,
    `eff:${settings.epsSmoothing ? "no" : "yes"}`,
    `nc:${settings.charOrder}`,
    `nw:${settings.wordOrder}`,
    `space:${settings.whitespace ? "yes" : "no"}`,
    `version:${SACREBLEU_VERSION}`,
  ].join("|");
}
