/**
 * Small `tokenizer.json` files in the styles of the Llama family, written by hand so that tests
 * can state exact ids: byte-level BPE as SmolLM2 (Digits + GPT-2 ByteLevel regex), Qwen2 (NFC,
 * Split on its regex, ByteLevel) and Llama-3 (Split on its regex, ByteLevel, ignore_merges) ship
 * it, and sentencepiece-style byte-fallback BPE as TinyLlama/Llama-2 (Prepend "▁" + Replace
 * normalizer) and Mistral (Metaspace pre-tokenizer) ship it. The component settings are those of
 * the real files; only the vocabularies and merges are tiny.
 *
 * Byte-level layout: byte b has id b (its `byteLevelAlphabet()` symbol), merge k has id 256 + k,
 * added tokens follow. Byte-fallback layout: "<unk>" 0, "<s>" 1, "</s>" 2, "<0xNN>" 3 + NN, "▁"
 * 259, the printable ASCII characters "!"…"~" 260…353, merge k 354 + k.
 *
 * @module
 */

import { byteLevelAlphabet } from "../../models/tokenizer.ts";
import chatTemplatesJson from "./fixtures/chat_templates.json" with { type: "json" };

/** The real chat templates, copied from each model's tokenizer_config.json (see `source`). */
export const CHAT_TEMPLATES: Record<
  string,
  { source: string; bos_token: string | null; eos_token: string; chat_template: string }
> = chatTemplatesJson;

/** Merges of the byte-level fixtures (in byte-level symbols: "Ġ" is space, "Ċ" newline). */
export const BYTE_LEVEL_MERGES = [
  "h e", // 256 he
  "l l", // 257 ll
  "Ġ t", // 258 Ġt
  "Ġt he", // 259 Ġthe
  "he ll", // 260 hell
  "hell o", // 261 hello
  "Ġ w", // 262 Ġw
  "o r", // 263 or
  "Ġw or", // 264 Ġwor
  "l d", // 265 ld
  "Ġwor ld", // 266 Ġworld
  "Ċ Ċ", // 267 ĊĊ
  "e r", // 268 er
  "u s", // 269 us
  "us er", // 270 user
];

const QWEN2_PATTERN =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const LLAMA3_PATTERN =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/** The ids of the byte-level fixtures' added tokens, by style. */
export const SPECIAL = {
  smollm2: { "<|endoftext|>": 271, "<|im_start|>": 272, "<|im_end|>": 273 },
  qwen2: { "<|endoftext|>": 271, "<|im_start|>": 272, "<|im_end|>": 273 },
  llama3: {
    "<|begin_of_text|>": 271,
    "<|end_of_text|>": 272,
    "<|start_header_id|>": 273,
    "<|end_header_id|>": 274,
    "<|eot_id|>": 275,
  },
} as const;

/** A byte-level BPE tokenizer.json in the style of SmolLM2, Qwen2 or Llama-3. */
export function byteLevelJson(style: keyof typeof SPECIAL): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  byteLevelAlphabet().forEach((symbol, byte) => vocab[symbol] = byte);
  BYTE_LEVEL_MERGES.forEach((m, k) => vocab[m.replace(" ", "")] = 256 + k);
  const added = Object.entries(SPECIAL[style]).map(([content, id]) => {
    vocab[content] = id;
    return {
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    };
  });
  const split = (pattern: string) => ({
    type: "Split",
    pattern: { Regex: pattern },
    behavior: "Isolated",
    invert: false,
  });
  const byteLevel = (useRegex: boolean) => ({
    type: "ByteLevel",
    add_prefix_space: false,
    trim_offsets: true,
    use_regex: useRegex,
  });
  const pre = {
    smollm2: [{ type: "Digits", individual_digits: true }, byteLevel(true)],
    qwen2: [split(QWEN2_PATTERN), byteLevel(false)],
    llama3: [split(LLAMA3_PATTERN), byteLevel(false)],
  }[style];
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: style === "qwen2" ? { type: "NFC" } : null,
    pre_tokenizer: { type: "Sequence", pretokenizers: pre },
    post_processor: style === "llama3"
      ? {
        type: "TemplateProcessing",
        single: [
          { SpecialToken: { id: "<|begin_of_text|>", type_id: 0 } },
          { Sequence: { id: "A", type_id: 0 } },
        ],
        pair: [],
        special_tokens: {
          "<|begin_of_text|>": {
            id: "<|begin_of_text|>",
            ids: [271],
            tokens: ["<|begin_of_text|>"],
          },
        },
      }
      : byteLevel(false),
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: style === "llama3",
      vocab,
      merges: BYTE_LEVEL_MERGES,
    },
  };
}

/** Merges of the byte-fallback fixtures ("▁" is space). */
export const BYTE_FALLBACK_MERGES = [
  "h e", // 354 he
  "l l", // 355 ll
  "▁ t", // 356 ▁t
  "▁t he", // 357 ▁the
  "he ll", // 358 hell
  "hell o", // 359 hello
  "▁ w", // 360 ▁w
  "o r", // 361 or
  "▁w or", // 362 ▁wor
  "l d", // 363 ld
  "▁wor ld", // 364 ▁world
  "▁ hello", // 365 ▁hello
];

/** The id of a printable ASCII character in the byte-fallback fixtures. */
export function charId(c: string): number {
  return 260 + c.charCodeAt(0) - 0x21;
}

/** The id of byte `b`'s token "<0xNN>" in the byte-fallback fixtures. */
export function byteId(b: number): number {
  return 3 + b;
}

/**
 * A sentencepiece-style byte-fallback BPE tokenizer.json: `"normalizer"` as TinyLlama and
 * Llama-2 (Prepend "▁", Replace " " by "▁", no pre-tokenizer), or `"metaspace"` as Mistral (a
 * Metaspace pre-tokenizer that prepends "▁" to the first piece of text only).
 */
export function byteFallbackJson(style: "normalizer" | "metaspace"): Record<string, unknown> {
  const vocab: Record<string, number> = { "<unk>": 0, "<s>": 1, "</s>": 2 };
  for (let b = 0; b < 256; b++) {
    vocab[`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`] = byteId(b);
  }
  vocab["▁"] = 259;
  for (let c = 0x21; c <= 0x7e; c++) vocab[String.fromCharCode(c)] = charId(String.fromCharCode(c));
  BYTE_FALLBACK_MERGES.forEach((m, k) => vocab[m.replace(" ", "")] = 354 + k);
  const added = ["<unk>", "<s>", "</s>"].map((content, id) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: style === "normalizer"
      ? {
        type: "Sequence",
        normalizers: [
          { type: "Prepend", prepend: "▁" },
          { type: "Replace", pattern: { String: " " }, content: "▁" },
        ],
      }
      : null,
    pre_tokenizer: style === "metaspace"
      ? { type: "Metaspace", replacement: "▁", prepend_scheme: "first", split: false }
      : null,
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      pair: [],
      special_tokens: { "<s>": { id: "<s>", ids: [1], tokens: ["<s>"] } },
    },
    decoder: {
      type: "Sequence",
      decoders: [
        { type: "Replace", pattern: { String: "▁" }, content: " " },
        { type: "ByteFallback" },
        { type: "Fuse" },
        { type: "Strip", content: " ", start: 1, stop: 0 },
      ],
    },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: "<unk>",
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      vocab,
      merges: BYTE_FALLBACK_MERGES,
    },
  };
}
