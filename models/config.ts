/**
 * GPT-2 model configuration: a typed config with the field names of Hugging Face's `GPT2Config`,
 * named presets, validation that names the offending field, and conversion from and to
 * Hugging Face `config.json`.
 *
 * @module
 */

import { type LlamaConfig, llamaConfigFromHF } from "./llama_config.ts";

/**
 * Hyperparameters of a GPT-2-style decoder. Field names are Hugging Face's (`GPT2Config`), so a
 * config converts to and from `config.json` key by key. Defaults (those of GPT-2 small, as
 * `GPT2Config()` has them) are in {@linkcode GPT2_SMALL}.
 */
export interface GPTConfig {
  /** Number of token ids the embedding (`wte`) and the tied LM head cover. Default 50257. */
  vocab_size: number;
  /** Longest sequence the position embedding (`wpe`) covers. Default 1024. */
  n_positions: number;
  /** Model width d (embedding and residual stream size). Default 768. */
  n_embd: number;
  /** Number of transformer blocks. Default 12. */
  n_layer: number;
  /** Number of attention heads; must divide `n_embd`. Default 12. */
  n_head: number;
  /** Hidden size of the MLP; `null` means 4·n_embd. Default null. */
  n_inner: number | null;
  /** LayerNorm epsilon. Default 1e-5. */
  layer_norm_epsilon: number;
  /** Dropout on each residual branch output (attention and MLP). Default 0.1. */
  resid_pdrop: number;
  /** Dropout on the sum of token and position embeddings. Default 0.1. */
  embd_pdrop: number;
  /** Dropout on the attention probabilities. Default 0.1. */
  attn_pdrop: number;
  /** Standard deviation of the normal weight initialisation. Default 0.02. */
  initializer_range: number;
  /** Beginning-of-sequence token id, or null when the tokenizer has none. Default 50256. */
  bos_token_id: number | null;
  /** End-of-sequence token id, or null when the tokenizer has none. Default 50256. */
  eos_token_id: number | null;
}

/** GPT-2 small (124M parameters): the defaults of Hugging Face's `GPT2Config()`. */
export const GPT2_SMALL: Readonly<GPTConfig> = Object.freeze({
  vocab_size: 50257,
  n_positions: 1024,
  n_embd: 768,
  n_layer: 12,
  n_head: 12,
  n_inner: null,
  layer_norm_epsilon: 1e-5,
  resid_pdrop: 0.1,
  embd_pdrop: 0.1,
  attn_pdrop: 0.1,
  initializer_range: 0.02,
  bos_token_id: 50256,
  eos_token_id: 50256,
});

/** Fields shared by the small byte-level presets: byte vocabulary, no dropout, no special ids. */
const BYTE_LEVEL = {
  vocab_size: 256, // one id per byte (see ByteTokenizer)
  n_inner: null,
  layer_norm_epsilon: 1e-5,
  // Small models trained here from scratch or fine-tuned for a few steps: no dropout, as in
  // nanoGPT's defaults, which also keeps their tests deterministic.
  resid_pdrop: 0,
  embd_pdrop: 0,
  attn_pdrop: 0,
  initializer_range: 0.02,
  bos_token_id: null,
  eos_token_id: null,
} as const;

/** Names of the built-in presets. */
export type PresetName = "tiny" | "modelA" | "modelB" | "gpt2";

/**
 * Built-in configurations: `tiny` for tests (d 32, 2 layers, 2 heads, context 64), `modelA`
 * (d 128, 4 layers, 4 heads, context 128; the training benchmark's model), `modelB` (d 256,
 * 6 layers, 8 heads, context 128), all with the 256-id byte vocabulary, and `gpt2` (GPT-2 small).
 */
