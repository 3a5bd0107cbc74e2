/**
 * Llama-family model configuration (Hugging Face `LlamaForCausalLM` and `Qwen2ForCausalLM`): a
 * typed config with Hugging Face's field names, presets with the shapes of real checkpoints and
 * of tiny test models, validation that names the offending field, and conversion from and to
 * `config.json`.
 *
 * The two model types differ only in their projection biases (see {@linkcode projectionBiases})
 * and in `config.json` defaults: `Qwen2ForCausalLM` always has q/k/v biases and no o_proj or MLP
 * bias (its config has no `attention_bias` field); `LlamaForCausalLM`'s `attention_bias` puts a
 * bias on all four attention projections and `mlp_bias` on the three MLP ones.
 *
 * @module
 */

import { didYouMean, type NumberRange, rangeProblem } from "./config.ts";

/** The `model_type` values this config covers. */
export type LlamaModelType = "llama" | "qwen2";

/**
 * Hyperparameters of a Llama-family decoder (RMSNorm, rotary positions, grouped-query attention,
 * SwiGLU MLP). Field names are Hugging Face's (`LlamaConfig`, `Qwen2Config`), so a config converts
 * to and from `config.json` key by key; `head_dim` and `num_key_value_heads` are stored resolved.
 */
export interface LlamaConfig {
  /** "llama" (`LlamaForCausalLM`) or "qwen2" (`Qwen2ForCausalLM`, q/k/v biases). */
  model_type: LlamaModelType;
  /** Number of token ids the embedding (`embed_tokens`) and the LM head cover. */
  vocab_size: number;
  /** Model width C (embedding and residual stream size). */
  hidden_size: number;
  /** Hidden size F of the SwiGLU MLP (`gate_proj`, `up_proj`). */
  intermediate_size: number;
  /** Number of decoder layers. */
  num_hidden_layers: number;
  /** Number of query heads H. */
  num_attention_heads: number;
  /** Number of key/value heads Hkv; divides H (each serves H / Hkv query heads). */
  num_key_value_heads: number;
  /** Size d of one head, even (rotary embeddings rotate its two halves); usually C / H. */
  head_dim: number;
  /** Longest sequence the model was trained for (rotary positions have no table to outgrow). */
  max_position_embeddings: number;
  /** RMSNorm epsilon. */
  rms_norm_eps: number;
  /** Rotary base θ: `inv_freq = 1 / θ^(2i / d)`. */
  rope_theta: number;
  /** Whether the LM head reuses `embed_tokens.weight` (then `lm_head.weight` is not stored). */
  tie_word_embeddings: boolean;
  /** Llama: bias on q, k, v and o projections. Qwen2: always true (q, k, v only). */
  attention_bias: boolean;
  /** Bias on gate, up and down projections (Llama only; false for Qwen2). */
  mlp_bias: boolean;
  /** MLP activation; only SiLU (the SwiGLU gate) is supported. */
  hidden_act: "silu";
  /** Standard deviation of the normal weight initialisation. */
  initializer_range: number;
  /** Dropout on the attention probabilities during training. */
  attention_dropout: number;
  /** Beginning-of-sequence token id, or null when there is none. */
  bos_token_id: number | null;
  /** End-of-sequence token id(s), or null when there is none. */
  eos_token_id: number | number[] | null;
}

/** Names of the built-in presets. */
export type LlamaPresetName =
  | "smollm2-135m"
  | "smollm2-360m"
  | "qwen2.5-0.5b"
  | "tinyllama-1.1b"
  | "llama-tiny"
  | "smollm-tiny"
  | "qwen2-tiny";

/** Fields of the tiny test presets: byte vocabulary, no dropout, no special ids. */
const TINY = {
  vocab_size: 256, // one id per byte (see ByteTokenizer)
  num_hidden_layers: 2,
  max_position_embeddings: 64,
  hidden_act: "silu",
  initializer_range: 0.02,
  attention_dropout: 0,
  bos_token_id: null,
  eos_token_id: null,
} as const;

