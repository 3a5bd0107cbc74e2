/**
 * Hugging Face Llama-family weights (`LlamaForCausalLM`, `Qwen2ForCausalLM`): parameter names
 * and shapes, picking and checking them from a safetensors file, and serializing them as
 * `save_pretrained` does. Reading and writing folders (with the GPT-2 family) is
 * {@linkcode loadModelCheckpoint} / {@linkcode saveModelCheckpoint}'s job.
 *
 * whet names parameters as Hugging Face does (`model.embed_tokens.weight`,
 * `model.layers.0.self_attn.q_proj.weight` …); `nn.Linear` weights are stored [out, in]. Reading
 * skips the rotary `inv_freq` buffers older transformers versions saved, and accepts (and ignores)
 * a `lm_head.weight` in a tied checkpoint: transformers ties the head to `embed_tokens` after
 * loading, so the stored copy is never used. Any other tensor the config does not have is an
 * error, so that weights of another architecture (say, Qwen2 biases under a Llama config) are
 * not silently dropped. Writing stores exactly the parameters, `lm_head.weight` only when untied,
 * with metadata `{"format": "pt"}`.
 *
 * @module
 */

import type { SaveCheckpointOptions } from "./checkpoint.ts";
import {
  type LlamaConfig,
  llamaConfigToHF,
  projectionBiases,
  validateLlamaConfig,
} from "./llama_config.ts";
import { type Safetensors, serializeSafetensors, type TensorData } from "./safetensors.ts";

/** Non-parameter buffers some checkpoints carry (rotary inverse frequencies, recomputed on load). */
const ROTARY_BUFFER = /^model\.(layers\.\d+\.self_attn\.)?rotary_emb\.inv_freq$/;
const LM_HEAD = "lm_head.weight";

/**
 * Every parameter of a Llama-family model with this config, name → shape, in the order of
 * Hugging Face's `state_dict`: `model.embed_tokens.weight` [V, C]; per layer
 * `input_layernorm.weight` [C], `self_attn.q_proj.weight` [H·d, C], `k_proj` and `v_proj`
 * [Hkv·d, C], `o_proj` [C, H·d] (biases as {@linkcode projectionBiases} says),
 * `post_attention_layernorm.weight` [C], `mlp.gate_proj` and `mlp.up_proj` [F, C],
 * `mlp.down_proj` [C, F] (biases when `mlp_bias`); then `model.norm.weight` [C] and, only when
 * the embeddings are untied, `lm_head.weight` [V, C].
 *
 * @example
 * ```ts
 * import { LLAMA_PRESETS, llamaParameterShapes } from "../mod.ts";
 * const shapes = llamaParameterShapes(LLAMA_PRESETS["llama-tiny"]); // C 48, H 4, Hkv 2, d 12
 * if (shapes.get("model.layers.1.self_attn.k_proj.weight")?.join() !== "24,48") {
 *   throw new Error("k_proj is [Hkv·d, C]");
 * }
 * if (!shapes.has("lm_head.weight")) throw new Error("llama-tiny has an untied head");
 * ```
 */
export function llamaParameterShapes(cfg: LlamaConfig): Map<string, readonly number[]> {
  const c = validateLlamaConfig(cfg);
  const C = c.hidden_size, F = c.intermediate_size;
  const q = c.num_attention_heads * c.head_dim, kv = c.num_key_value_heads * c.head_dim;
  const bias = projectionBiases(c);
  const shapes = new Map<string, readonly number[]>([
    ["model.embed_tokens.weight", [c.vocab_size, C]],
  ]);
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const l = `model.layers.${i}.`;
    shapes.set(l + "input_layernorm.weight", [C]);
    const attention: [string, number, number, boolean][] = [
      ["q_proj", q, C, bias.qkv],
      ["k_proj", kv, C, bias.qkv],
      ["v_proj", kv, C, bias.qkv],
      ["o_proj", C, q, bias.o],
    ];
    for (const [name, out, inp, hasBias] of attention) {
      shapes.set(`${l}self_attn.${name}.weight`, [out, inp]);
      if (hasBias) shapes.set(`${l}self_attn.${name}.bias`, [out]);
    }
    shapes.set(l + "post_attention_layernorm.weight", [C]);
    const mlp: [string, number, number][] = [["gate_proj", F, C], ["up_proj", F, C], [
      "down_proj",
      C,
      F,
    ]];
    for (const [name, out, inp] of mlp) {
      shapes.set(`${l}mlp.${name}.weight`, [out, inp]);
      if (c.mlp_bias) shapes.set(`${l}mlp.${name}.bias`, [out]);
    }
  }
  shapes.set("model.norm.weight", [C]);
  if (!c.tie_word_embeddings) shapes.set(LM_HEAD, [c.vocab_size, C]);
  return shapes;
}