export const PRESETS: Readonly<Record<PresetName, Readonly<GPTConfig>>> = Object.freeze({
  tiny: Object.freeze({ ...BYTE_LEVEL, n_positions: 64, n_embd: 32, n_layer: 2, n_head: 2 }),
  modelA: Object.freeze({ ...BYTE_LEVEL, n_positions: 128, n_embd: 128, n_layer: 4, n_head: 4 }),
  modelB: Object.freeze({ ...BYTE_LEVEL, n_positions: 128, n_embd: 256, n_layer: 6, n_head: 8 }),
  gpt2: GPT2_SMALL,
});

const FIELDS: readonly (keyof GPTConfig)[] = [
  "vocab_size",
  "n_positions",
  "n_embd",
  "n_layer",
  "n_head",
  "n_inner",
  "layer_norm_epsilon",
  "resid_pdrop",
  "embd_pdrop",
  "attn_pdrop",
  "initializer_range",
  "bos_token_id",
  "eos_token_id",
];

/**
 * A validated copy of a preset with some fields overridden.
 *
 * @example
 * ```ts
 * import { gptConfig } from "../mod.ts";
 * const cfg = gptConfig("tiny", { n_layer: 3 });
 * if (cfg.n_embd !== 32 || cfg.n_layer !== 3) throw new Error("unexpected preset");
 * ```
 */
export function gptConfig(preset: PresetName, overrides: Partial<GPTConfig> = {}): GPTConfig {
  const base = PRESETS[preset];
  if (base === undefined) {
    throw new Error(
      `Cannot make a config: unknown preset "${preset}" (known: ${
        Object.keys(PRESETS).join(", ")
      })`,
    );
  }
  return validateConfig({ ...base, ...overrides }, `preset "${preset}"`);
}

/**
 * The range of a numeric config field: `[min, max]` (a bound is excluded when `minOpen` /
 * `maxOpen`), integers only when `integer`.
 */
export interface NumberRange {
  /** Smallest value (or the bound above it when `minOpen`). */
  readonly min: number;
  /** Largest value (or the bound below it when `maxOpen`). */
  readonly max: number;
  /** Whether only whole numbers are allowed. */
  readonly integer?: boolean;
  /** Whether `min` itself is excluded. */
  readonly minOpen?: boolean;
  /** Whether `max` itself is excluded. */
  readonly maxOpen?: boolean;
}

/**
 * The range of every numeric {@linkcode GPTConfig} field. The upper bounds are far above any
 * published GPT-2-style model (GPT-2 XL: d 1600, 48 layers) yet small enough that a typo cannot
 * make whet size tables or loops by it before failing; `n_head` is bounded by `n_embd`, which it
 * must divide.
 *
 * @example
 * ```ts
 * import { GPT_LIMITS, gptConfig } from "./config.ts";
 * let message = "";
 * try {
 *   gptConfig("tiny", { n_layer: GPT_LIMITS.n_layer.max + 1 });
 * } catch (e) {
 *   message = (e as Error).message;
 * }
 * if (!message.includes('"n_layer" must be an integer in [1, 1024]')) throw new Error(message);
 * ```
 */
export const GPT_LIMITS: Readonly<
  Record<
    Exclude<keyof GPTConfig, "bos_token_id" | "eos_token_id">,
    NumberRange
  >
> = Object.freeze({
  vocab_size: { min: 1, max: 2 ** 21, integer: true },
  n_positions: { min: 1, max: 2 ** 20, integer: true },
  n_embd: { min: 1, max: 65536, integer: true },
  n_layer: { min: 1, max: 1024, integer: true },
  n_head: { min: 1, max: 65536, integer: true },
  n_inner: { min: 1, max: 2 ** 20, integer: true },
  layer_norm_epsilon: { min: 0, max: 1, minOpen: true },
  resid_pdrop: { min: 0, max: 1, maxOpen: true },
  embd_pdrop: { min: 0, max: 1, maxOpen: true },
  attn_pdrop: { min: 0, max: 1, maxOpen: true },
  initializer_range: { min: 0, max: 1, minOpen: true },
});