/**
 * Built-in configurations. The four named after models carry the shapes, rotary base, epsilon
 * and tying of those models' `config.json` on the Hugging Face Hub (HuggingFaceTB/SmolLM2-135M,
 * HuggingFaceTB/SmolLM2-360M, Qwen/Qwen2.5-0.5B, TinyLlama/TinyLlama-1.1B-Chat-v1.0). The tiny
 * ones are test models whose sizes are not multiples of any tile: `llama-tiny` (C 48, 4 query
 * heads sharing 2 key/value heads, F 88, untied head), `smollm-tiny` (C 36, 3 query heads on
 * one key/value head, F 72, tied), `qwen2-tiny` (C 40, 4 heads on 2, F 72, q/k/v biases, tied as
 * Qwen2.5-0.5B is); all have 2 layers, context 64 and the 256-id byte vocabulary.
 *
 * @example
 * ```ts
 * import { LLAMA_PRESETS } from "../mod.ts";
 * const q = LLAMA_PRESETS["qwen2.5-0.5b"];
 * if (q.num_attention_heads / q.num_key_value_heads !== 7) throw new Error("7 query heads per kv head");
 * ```
 */
export const LLAMA_PRESETS: Readonly<Record<LlamaPresetName, Readonly<LlamaConfig>>> = Object
  .freeze({
    "smollm2-135m": Object.freeze({
      model_type: "llama",
      vocab_size: 49152,
      hidden_size: 576,
      intermediate_size: 1536,
      num_hidden_layers: 30,
      num_attention_heads: 9,
      num_key_value_heads: 3,
      head_dim: 64,
      max_position_embeddings: 8192,
      rms_norm_eps: 1e-5,
      rope_theta: 100000,
      tie_word_embeddings: true,
      attention_bias: false,
      mlp_bias: false,
      hidden_act: "silu",
      initializer_range: 0.041666666666666664,
      attention_dropout: 0,
      bos_token_id: 0,
      eos_token_id: 0,
    }),
    "smollm2-360m": Object.freeze({
      model_type: "llama",
      vocab_size: 49152,
      hidden_size: 960,
      intermediate_size: 2560,
      num_hidden_layers: 32,
      num_attention_heads: 15,
      num_key_value_heads: 5,
      head_dim: 64,
      max_position_embeddings: 8192,
      rms_norm_eps: 1e-5,
      rope_theta: 100000,
      tie_word_embeddings: true,
      attention_bias: false,
      mlp_bias: false,
      hidden_act: "silu",
      initializer_range: 0.02,
      attention_dropout: 0,
      bos_token_id: 0,
      eos_token_id: 0,
    }),
    "qwen2.5-0.5b": Object.freeze({
      model_type: "qwen2",
      vocab_size: 151936,
      hidden_size: 896,
      intermediate_size: 4864,
      num_hidden_layers: 24,
      num_attention_heads: 14,
      num_key_value_heads: 2,
      head_dim: 64,
      max_position_embeddings: 32768,
      rms_norm_eps: 1e-6,
      rope_theta: 1000000,
      tie_word_embeddings: true,
      attention_bias: true,
      mlp_bias: false,
      hidden_act: "silu",
      initializer_range: 0.02,
      attention_dropout: 0,
      bos_token_id: 151643,
      eos_token_id: 151643,
    }),
    "tinyllama-1.1b": Object.freeze({
      model_type: "llama",
      vocab_size: 32000,
      hidden_size: 2048,
      intermediate_size: 5632,
      num_hidden_layers: 22,
      num_attention_heads: 32,
      num_key_value_heads: 4,
      head_dim: 64,
      max_position_embeddings: 2048,
      rms_norm_eps: 1e-5,
      rope_theta: 10000,
      tie_word_embeddings: false,
      attention_bias: false,
      mlp_bias: false,
      hidden_act: "silu",
      initializer_range: 0.02,
      attention_dropout: 0,
      bos_token_id: 1,
      eos_token_id: 2,
    }),
    "llama-tiny": Object.freeze({
      ...TINY,
      model_type: "llama",
      hidden_size: 48,
      intermediate_size: 88,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      head_dim: 12,
      rms_norm_eps: 1e-5,
      rope_theta: 10000,
      tie_word_embeddings: false,
      attention_bias: false,
      mlp_bias: false,
    }),
    "smollm-tiny": Object.freeze({
      ...TINY,
      model_type: "llama",
      hidden_size: 36,
      intermediate_size: 72,
      num_attention_heads: 3,
      num_key_value_heads: 1,
      head_dim: 12,
      rms_norm_eps: 1e-5,
      rope_theta: 100000,
      tie_word_embeddings: true,
      attention_bias: false,
      mlp_bias: false,
    }),
    "qwen2-tiny": Object.freeze({
      ...TINY,
      model_type: "qwen2",
      hidden_size: 40,
      intermediate_size: 72,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      head_dim: 10,
      rms_norm_eps: 1e-6,
      rope_theta: 1000000,
      tie_word_embeddings: true,
      attention_bias: true,
      mlp_bias: false,
    }),
  });

