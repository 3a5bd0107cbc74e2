/**
 * A character-level toy tokenizer for the data tests: one id per UTF-16 code unit (< 128), EOS 0,
 * so expected ids can be written out by hand.
 *
 * @module
 */

import type { TokenizerLike } from "../../data/mod.ts";

/** Characters to their codes; `eos` picks whether the tokenizer has an EOS id (0). */
export function charTokenizer(eos = true): TokenizerLike {
  return {
    name: "chars",
    vocabSize: 128,
    ...(eos ? { eosId: 0 } : {}),
    encode: (text) => Array.from(text, (c) => c.charCodeAt(0)),
    decode: (ids) => String.fromCharCode(...ids.filter((i) => i !== 0)),
  };
}

/** The ids of `text` under {@linkcode charTokenizer}. */
export function codes(text: string): number[] {
  return Array.from(text, (c) => c.charCodeAt(0));
}