/**
 * What is wrong with `v` as a value in `range` ("must be an integer in [1, 1024]"), or undefined
 * when it is in range.
 *
 * @example
 * ```ts
 * import { rangeProblem } from "./config.ts";
 * const dropout = { min: 0, max: 1, maxOpen: true };
 * if (rangeProblem(0.1, dropout) !== undefined) throw new Error("0.1 is a dropout rate");
 * if (rangeProblem(1, dropout) !== "must be a number in [0, 1)") throw new Error("1 is not");
 * ```
 */
export function rangeProblem(v: unknown, range: NumberRange): string | undefined {
  const { min, max, integer = false, minOpen = false, maxOpen = false } = range;
  const ok = typeof v === "number" && Number.isFinite(v) && (!integer || Number.isInteger(v)) &&
    (minOpen ? v > min : v >= min) && (maxOpen ? v < max : v <= max);
  if (ok) return undefined;
  return `must be ${integer ? "an integer" : "a number"} in ${minOpen ? "(" : "["}${min}, ${max}${
    maxOpen ? ")" : "]"
  }`;
}

/**
 * The known name closest to `name` when it is a likely typo of it, else undefined. Likely: at
 * most one edit per three characters (at least one), counting a swap of neighbours as one edit
 * and ignoring case; the closest wins, the first of equals.
 *
 * @example
 * ```ts
 * import { closestName } from "./config.ts";
 * if (closestName("setps", ["steps", "seed"]) !== "steps") throw new Error("a swap is one edit");
 * if (closestName("rank", ["r", "lora_alpha"]) !== undefined) throw new Error("too far from both");
 * ```
 */
export function closestName(name: string, known: Iterable<string>): string | undefined {
  if (name === "") return undefined; // every short name is one edit from nothing
  const limit = Math.max(1, Math.floor(name.length / 3));
  let best: string | undefined, bestDistance = limit + 1;
  for (const k of known) {
    const d = editDistance(name.toLowerCase(), k.toLowerCase(), bestDistance);
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  return best;
}

/**
 * ` (did you mean "x"?)` when {@linkcode closestName} finds a likely intended name, else "": the
 * tail of an "unknown key" message.
 *
 * @example
 * ```ts
 * import { didYouMean } from "./config.ts";
 * if (didYouMean("n_layers", ["n_layer", "n_head"]) !== ' (did you mean "n_layer"?)') throw new Error();
 * if (didYouMean("rank", ["r", "lora_alpha"]) !== "") throw new Error("too far from every key");
 * ```
 */
export function didYouMean(name: string, known: Iterable<string>): string {
  const best = closestName(name, known);
  return best === undefined ? "" : ` (did you mean ${JSON.stringify(best)}?)`;
}

/**
 * Optimal-string-alignment distance (insertions, deletions, substitutions and swaps of
 * neighbours), or `cap` when it is at least `cap` (names can be long; typos are short).
 */
function editDistance(a: string, b: string, cap: number): number {
  if (Math.abs(a.length - b.length) >= cap) return cap;
  let before = new Array<number>(b.length + 1).fill(0);
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d = Math.min(d, before[j - 2] + 1);
      }
      row.push(d);
      rowMin = Math.min(rowMin, d);
    }
    if (rowMin >= cap) return cap;
    [before, prev] = [prev, row];
  }
  return Math.min(prev[b.length], cap);
}

/**
 * Checks that `value` is a complete, consistent {@linkcode GPTConfig} and returns a copy of it.
 * Unknown keys (with the closest known key when there is one), missing keys, wrong types and
 * values out of range are errors that name the key; so are a width that the heads do not divide
 * and special token ids outside the vocabulary. Ranges ({@linkcode GPT_LIMITS}) are checked before
 * anything is sized from the config, so a typo such as `n_layer: 2000000` fails at once.
 *
 * @param value the candidate config (e.g. a preset merged with YAML overrides)
 * @param source where it came from, for error messages (a file name, "preset tiny" …)
 *
 * @example
 * ```ts
 * import { PRESETS, validateConfig } from "../mod.ts";
 * let message = "";
 * try {
 *   validateConfig({ ...PRESETS.tiny, n_head: 3 }, "example");
 * } catch (e) {
 *   message = (e as Error).message;
 * }
 * if (!message.includes("n_head")) throw new Error("the error should name n_head");
 * ```
 */