/** Every {@linkcode LlamaConfig} field, in declaration order (validation reports the first bad one). */
const FIELDS: readonly (keyof LlamaConfig)[] = [
  "model_type",
  "vocab_size",
  "hidden_size",
  "intermediate_size",
  "num_hidden_layers",
  "num_attention_heads",
  "num_key_value_heads",
  "head_dim",
  "max_position_embeddings",
  "rms_norm_eps",
  "rope_theta",
  "tie_word_embeddings",
  "attention_bias",
  "mlp_bias",
  "hidden_act",
  "initializer_range",
  "attention_dropout",
  "bos_token_id",
  "eos_token_id",
];

/**
 * The range of every numeric {@linkcode LlamaConfig} field. The upper bounds are far above any
 * published Llama-family model (Llama 3.1 405B: C 16384, 126 layers, 128 heads, vocabulary
 * 128,256) yet small enough that a typo cannot make whet size tables or loops by it before
 * failing; `num_key_value_heads` is bounded by the query heads, which it must divide.
 *
 * @example
 * ```ts
 * import { LLAMA_LIMITS, llamaConfig } from "./llama_config.ts";
 * let message = "";
 * try {
 *   llamaConfig("llama-tiny", { num_hidden_layers: LLAMA_LIMITS.num_hidden_layers.max + 1 });
 * } catch (e) {
 *   message = (e as Error).message;
 * }
 * if (!message.includes('"num_hidden_layers" must be an integer in [1, 1024]')) throw new Error(message);
 * ```
 */
export const LLAMA_LIMITS: Readonly<
  Record<
    | "vocab_size"
    | "hidden_size"
    | "intermediate_size"
    | "num_hidden_layers"
    | "num_attention_heads"
    | "num_key_value_heads"
    | "head_dim"
    | "max_position_embeddings"
    | "rms_norm_eps"
    | "rope_theta"
    | "initializer_range"
    | "attention_dropout",
    NumberRange
  >
> = Object.freeze({
  vocab_size: { min: 1, max: 2 ** 21, integer: true },
  hidden_size: { min: 1, max: 65536, integer: true },
  intermediate_size: { min: 1, max: 2 ** 20, integer: true },
  num_hidden_layers: { min: 1, max: 1024, integer: true },
  num_attention_heads: { min: 1, max: 4096, integer: true },
  num_key_value_heads: { min: 1, max: 4096, integer: true },
  head_dim: { min: 1, max: 4096, integer: true },
  // Rotary positions have no table, so only the KV cache grows with this.
  max_position_embeddings: { min: 1, max: 2 ** 24, integer: true },
  rms_norm_eps: { min: 0, max: 1, minOpen: true },
  rope_theta: { min: 0, max: 1e12, minOpen: true },
  initializer_range: { min: 0, max: 1 },
  attention_dropout: { min: 0, max: 1, maxOpen: true },
});

/**
 * A validated copy of a preset with some fields overridden. Unless `head_dim` is overridden it
 * is hidden_size / num_attention_heads, as in every preset, so that overriding the width or the
 * head count keeps the heads covering the width.
 *
 * @example
 * ```ts
 * import { llamaConfig } from "../mod.ts";
 * const cfg = llamaConfig("llama-tiny", { hidden_size: 64, num_hidden_layers: 3 });
 * if (cfg.head_dim !== 16 || cfg.num_key_value_heads !== 2) throw new Error("unexpected config");
 * ```
 */