/**
 * Picks, checks and decodes the parameters of a Llama-family model from a parsed safetensors
 * file (F32, F16 or BF16 in; float32 out). The map follows {@linkcode llamaParameterShapes}
 * order. Errors name the file and the tensor: a missing parameter, a wrong shape (with the
 * expected one), a tensor the config does not have, a non-float dtype, NaN or ±Infinity values
 * (unless the file was parsed with `allowNonFinite`). Every name and shape is checked before
 * any tensor is decoded.
 *
 * @example
 * ```ts
 * import {
 *   LLAMA_PRESETS,
 *   llamaParameterShapes,
 *   llamaTensorsFromSafetensors,
 *   parseSafetensors,
 *   serializeSafetensors,
 * } from "../mod.ts";
 * const config = LLAMA_PRESETS["smollm-tiny"]; // tied
 * const tensors: [string, { shape: readonly number[]; data: Float32Array }][] = [];
 * for (const [name, shape] of llamaParameterShapes(config)) {
 *   tensors.push([name, { shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) }]);
 * }
 * // Older files also hold rotary buffers and, though tied, a copy of the head: both are skipped.
 * tensors.push(["model.layers.0.self_attn.rotary_emb.inv_freq", { shape: [6], data: new Float32Array(6) }]);
 * tensors.push(["lm_head.weight", tensors[0][1]]);
 * const weights = llamaTensorsFromSafetensors(parseSafetensors(serializeSafetensors(tensors)), config);
 * if (weights.size !== 2 + 2 * 9 || weights.has("lm_head.weight")) throw new Error("bad picking");
 * ```
 */
export function llamaTensorsFromSafetensors(
  st: Safetensors,
  config: LlamaConfig,
): Map<string, TensorData> {
  const fail = (why: string): never => {
    throw new Error(`Cannot load Llama weights from ${st.file ?? "model.safetensors"}: ${why}`);
  };
  const expected = llamaParameterShapes(config);
  const names = new Set(st.names());
  const unexpected = [...names].filter((name) =>
    !expected.has(name) && !ROTARY_BUFFER.test(name) &&
    !(name === LM_HEAD && config.tie_word_embeddings)
  );
  if (unexpected.length > 0) {
    fail(
      `unexpected tensor${unexpected.length > 1 ? "s" : ""} ${list(unexpected)} (this ` +
        `${config.model_type} config has ${expected.size} parameter tensors, none by that name)`,
    );
  }
  const missing = [...expected.keys()].filter((name) => !names.has(name));
  if (missing.length > 0) {
    const untied = missing.includes(LM_HEAD)
      ? ' (config.json has "tie_word_embeddings": false)'
      : "";
    fail(`missing tensor${missing.length > 1 ? "s" : ""} ${list(missing)}${untied}`);
  }
  for (const [name, shape] of expected) checkShape(name, st.entry(name).shape, shape, fail);
  if (config.tie_word_embeddings && names.has(LM_HEAD)) {
    checkShape(LM_HEAD, st.entry(LM_HEAD).shape, expected.get("model.embed_tokens.weight")!, fail);
  }
  // Decoded only once every name and shape is known to fit.
  return new Map([...expected.keys()].map((name) => [name, st.tensor(name)]));
}

/**
 * The two files of a Llama-family checkpoint, in memory: `config.json` text (sorted keys,
 * 2-space indent and a final newline, as `save_pretrained` writes) and the `model.safetensors`
 * bytes (F32 unless `options.dtype` says otherwise, metadata `{"format": "pt"}`). Checks that
 * `tensors` holds exactly the parameters of `config` with the right shapes.
 *
 * @example
 * ```ts
 * import { LLAMA_PRESETS, llamaParameterShapes, parseSafetensors, serializeLlamaCheckpoint } from "../mod.ts";
 * const config = LLAMA_PRESETS["qwen2-tiny"];
 * const tensors = new Map(
 *   [...llamaParameterShapes(config)].map(([name, shape]) => [
 *     name,
 *     { shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) },
 *   ]),
 * );
 * const files = serializeLlamaCheckpoint(config, tensors);
 * const st = parseSafetensors(files.weights);
 * if (!st.names().includes("model.layers.0.self_attn.q_proj.bias") || st.metadata.format !== "pt") {
 *   throw new Error("unexpected file");
 * }
 * if (JSON.parse(files.config).architectures[0] !== "Qwen2ForCausalLM") throw new Error("config");
 * ```
 */
export function serializeLlamaCheckpoint(
  config: LlamaConfig,
  tensors: ReadonlyMap<string, TensorData>,
  options: SaveCheckpointOptions = {},
): { config: string; weights: Uint8Array } {
  const fail = (why: string): never => {
    throw new Error(`Cannot save checkpoint: ${why}`);
  };
  const expected = llamaParameterShapes(config);
  for (const name of tensors.keys()) {
    if (!expected.has(name)) {
      fail(`unexpected tensor "${name}" (not a parameter of this ${config.model_type} config)`);
    }
  }
  const entries: [string, TensorData][] = [];
  for (const [name, shape] of expected) {
    const t = tensors.get(name);
    if (t === undefined) return fail(`missing tensor "${name}"`);
    checkShape(name, t.shape, shape, fail);
    entries.push([name, t]);
  }
  const weights = serializeSafetensors(entries, {
    metadata: { format: "pt" },
    dtype: options.dtype,
  });
  return { config: JSON.stringify(llamaConfigToHF(config), null, 2) + "\n", weights };
}

function checkShape(
  name: string,
  actual: readonly number[],
  expected: readonly number[],
  fail: (why: string) => never,
): void {
  if (actual.length !== expected.length || actual.some((d, i) => d !== expected[i])) {
    fail(
      `tensor "${name}" has shape [${actual.join(", ")}]; the config needs [${
        expected.join(", ")
      }]`,
    );
  }
}

function list(names: string[]): string {
  const shown = names.slice(0, 5).map((n) => `"${n}"`).join(", ");
  return names.length > 5 ? `${shown} and ${names.length - 5} more` : shown;
}