export function validateConfig(value: unknown, source = "config"): GPTConfig {
  const fail = (why: string): never => {
    throw new Error(`Invalid GPT config (${source}): ${why}`);
  };
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return fail(`expected an object, got ${describe(value)}`);
  }
  const obj = value as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    if (!(FIELDS as readonly string[]).includes(key)) {
      fail(`unknown key "${key}"${didYouMean(key, FIELDS)} (known keys: ${FIELDS.join(", ")})`);
    }
  }
  for (const key of FIELDS) {
    if (!Object.hasOwn(obj, key)) fail(`missing key "${key}"`);
  }
  const inRange = (key: keyof typeof GPT_LIMITS): number => {
    const v = obj[key];
    const why = rangeProblem(v, GPT_LIMITS[key]);
    if (why !== undefined) fail(`"${key}" ${why}, got ${describe(v)}`);
    return v as number;
  };
  const cfg: GPTConfig = {
    vocab_size: inRange("vocab_size"),
    n_positions: inRange("n_positions"),
    n_embd: inRange("n_embd"),
    n_layer: inRange("n_layer"),
    n_head: inRange("n_head"),
    n_inner: obj.n_inner === null ? null : inRange("n_inner"),
    layer_norm_epsilon: inRange("layer_norm_epsilon"),
    resid_pdrop: inRange("resid_pdrop"),
    embd_pdrop: inRange("embd_pdrop"),
    attn_pdrop: inRange("attn_pdrop"),
    initializer_range: inRange("initializer_range"),
    bos_token_id: null,
    eos_token_id: null,
  };
  for (const key of ["bos_token_id", "eos_token_id"] as const) {
    const v = obj[key];
    if (v === null) continue;
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0 || v >= cfg.vocab_size) {
      fail(
        `"${key}" must be null or an integer in [0, vocab_size=${cfg.vocab_size}), got ${
          describe(v)
        }`,
      );
    }
    cfg[key] = v as number;
  }
  if (cfg.n_embd % cfg.n_head !== 0) {
    fail(`"n_embd" (${cfg.n_embd}) must be divisible by "n_head" (${cfg.n_head})`);
  }
  return cfg;
}

/**
 * Hidden size of the MLP: `n_inner`, or 4·n_embd when it is null.
 *
 * @example
 * ```ts
 * import { gptConfig, innerSize } from "../mod.ts";
 * if (innerSize(gptConfig("tiny")) !== 128) throw new Error("4·n_embd when n_inner is null");
 * if (innerSize(gptConfig("tiny", { n_inner: 40 })) !== 40) throw new Error("n_inner when set");
 * ```
 */
export function innerSize(cfg: GPTConfig): number {
  return cfg.n_inner ?? 4 * cfg.n_embd;
}

/**
 * Size of one attention head: n_embd / n_head.
 *
 * @example
 * ```ts
 * import { gptConfig, headDim } from "../mod.ts";
 * if (headDim(gptConfig("tiny")) !== 16) throw new Error("32 / 2 heads");
 * ```
 */
export function headDim(cfg: GPTConfig): number {
  return cfg.n_embd / cfg.n_head;
}

/** `config.json` keys that name the same field as a whet field (Hugging Face `attribute_map`). */
const HF_ALIASES: Readonly<Partial<Record<keyof GPTConfig, string>>> = {
  n_embd: "hidden_size",
  n_positions: "max_position_embeddings",
  n_head: "num_attention_heads",
  n_layer: "num_hidden_layers",
};

/** Activations whet's GELU computes exactly (the tanh approximation). */
const TANH_GELU = ["gelu_new", "gelu_pytorch_tanh"];