export function llamaConfig(
  preset: LlamaPresetName,
  overrides: Partial<LlamaConfig> = {},
): LlamaConfig {
  const base = Object.hasOwn(LLAMA_PRESETS, preset) ? LLAMA_PRESETS[preset] : undefined;
  const source = `preset "${preset}"`;
  if (base === undefined) {
    throw new Error(
      `Cannot make a config: unknown preset "${preset}" (known: ${
        Object.keys(LLAMA_PRESETS).join(", ")
      })`,
    );
  }
  const merged: Record<string, unknown> = { ...base, ...overrides };
  if (overrides.head_dim === undefined) {
    merged.head_dim = defaultHeadDim(merged, (why) => {
      throw new Error(`Invalid Llama config (${source}): ${why}`);
    });
  }
  return validateLlamaConfig(merged, source);
}

/**
 * Checks that `value` is a complete, consistent {@linkcode LlamaConfig} and returns a copy of it.
 * Unknown keys (with the closest known key when there is one), missing keys, wrong types and
 * values out of range ({@linkcode LLAMA_LIMITS}) are errors that name the key; so are key/value
 * heads that do not divide the query heads, an odd head size, special token ids outside the
 * vocabulary, and a Qwen2 config without q/k/v biases or with MLP biases.
 *
 * @param value the candidate config (e.g. a preset merged with YAML overrides)
 * @param source where it came from, for error messages (a file name, "preset llama-tiny" …)
 *
 * @example
 * ```ts
 * import { LLAMA_PRESETS, validateLlamaConfig } from "../mod.ts";
 * let message = "";
 * try {
 *   validateLlamaConfig({ ...LLAMA_PRESETS["llama-tiny"], num_key_value_heads: 3 }, "example");
 * } catch (e) {
 *   message = (e as Error).message;
 * }
 * if (!message.includes('"num_key_value_heads" (3)')) throw new Error("the error names the key");
 * ```
 */
export function validateLlamaConfig(value: unknown, source = "config"): LlamaConfig {
  const fail = (why: string): never => {
    throw new Error(`Invalid Llama config (${source}): ${why}`);
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
  const get = (key: keyof LlamaConfig): unknown => {
    if (!Object.hasOwn(obj, key)) fail(`missing key "${key}"`);
    return obj[key];
  };
  const inRange = (key: keyof typeof LLAMA_LIMITS): number => {
    const v = get(key);
    const why = rangeProblem(v, LLAMA_LIMITS[key]);
    if (why !== undefined) fail(`"${key}" ${why}, got ${describe(v)}`);
    return v as number;
  };
  const boolean = (key: keyof LlamaConfig): boolean => {
    const v = get(key);
    if (typeof v !== "boolean") fail(`"${key}" must be true or false, got ${describe(v)}`);
    return v as boolean;
  };

  const modelType = get("model_type");
  if (modelType !== "llama" && modelType !== "qwen2") {
    fail(`"model_type" must be "llama" or "qwen2", got ${describe(modelType)}`);
  }
  const vocab = inRange("vocab_size");
  const hidden = inRange("hidden_size");
  const intermediate = inRange("intermediate_size");
  const layers = inRange("num_hidden_layers");
  const heads = inRange("num_attention_heads");
  const kvHeads = inRange("num_key_value_heads");
  if (heads % kvHeads !== 0) {
    fail(
      `"num_key_value_heads" (${kvHeads}) must divide "num_attention_heads" (${heads}): each ` +
        `key/value head serves a whole group of query heads`,
    );
  }
  const headDim = inRange("head_dim");
  if (headDim % 2 !== 0) {
    fail(`"head_dim" (${headDim}) must be even: rotary embeddings rotate its two halves`);
  }
  const maxPositions = inRange("max_position_embeddings");
  const eps = inRange("rms_norm_eps");
  const theta = inRange("rope_theta");
  const tie = boolean("tie_word_embeddings");
  const attentionBias = boolean("attention_bias");
  const mlpBias = boolean("mlp_bias");
  const act = get("hidden_act");
  if (act !== "silu") fail(`"hidden_act" ${describe(act)} is not supported (only "silu")`);
  const init = inRange("initializer_range");
  const dropout = inRange("attention_dropout");
  const isTokenId = (v: unknown) =>
    Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) < vocab;
  const bos = get("bos_token_id");
  if (bos !== null && !isTokenId(bos)) {
    fail(
      `"bos_token_id" must be null or an integer in [0, vocab_size=${vocab}), got ${describe(bos)}`,
    );
  }
  const eos = get("eos_token_id");
  const eosOk = eos === null || isTokenId(eos) ||
    (Array.isArray(eos) && eos.length > 0 && eos.every(isTokenId));
  if (!eosOk) {
    fail(
      `"eos_token_id" must be null, an integer in [0, vocab_size=${vocab}) or a non-empty list ` +
        `of them, got ${describe(eos)}`,
    );
  }
  if (modelType === "qwen2" && !attentionBias) {
    fail(`"attention_bias" must be true for model_type "qwen2" (Qwen2 has q/k/v biases)`);
  }
  if (modelType === "qwen2" && mlpBias) {
    fail(`"mlp_bias" must be false for model_type "qwen2" (Qwen2's MLP has no biases)`);
  }
  return {
    model_type: modelType as LlamaModelType,
    vocab_size: vocab,
    hidden_size: hidden,
    intermediate_size: intermediate,
    num_hidden_layers: layers,
    num_attention_heads: heads,
    num_key_value_heads: kvHeads,
    head_dim: headDim,
    max_position_embeddings: maxPositions,
    rms_norm_eps: eps,
    rope_theta: theta,
    tie_word_embeddings: tie,
    attention_bias: attentionBias,
    mlp_bias: mlpBias,
    hidden_act: "silu",
    initializer_range: init,
    attention_dropout: dropout,
    bos_token_id: bos as number | null,
    eos_token_id: Array.isArray(eos) ? [...eos] : eos as number | null,
  };
}

