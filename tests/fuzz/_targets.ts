/**
 * What the fuzz tests feed whet: for each format a corpus of valid files, a seeded way to mutate
 * them, and the loaders a user's file goes through (the same functions the CLI calls). Input `i`
 * of a target is a pure function of the target's seed and `i` ({@linkcode inputOf}), so any one
 * input can be rebuilt alone from the numbers a failure prints.
 *
 * @module
 */

import { loadConfig } from "../../cli/config.ts";
import { readJsonl } from "../../data/examples.ts";
import { configToHF, type GPTConfig } from "../../models/config.ts";
import { gpt2ParameterShapes, loadModelCheckpoint } from "../../models/checkpoint.ts";
import { type LlamaConfig, llamaConfigToHF } from "../../models/llama_config.ts";
import { llamaParameterShapes } from "../../models/llama_checkpoint.ts";
import {
  FLOAT_DTYPES,
  parseSafetensors,
  readSafetensors,
  serializeSafetensors,
  type TensorData,
} from "../../models/safetensors.ts";
import { HuggingFaceTokenizer } from "../../models/tokenizer.ts";
import { readBottleneckConfig } from "../../peft/adapters.ts";
import { readIA3Config } from "../../peft/ia3.ts";
import { readLoraConfig } from "../../peft/lora.ts";
import { readPrefixConfig } from "../../peft/prefix.ts";
import { readPromptConfig } from "../../peft/prompt.ts";
import type { Rng } from "../../runtime/rng.ts";
import { byteFallbackJson, byteLevelJson } from "../models/_llama_tokenizers.ts";
import {
  EDGE_VALUES,
  JSON_TOKENS,
  jsonText,
  mutateBytes,
  mutateJson,
  mutateLines,
  pick,
} from "./_mutate.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** One format under test. */
export interface Target {
  /** Name, as the tests report it. */
  readonly name: string;
  /** Inputs per run. */
  readonly count: number;
  /** Seed of the run. */
  readonly seed: number;
  /** The file each input is written to, inside the target's folder. */
  readonly file: string;
  /** Writes the fixed files of the target's folder (weights beside a config.json, …). */
  setup(dir: string): Promise<void>;
  /** The bytes of one input, drawn from `rng` only. */
  input(rng: Rng): Uint8Array;
  /**
   * The ways whet loads the input (`path` already holds it): each one resolves for a valid load
   * and throws otherwise.
   */
  readonly loads: readonly ((path: string, bytes: Uint8Array, i: number) => Promise<unknown>)[];
  /** What a whet error about this input must name (see _criterion.ts). */
  names(path: string, bytes: Uint8Array): string[];
}

const FILE_DICTIONARY = [...JSON_TOKENS, '"dtype"', '"shape"', '"data_offsets"', '"F16"', "0"];

// ---------------------------------------------------------------------------------------------
// safetensors

function f32(values: number[]): TensorData {
  return { shape: [values.length], data: new Float32Array(values) };
}

/** Valid files: F32 with metadata, F16 with a scalar and an empty tensor, BF16, integer dtypes. */
const SAFETENSORS_CORPUS: readonly Uint8Array[] = [
  serializeSafetensors([["w", { shape: [2, 3], data: new Float32Array([1, -2, 3, 0.5, 0, 7]) }], [
    "b",
    f32([0.25, -1, 2]),
  ]], { metadata: { format: "pt" } }),
  serializeSafetensors([["s", { shape: [], data: new Float32Array([3]) }], [
    "e",
    { shape: [0, 4], data: new Float32Array() },
  ], ["h.0.w", f32([1, 2, 3, 4, 5])]], { dtype: "F16" }),
  serializeSafetensors([["x", { shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) }]], {
    dtype: "BF16",
    metadata: { format: "pt", note: "ünïcode" },
  }),
  rawSafetensors({
    ids: { dtype: "I64", shape: [2], data_offsets: [0, 16] },
    mask: { dtype: "U8", shape: [4], data_offsets: [16, 20] },
    d: { dtype: "F64", shape: [1], data_offsets: [20, 28] },
  }, 28),
];