/**
 * Reads a Hugging Face GPT-2 `config.json` (already parsed). Accepts the `attribute_map`
 * aliases (`hidden_size`, `max_position_embeddings`, `num_attention_heads`,
 * `num_hidden_layers`) and the legacy `n_ctx`; missing fields take `GPT2Config()`'s defaults, as
 * transformers does; other keys are ignored. Settings that change the model's math in ways whet
 * does not implement (another activation, unscaled attention, untied LM head, cross-attention …)
 * are errors naming the field.
 *
 * @param json the parsed `config.json`
 * @param file its path, for error messages
 *
 * @example
 * ```ts
 * import { configFromHF } from "../mod.ts";
 * const cfg = configFromHF({ model_type: "gpt2", hidden_size: 64, num_attention_heads: 4 });
 * if (cfg.n_embd !== 64 || cfg.n_layer !== 12) throw new Error("unexpected config");
 * ```
 */
export function configFromHF(json: unknown, file = "config.json"): GPTConfig {
  const fail = (why: string): never => {
    throw new Error(`Cannot read Hugging Face config ${file}: ${why}`);
  };
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    return fail(`expected a JSON object, got ${describe(json)}`);
  }
  const hf = json as Record<string, unknown>;
  if (hf.model_type !== undefined && hf.model_type !== "gpt2") {
    fail(`"model_type" is ${describe(hf.model_type)}; only "gpt2" is supported`);
  }
  const act = hf.activation_function;
  if (act !== undefined && !TANH_GELU.includes(act as string)) {
    fail(`"activation_function" ${describe(act)} is not supported (use ${TANH_GELU.join(" or ")})`);
  }
  const unsupported: [string, unknown][] = [
    ["scale_attn_weights", false],
    ["scale_attn_by_inverse_layer_idx", true],
    ["add_cross_attention", true],
    ["tie_word_embeddings", false],
  ];
  for (const [key, bad] of unsupported) {
    if (hf[key] === bad) fail(`"${key}": ${bad} is not supported by whet's GPT-2`);
  }

  const out: Record<string, unknown> = {};
  for (const key of FIELDS) {
    const alias = HF_ALIASES[key];
    let v = hf[key];
    if (alias !== undefined && hf[alias] !== undefined) {
      if (v !== undefined && v !== hf[alias]) {
        fail(`"${key}" (${describe(v)}) and its alias "${alias}" (${describe(hf[alias])}) differ`);
      }
      v = hf[alias];
    }
    if (key === "n_positions" && v === undefined) v = hf.n_ctx;
    out[key] = v === undefined ? GPT2_SMALL[key] : v;
  }
  for (const key of ["bos_token_id", "eos_token_id"] as const) {
    // GPT2Config's default special id (50256) does not exist in a smaller vocabulary that a file
    // leaves it unset for: such a model has no special token.
    if (hf[key] === undefined && (out.vocab_size as number) <= (GPT2_SMALL[key] as number)) {
      out[key] = null;
    }
  }
  if (hf.n_ctx !== undefined && hf.n_ctx !== out.n_positions) {
    // Old configs carry n_ctx beside n_positions; transformers ignores it, whet does too, but a
    // disagreement usually means a hand-edited file.
    fail(`"n_ctx" (${describe(hf.n_ctx)}) differs from "n_positions" (${out.n_positions})`);
  }
  return validateConfig(out, file);
}

/**
 * The `config.json` object that transformers' `GPT2Config` / `GPT2LMHeadModel.from_pretrained`
 * loads for this config (model_type "gpt2", architecture `GPT2LMHeadModel`, `gelu_new`, tied
 * embeddings). Write it with sorted keys, as `save_pretrained` does.
 *
 * @example
 * ```ts
 * import { configToHF, PRESETS } from "../mod.ts";
 * const json = configToHF(PRESETS.tiny);
 * if (json.model_type !== "gpt2" || json.n_ctx !== 64) throw new Error("unexpected config.json");
 * ```
 */