/**
 * Which projections carry a bias: `qkv` for q_proj, k_proj and v_proj, `o` for o_proj. Qwen2 has
 * q/k/v biases and no o_proj bias; Llama's `attention_bias` covers all four. (MLP biases follow
 * `mlp_bias` alone.)
 *
 * @example
 * ```ts
 * import { LLAMA_PRESETS, projectionBiases } from "../mod.ts";
 * const qwen = projectionBiases(LLAMA_PRESETS["qwen2-tiny"]);
 * const llama = projectionBiases(LLAMA_PRESETS["llama-tiny"]);
 * if (!qwen.qkv || qwen.o || llama.qkv || llama.o) throw new Error("unexpected biases");
 * ```
 */
export function projectionBiases(cfg: LlamaConfig): { qkv: boolean; o: boolean } {
  return { qkv: cfg.attention_bias, o: cfg.model_type === "llama" && cfg.attention_bias };
}

/** `config.json` defaults of transformers' `LlamaConfig()` and `Qwen2Config()`. */
const HF_DEFAULTS: Readonly<Record<LlamaModelType, Readonly<Record<string, unknown>>>> = {
  llama: {
    vocab_size: 32000,
    hidden_size: 4096,
    intermediate_size: 11008,
    num_hidden_layers: 32,
    num_attention_heads: 32,
    max_position_embeddings: 2048,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    tie_word_embeddings: false,
    attention_bias: false,
    mlp_bias: false,
    hidden_act: "silu",
    initializer_range: 0.02,
    attention_dropout: 0,
    bos_token_id: 1,
    eos_token_id: 2,
  },
  qwen2: {
    vocab_size: 151936,
    hidden_size: 4096,
    intermediate_size: 22016,
    num_hidden_layers: 32,
    num_attention_heads: 32,
    max_position_embeddings: 32768,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    tie_word_embeddings: false,
    hidden_act: "silu",
    initializer_range: 0.02,
    attention_dropout: 0,
    bos_token_id: null,
    eos_token_id: null,
  },
};

/** `config.json` keys of a model type whose only accepted value (besides null) is the plain one. */
const MUST_BE_PLAIN: readonly [type: LlamaModelType, key: string, plain: unknown][] = [
  ["llama", "pretraining_tp", 1],
  ["qwen2", "use_sliding_window", false], // whet's attention is full causal attention
];