/** A file from a header object and a data area of `dataLength` bytes (seeded content). */
function rawSafetensors(header: unknown, dataLength: number, text?: string): Uint8Array {
  const json = encoder.encode(text ?? JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + dataLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  for (let i = 0; i < dataLength; i++) out[8 + json.length + i] = (i * 37) & 0x3f;
  return out;
}

function headerOf(bytes: Uint8Array): { json: unknown; dataLength: number } {
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  return {
    json: JSON.parse(decoder.decode(bytes.subarray(8, 8 + n))),
    dataLength: bytes.length - 8 - n,
  };
}

const SAFETENSORS_KEYS = ["dtype", "shape", "data_offsets", "__metadata__", "w", "b", "format"];

const safetensors: Target = {
  name: "safetensors",
  count: 3000,
  seed: 1401,
  file: "model.safetensors",
  setup: async () => {},
  input(rng) {
    const base = pick(rng, SAFETENSORS_CORPUS);
    const r = rng.float();
    if (r < 0.4) return mutateBytes(rng, base, FILE_DICTIONARY);
    // A header edited as JSON or as text, with its length field kept right (most of the time),
    // so that the checks behind the length are reached.
    const { json, dataLength } = headerOf(base);
    let value = json;
    for (let k = 1 + rng.int(3); k > 0; k--) value = mutateJson(rng, value, SAFETENSORS_KEYS);
    let text = jsonText(rng, value);
    if (r > 0.8) text = decoder.decode(mutateBytes(rng, encoder.encode(text), FILE_DICTIONARY));
    const length = rng.float() < 0.9 ? dataLength : rng.int(64);
    const out = rawSafetensors(undefined, length, text);
    if (rng.float() < 0.1) new DataView(out.buffer).setBigUint64(0, BigInt(rng.int(1 << 20)), true);
    return out;
  },
  loads: [async (path, bytes, i) => {
    // Half through the file reader (header first), half through the in-memory parser.
    const st = i % 2 === 0 ? await readSafetensors(path) : parseSafetensors(bytes, path);
    for (const name of st.names()) {
      if (FLOAT_DTYPES.includes(st.entry(name).dtype)) st.tensor(name);
      else st.bytes(name);
    }
  }],
  names: (path) => [path],
};

// ---------------------------------------------------------------------------------------------
// config.json beside model.safetensors

/** Deterministic small weights for a parameter list. */
function weightsFor(shapes: Map<string, readonly number[]>): Uint8Array {
  let s = 1;
  return serializeSafetensors(
    [...shapes].map(([name, shape]) => {
      const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
      for (let i = 0; i < data.length; i++) {
        data[i] = ((s = (s * 48271) % 2147483647) / 2 ** 31) - 0.5;
      }
      return [name, { shape, data }];
    }),
    { metadata: { format: "pt" } },
  );
}

const GPT_TINY: GPTConfig = {
  vocab_size: 11,
  n_positions: 6,
  n_embd: 4,
  n_layer: 1,
  n_head: 2,
  n_inner: null,
  layer_norm_epsilon: 1e-5,
  resid_pdrop: 0,
  embd_pdrop: 0,
  attn_pdrop: 0,
  initializer_range: 0.02,
  bos_token_id: 10,
  eos_token_id: 10,
};

const LLAMA_TINY: LlamaConfig = {
  model_type: "llama",
  vocab_size: 11,
  hidden_size: 4,
  intermediate_size: 6,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  head_dim: 2,
  max_position_embeddings: 16,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  tie_word_embeddings: false,
  attention_bias: false,
  mlp_bias: false,
  hidden_act: "silu",
  initializer_range: 0.02,
  attention_dropout: 0,
  bos_token_id: 1,
  eos_token_id: [2, 3],
};

/** GPT-2 small's config.json as the Hub serves it (its weights here are the tiny model's). */
const GPT2_HUB = {
  activation_function: "gelu_new",
  architectures: ["GPT2LMHeadModel"],
  attn_pdrop: 0.1,
  bos_token_id: 50256,
  embd_pdrop: 0.1,
  eos_token_id: 50256,
  initializer_range: 0.02,
  layer_norm_epsilon: 1e-05,
  model_type: "gpt2",
  n_ctx: 1024,
  n_embd: 768,
  n_head: 12,
  n_layer: 12,
  n_positions: 1024,
  resid_pdrop: 0.1,
  summary_activation: null,
  summary_first_dropout: 0.1,
  summary_proj_to_labels: true,
  summary_type: "cls_index",
  summary_use_proj: true,
  task_specific_params: { "text-generation": { do_sample: true, max_length: 50 } },
  vocab_size: 50257,
};

const CONFIG_KEYS = [
  "model_type",
  "n_layer",
  "n_embd",
  "n_head",
  "n_inner",
  "vocab_size",
  "n_positions",
  "n_ctx",
  "hidden_size",
  "num_hidden_layers",
  "num_attention_heads",
  "num_key_value_heads",
  "head_dim",
  "intermediate_size",
  "max_position_embeddings",
  "rope_theta",
  "rope_scaling",
  "rope_parameters",
  "tie_word_embeddings",
  "attention_bias",
  "mlp_bias",
  "eos_token_id",
  "bos_token_id",
  "activation_function",
  "hidden_act",
  "pretraining_tp",
  "use_sliding_window",
  "layer_norm_epsilon",
  "rms_norm_eps",
];

function configTarget(
  name: string,
  seed: number,
  corpus: readonly unknown[],
  weights: () => Uint8Array,
): Target {
  return {
    name,
    count: 1000,
    seed,
    file: "config.json",
    setup: (dir) => Deno.writeFile(`${dir}/model.safetensors`, weights()),
    input(rng) {
      let value = pick(rng, corpus);
      for (let k = 1 + rng.int(3); k > 0; k--) value = mutateJson(rng, value, CONFIG_KEYS);
      const text = encoder.encode(jsonText(rng, value));
      return rng.float() < 0.2 ? mutateBytes(rng, text, FILE_DICTIONARY) : text;
    },
    loads: [async (path) => {
      const dir = path.slice(0, path.lastIndexOf("/"));
      const ck = await loadModelCheckpoint(dir);
      const shapes = ck.family === "gpt2"
        ? gpt2ParameterShapes(ck.config)
        : llamaParameterShapes(ck.config);
      if (ck.weights.size !== shapes.size) throw new Error("a load returned the wrong tensors");
    }],
    names: (path) => [path, path.replace(/config\.json$/, "model.safetensors")],
  };
}

const gpt2Config = configTarget(
  "config.json (GPT-2)",
  1402,
  [configToHF(GPT_TINY), { ...configToHF(GPT_TINY), model_type: undefined }, GPT2_HUB],
  () => weightsFor(gpt2ParameterShapes(GPT_TINY)),
);

const llamaConfig = configTarget(
  "config.json (Llama)",
  1403,
  [
    llamaConfigToHF(LLAMA_TINY),
    { ...llamaConfigToHF(LLAMA_TINY), head_dim: null, num_key_value_heads: null },
    llamaConfigToHF({ ...LLAMA_TINY, model_type: "qwen2", attention_bias: true }),
    { ...llamaConfigToHF(LLAMA_TINY), rope_parameters: { rope_type: "default", rope_theta: 1e4 } },
  ],
  () => weightsFor(llamaParameterShapes(LLAMA_TINY)),
);

// ---------------------------------------------------------------------------------------------
// adapter_config.json, through each PEFT method's reader

const ADAPTER_CORPUS = [
  {
    alpha_pattern: {},
    base_model_name_or_path: "gpt2",
    bias: "none",
    fan_in_fan_out: true,
    inference_mode: true,
    init_lora_weights: true,
    layers_pattern: null,
    layers_to_transform: null,
    lora_alpha: 16,
    lora_dropout: 0.05,
    modules_to_save: null,
    peft_type: "LORA",
    r: 8,
    rank_pattern: {},
    target_modules: ["c_attn", "c_proj"],
    task_type: "CAUSAL_LM",
    use_dora: false,
    use_rslora: false,
  },
  {
    peft_type: "IA3",
    task_type: "CAUSAL_LM",
    target_modules: ["c_attn", "mlp.c_proj"],
    feedforward_modules: ["mlp.c_proj"],
    fan_in_fan_out: true,
    layers_to_transform: 1,
  },
  {
    peft_type: "PROMPT_TUNING",
    task_type: "CAUSAL_LM",
    num_virtual_tokens: 8,
    num_transformer_submodules: 1,
    prompt_tuning_init: "TEXT",
    prompt_tuning_init_text: "Classify:",
    token_dim: 768,
    tokenizer_name_or_path: "gpt2",
  },
  {
    peft_type: "PREFIX_TUNING",
    task_type: "CAUSAL_LM",
    num_virtual_tokens: 4,
    prefix_projection: false,
  },
  {
    whet_method: "bottleneck",
    placement: "houlsby",
    reduction_factor: 8,
    non_linearity: "relu",
    layers: [0],
  },
];

const ADAPTER_KEYS = [
  "peft_type",
  "r",
  "lora_alpha",
  "lora_dropout",
  "target_modules",
  "layers_to_transform",
  "use_rslora",
  "feedforward_modules",
  "num_virtual_tokens",
  "prompt_tuning_init",
  "num_transformer_submodules",
  "prefix_projection",
  "whet_method",
  "placement",
  "reduction_factor",
  "non_linearity",
  "layers",
];

const dirOf = (path: string) => path.slice(0, path.lastIndexOf("/"));

const adapterConfig: Target = {
  name: "adapter_config.json",
  count: 1500,
  seed: 1404,
  file: "adapter_config.json",
  setup: async () => {},
  input(rng) {
    let value: unknown = pick(rng, ADAPTER_CORPUS);
    for (let k = 1 + rng.int(3); k > 0; k--) value = mutateJson(rng, value, ADAPTER_KEYS);
    const text = encoder.encode(jsonText(rng, value));
    return rng.float() < 0.2 ? mutateBytes(rng, text, FILE_DICTIONARY) : text;
  },
  loads: [readLoraConfig, readIA3Config, readPromptConfig, readPrefixConfig, readBottleneckConfig]
    .map((read) => (path: string) => read(dirOf(path))),
  names: (path) => [path],
};

// ---------------------------------------------------------------------------------------------
// tokenizer.json

const TOKENIZER_CORPUS = [
  byteLevelJson("smollm2"),
  byteLevelJson("qwen2"),
  byteLevelJson("llama3"),
  byteFallbackJson("normalizer"),
  byteFallbackJson("metaspace"),
];

const TOKENIZER_KEYS = [
  "model",
  "type",
  "vocab",
  "merges",
  "unk_token",
  "byte_fallback",
  "ignore_merges",
  "normalizer",
  "pre_tokenizer",
  "pretokenizers",
  "decoder",
  "added_tokens",
  "id",
  "content",
  "special",
  "pattern",
  "Regex",
  "behavior",
  "add_prefix_space",
];

const tokenizerJson: Target = {
  name: "tokenizer.json",
  count: 800,
  seed: 1405,
  file: "tokenizer.json",
  setup: async () => {},
  input(rng) {
    let value: unknown = pick(rng, TOKENIZER_CORPUS);
    for (let k = 1 + rng.int(3); k > 0; k--) value = mutateJson(rng, value, TOKENIZER_KEYS);
    const text = encoder.encode(jsonText(rng, value));
    return rng.float() < 0.15 ? mutateBytes(rng, text, FILE_DICTIONARY) : text;
  },
  loads: [async (path) => {
    const tok = await HuggingFaceTokenizer.fromFile(path);
    // A tokenizer that loads must also work.
    tok.decode(tok.encode("Hello world, héllo 12345!\n"));
  }],
  names: (path) => [path],
};

// ---------------------------------------------------------------------------------------------
// YAML run configs and --key=value overrides

const YAML_CORPUS: readonly string[] = [
  ...[...Deno.readDirSync(new URL("../../configs/", import.meta.url))]
    .map((e) => e.name)
    .filter((n) => n.endsWith(".yaml"))
    .sort()
    .map((n) => Deno.readTextFileSync(new URL(`../../configs/${n}`, import.meta.url))),
  "name: anchors\ndata:\n  tasks: &t [arithmetic, sentiment]\n  held_out: *t\n" +
  "schedule: &s\n  steps: 10\n  batch_size: 4\n",
];

const YAML_TOKENS = [
  "&a ",
  "*a",
  "&b [*a, *a]",
  "<<: *a",
  "!!str ",
  "!!int ",
  "!!binary ",
  "!!set ",
  "{",
  "}",
  "[",
  "]",
  ": ",
  "- ",
  "? ",
  "\t",
  "---\n",
  "...\n",
  "%YAML 1.2\n",
  "~",
  ".inf",
  "-.inf",
  ".nan",
  "0x10",
  "0o7",
  "1e400",
  "-0",
  "1_000",
  "2001-12-14",
  "'",
  '"',
  "#",
  "|\n",
  ">-\n",
  "__proto__: ",
  "constructor: ",
  "peft:\n  method: ",
  "x".repeat(5000),
  "\u0085",
  "\ufeff",
];

/** An alias bomb of `depth` doubling levels under `indent`. */
function aliasBomb(depth: number, indent: string): string {
  let yaml = `${indent}l0: &a0 {x: 1, y: 1}\n`;
  for (let i = 1; i < depth; i++) yaml += `${indent}l${i}: &a${i} {x: *a${i - 1}, y: *a${i - 1}}\n`;
  return yaml;
}

const yamlConfig: Target = {
  name: "YAML config",
  count: 1500,
  seed: 1406,
  file: "run.yaml",
  setup: async () => {},
  input(rng) {
    let text = pick(rng, YAML_CORPUS);
    const r = rng.float();
    if (r < 0.05) {
      text = `peft:\n  method: lora\n${aliasBomb(5 + rng.int(30), "  ")}`;
    } else if (r < 0.6) {
      text = mutateLines(rng, text, YAML_TOKENS);
    } else {
      return mutateBytes(rng, encoder.encode(text), YAML_TOKENS);
    }
    return encoder.encode(text);
  },
  loads: [(path) => loadConfig(path, [])],
  names: (path) => [path],
};

const OVERRIDE_KEYS = [
  "steps",
  "lr",
  "method",
  "name",
  "seed",
  "schedule.min_lr_ratio",
  "schedule.warmup_steps",
  "optimizer.beta2",
  "data.tasks",
  "data.max_length",
  "peft.r",
  "peft.method",
  "peft.target_modules",
  "eval.every",
  "output.checkpoint_every",
  "model.path",
];

const overrides: Target = {
  name: "--key=value overrides",
  count: 500,
  seed: 1407,
  file: "args.txt",
  setup: async () => {},
  input(rng) {
    const key = rng.float() < 0.8
      ? pick(rng, OVERRIDE_KEYS)
      : decoder.decode(mutateBytes(rng, encoder.encode(pick(rng, OVERRIDE_KEYS)), ["."]));
    const value = rng.float() < 0.5
      ? pick(rng, YAML_TOKENS)
      : JSON.stringify(pick(rng, EDGE_VALUES)) ?? "";
    return encoder.encode(`--${key}=${value}`);
  },
  loads: [(_, bytes) => loadConfig(undefined, [decoder.decode(bytes)])],
  // Whatever the key became, the error names the argument's key part.
  names: (_, bytes) => [decoder.decode(bytes).split("=")[0].slice(0, 50)],
};

// ---------------------------------------------------------------------------------------------
// JSONL data

const JSONL_CORPUS: readonly string[] = [
  '{"prompt": "2+2=", "completion": " 4"}\n{"prompt": "Translate: chat", "completion": " cat", "task": "t"}\n',
  '{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}, ' +
  '{"role": "assistant", "content": "héllo ✓"}]}\n\n{"prompt": "", "completion": "x"}\r\n',
  '{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], "task": "chat"}\n',
];

const JSONL_KEYS = ["prompt", "completion", "task", "messages", "role", "content", "choices"];

const jsonl: Target = {
  name: "JSONL",
  count: 1500,
  seed: 1408,
  file: "train.jsonl",
  setup: async () => {},
  input(rng) {
    const text = pick(rng, JSONL_CORPUS);
    const r = rng.float();
    if (r < 0.45) return mutateBytes(rng, encoder.encode(text), JSON_TOKENS);
    if (r < 0.65) return encoder.encode(mutateLines(rng, text, JSON_TOKENS));
    // One line edited as JSON.
    const lines = text.split("\n");
    const i = rng.int(lines.length);
    try {
      lines[i] = jsonText(rng, mutateJson(rng, JSON.parse(lines[i]), JSONL_KEYS)).replace(
        /\n\s*/g,
        "",
      );
    } catch {
      lines[i] = JSON.stringify(pick(rng, EDGE_VALUES)) ?? "";
    }
    return encoder.encode(lines.join("\n"));
  },
  loads: [(path) => readJsonl(path)],
  names: (path) => [path],
};

/** Every target, in the order the tests run them. */
export const TARGETS: readonly Target[] = [
  safetensors,
  gpt2Config,
  llamaConfig,
  adapterConfig,
  tokenizerJson,
  yamlConfig,
  overrides,
  jsonl,
];