export function configToHF(cfg: GPTConfig): Record<string, unknown> {
  const c = validateConfig(cfg);
  return {
    activation_function: "gelu_new",
    architectures: ["GPT2LMHeadModel"],
    attn_pdrop: c.attn_pdrop,
    bos_token_id: c.bos_token_id,
    embd_pdrop: c.embd_pdrop,
    eos_token_id: c.eos_token_id,
    initializer_range: c.initializer_range,
    layer_norm_epsilon: c.layer_norm_epsilon,
    model_type: "gpt2",
    n_ctx: c.n_positions,
    n_embd: c.n_embd,
    n_head: c.n_head,
    n_inner: c.n_inner,
    n_layer: c.n_layer,
    n_positions: c.n_positions,
    reorder_and_upcast_attn: false,
    resid_pdrop: c.resid_pdrop,
    scale_attn_by_inverse_layer_idx: false,
    scale_attn_weights: true,
    tie_word_embeddings: true,
    use_cache: true,
    vocab_size: c.vocab_size,
  };
}

/** Architecture families whet implements: GPT-2, and Llama (which covers Qwen2). */
export type ModelFamily = "gpt2" | "llama";

/** A configuration tagged with its family, as {@linkcode readModelConfig} returns it. */
export type ModelConfig =
  | { family: "gpt2"; config: GPTConfig }
  | { family: "llama"; config: LlamaConfig };

/** `config.json` model_type → family. */
const FAMILIES: Readonly<Record<string, ModelFamily>> = {
  gpt2: "gpt2",
  llama: "llama",
  qwen2: "llama",
};

/**
 * The family a Hugging Face `config.json` (already parsed) belongs to, by its `model_type`:
 * "gpt2" → GPT-2, "llama" and "qwen2" → Llama. A config without `model_type` is GPT-2, as whet
 * has always read it.
 *
 * @param json the parsed `config.json`
 * @param file its path, for error messages
 *
 * @example
 * ```ts
 * import { modelFamilyOf } from "../mod.ts";
 * if (modelFamilyOf({ model_type: "qwen2" }) !== "llama" || modelFamilyOf({}) !== "gpt2") {
 *   throw new Error("unexpected family");
 * }
 * ```
 */
export function modelFamilyOf(json: unknown, file = "config.json"): ModelFamily {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new Error(`Cannot load ${file}: expected a JSON object, got ${describe(json)}`);
  }
  const type = (json as Record<string, unknown>).model_type;
  if (type === undefined) return "gpt2";
  if (typeof type === "string" && Object.hasOwn(FAMILIES, type)) return FAMILIES[type];
  throw new Error(
    `Cannot load ${file}: model_type ${describe(type)} is not supported (supported: ${
      Object.keys(FAMILIES).join(", ")
    })`,
  );
}

/**
 * Reads a Hugging Face `config.json` (already parsed) of any family whet implements: GPT-2
 * through {@linkcode configFromHF}, Llama and Qwen2 through {@linkcode llamaConfigFromHF}.
 *
 * @param json the parsed `config.json`
 * @param file its path, for error messages
 *
 * @example
 * ```ts
 * import { readModelConfig } from "../mod.ts";
 * const model = readModelConfig({ model_type: "llama", hidden_size: 64, num_attention_heads: 4 });
 * if (model.family !== "llama" || model.config.head_dim !== 16) throw new Error("unexpected config");
 * ```
 */
export function readModelConfig(json: unknown, file = "config.json"): ModelConfig {
  return modelFamilyOf(json, file) === "gpt2"
    ? { family: "gpt2", config: configFromHF(json, file) }
    : { family: "llama", config: llamaConfigFromHF(json, file) };
}

/** A short description of a value for error messages. */
function describe(v: unknown): string {
  if (v === undefined) return "undefined";
  if (typeof v === "number" && !Number.isFinite(v)) return String(v);
  const s = JSON.stringify(v);
  return s.length > 60 ? s.slice(0, 57) + "..." : s;
}