/**
 * Reads a Hugging Face `config.json` (already parsed) of `model_type` "llama" or "qwen2". Missing
 * fields take the defaults of transformers' `LlamaConfig()` / `Qwen2Config()`;
 * `num_key_value_heads` absent or null means one per query head, `head_dim` absent or null means
 * hidden_size / num_attention_heads. Other keys are ignored (Hub configs carry many), and so are
 * Qwen2's `attention_bias` / `mlp_bias`, which `Qwen2ForCausalLM` ignores too. Settings that
 * change the math in ways whet does not implement are errors naming the key: `rope_scaling` /
 * `rope_parameters` other than plain RoPE, `pretraining_tp` > 1, Qwen2's `use_sliding_window`,
 * any activation but SiLU.
 *
 * @param json the parsed `config.json`
 * @param file its path, for error messages
 *
 * @example
 * ```ts
 * import { llamaConfigFromHF } from "../mod.ts";
 * const cfg = llamaConfigFromHF({
 *   model_type: "qwen2",
 *   hidden_size: 896,
 *   num_attention_heads: 14,
 *   num_key_value_heads: 2,
 *   rope_scaling: null,
 *   use_sliding_window: false,
 * });
 * if (cfg.head_dim !== 64 || cfg.vocab_size !== 151936 || !cfg.attention_bias) {
 *   throw new Error("unexpected config");
 * }
 * ```
 */
export function llamaConfigFromHF(json: unknown, file = "config.json"): LlamaConfig {
  const fail = (why: string): never => {
    throw new Error(`Cannot read Hugging Face config ${file}: ${why}`);
  };
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    return fail(`expected a JSON object, got ${describe(json)}`);
  }
  const hf = json as Record<string, unknown>;
  const type = hf.model_type;
  if (type !== "llama" && type !== "qwen2") {
    return fail(`"model_type" must be "llama" or "qwen2", got ${describe(type)}`);
  }
  for (const [keyType, key, plain] of MUST_BE_PLAIN) {
    const v = hf[key];
    if (keyType !== type || v === undefined || v === null || v === plain) continue;
    fail(`"${key}": ${describe(v)} is not supported (expected ${describe(plain)})`);
  }
  const theta = ropeTheta(hf, fail);

  const defaults = HF_DEFAULTS[type];
  const out: Record<string, unknown> = { model_type: type };
  for (const key of FIELDS) {
    if (key === "model_type" || key === "num_key_value_heads" || key === "head_dim") continue;
    if (type === "qwen2" && (key === "attention_bias" || key === "mlp_bias")) continue;
    out[key] = hf[key] === undefined ? defaults[key] : hf[key];
  }
  if (type === "qwen2") {
    out.attention_bias = true;
    out.mlp_bias = false;
  }
  if (theta !== undefined) out.rope_theta = theta;
  out.num_key_value_heads = hf.num_key_value_heads ?? out.num_attention_heads;
  out.head_dim = hf.head_dim ?? defaultHeadDim(out, fail);
  return validateLlamaConfig(out, file);
}

/**
 * The `config.json` object that transformers loads into this config: `LlamaConfig` with
 * architecture `LlamaForCausalLM`, or `Qwen2Config` with `Qwen2ForCausalLM` (no `attention_bias`
 * or `mlp_bias` keys, which Qwen2Config does not have; `head_dim` only when it is not
 * hidden_size / num_attention_heads). Plain RoPE (`rope_scaling: null`), `torch_dtype`
 * "float32", keys sorted as `save_pretrained` writes them.
 *
 * @example
 * ```ts
 * import { LLAMA_PRESETS, llamaConfigToHF } from "../mod.ts";
 * const json = llamaConfigToHF(LLAMA_PRESETS["qwen2-tiny"]);
 * if (json.model_type !== "qwen2" || "attention_bias" in json) throw new Error("unexpected config.json");
 * ```
 */
export function llamaConfigToHF(cfg: LlamaConfig): Record<string, unknown> {
  const c = validateLlamaConfig(cfg);
  const json: Record<string, unknown> = {
    architectures: [c.model_type === "llama" ? "LlamaForCausalLM" : "Qwen2ForCausalLM"],
    attention_dropout: c.attention_dropout,
    bos_token_id: c.bos_token_id,
    eos_token_id: c.eos_token_id,
    hidden_act: c.hidden_act,
    hidden_size: c.hidden_size,
    initializer_range: c.initializer_range,
    intermediate_size: c.intermediate_size,
    max_position_embeddings: c.max_position_embeddings,
    model_type: c.model_type,
    num_attention_heads: c.num_attention_heads,
    num_hidden_layers: c.num_hidden_layers,
    num_key_value_heads: c.num_key_value_heads,
    rms_norm_eps: c.rms_norm_eps,
    rope_scaling: null,
    rope_theta: c.rope_theta,
    tie_word_embeddings: c.tie_word_embeddings,
    torch_dtype: "float32",
    use_cache: true,
    vocab_size: c.vocab_size,
  };
  if (c.model_type === "llama") {
    json.attention_bias = c.attention_bias;
    json.head_dim = c.head_dim;
    json.mlp_bias = c.mlp_bias;
    json.pretraining_tp = 1;
  } else {
    // Qwen2Config has no head_dim field, but Qwen2Attention reads one when the config carries it.
    if (c.head_dim * c.num_attention_heads !== c.hidden_size) json.head_dim = c.head_dim;
    json.use_sliding_window = false;
  }
  return Object.fromEntries(Object.entries(json).sort(([a], [b]) => (a < b ? -1 : 1)));
}

/**
 * The rotary base given by `rope_scaling` / `rope_parameters` (transformers 5 moves `rope_theta`
 * into the latter), or undefined when they give none. Both may be null or plain RoPE
 * (`rope_type` "default"); any other scaling is refused, naming the key.
 */
function ropeTheta(hf: Record<string, unknown>, fail: (why: string) => never): number | undefined {
  let theta: number | undefined;
  for (const key of ["rope_scaling", "rope_parameters"]) {
    const v = hf[key];
    if (v === undefined || v === null) continue;
    if (typeof v !== "object" || Array.isArray(v)) {
      fail(`"${key}" must be null or an object, got ${describe(v)}`);
    }
    const rope = v as Record<string, unknown>;
    const type = rope.rope_type ?? rope.type;
    const extra = Object.keys(rope).filter((k) => !["rope_type", "type", "rope_theta"].includes(k));
    if (type !== "default" || extra.length > 0) {
      fail(
        `"${key}" ${describe(v)} is not supported (only plain RoPE: null or rope_type "default")`,
      );
    }
    if (rope.rope_theta === undefined) continue;
    const t = rope.rope_theta;
    if (typeof t !== "number" || !(t > 0) || !Number.isFinite(t)) {
      fail(`"${key}.rope_theta" must be a positive finite number, got ${describe(t)}`);
    }
    if (hf.rope_theta !== undefined && hf.rope_theta !== t) {
      fail(`"${key}.rope_theta" (${t}) differs from "rope_theta" (${describe(hf.rope_theta)})`);
    }
    if (theta !== undefined && theta !== t) {
      fail(`"rope_scaling.rope_theta" (${theta}) differs from "rope_parameters.rope_theta" (${t})`);
    }
    theta = t as number;
  }
  return theta;
}

/**
 * hidden_size / num_attention_heads when both are positive integers and it divides; otherwise
 * undefined, so that validation names the bad field.
 */
function defaultHeadDim(
  cfg: Record<string, unknown>,
  fail: (why: string) => never,
): number | undefined {
  const hidden = cfg.hidden_size, heads = cfg.num_attention_heads;
  if (!isPositiveInt(hidden) || !isPositiveInt(heads)) return undefined;
  if ((hidden as number) % (heads as number) !== 0) {
    fail(
      `"hidden_size" (${hidden}) must be divisible by "num_attention_heads" (${heads}) ` +
        `unless "head_dim" is given`,
    );
  }
  return (hidden as number) / (heads as number);
}

function isPositiveInt(v: unknown): boolean {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 1;
}

/** A short description of a value for error messages. */
function describe(v: unknown): string {
  if (v === undefined) return "undefined";
  if (typeof v === "number" && !Number.isFinite(v)) return String(v);
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? s.slice(0, 57) + "..." : s;
}
