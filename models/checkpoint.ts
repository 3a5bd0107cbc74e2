/**
 * Hugging Face GPT-2 checkpoints: a folder with `config.json` and `model.safetensors`, as
 * `GPT2LMHeadModel.save_pretrained` writes it.
 *
 * whet names parameters as Hugging Face's `GPT2Model` does (`wte.weight`, `h.0.attn.c_attn.weight`
 * …), Conv1D weights stored (in, out). Reading accepts keys with or without the `transformer.`
 * prefix (files in the wild have both), skips the `h.N.attn.bias` / `h.N.attn.masked_bias` mask
 * buffers that older transformers versions saved, and accepts a `lm_head.weight` only when it
 * equals `wte.weight` (whet ties them). Writing uses the keys `GPT2LMHeadModel.save_pretrained`
 * writes today: the `transformer.` prefix, no mask buffers (registered with `persistent=False`
 * since transformers 4.3x), no `lm_head.weight` (tied, so dropped as a shared tensor), and
 * metadata `{"format": "pt"}`.
 *
 * {@linkcode loadModelCheckpoint} and {@linkcode saveModelCheckpoint} read and write a folder of
 * any family whet implements, choosing GPT-2 or Llama by `config.json`'s `model_type`.
 *
 * @module
 */

import { files as fileAccess, joinPath as join } from "../io/files.ts";
import {
  configFromHF,
  configToHF,
  type GPTConfig,
  innerSize,
  type ModelConfig,
  readModelConfig,
  validateConfig,
} from "./config.ts";
import type { LlamaConfig } from "./llama_config.ts";
import { llamaTensorsFromSafetensors, serializeLlamaCheckpoint } from "./llama_checkpoint.ts";
import {
  parseSafetensors,
  readSafetensors,
  type Safetensors,
  serializeSafetensors,
  type TensorData,
  type WriteDtype,
  writeFileAtomic,
} from "./safetensors.ts";

/** A model's configuration and its parameters by whet name, in {@linkcode gpt2ParameterShapes} order. */
export interface Checkpoint {
  /** The model configuration. */
  config: GPTConfig;
  /** Parameters by whet name (Hugging Face GPT-2 names without `transformer.`). */
  tensors: Map<string, TensorData>;
}

/** File names of the Hugging Face layout. */
export const HF_CONFIG_FILE = "config.json";
/** File names of the Hugging Face layout. */
export const HF_WEIGHTS_FILE = "model.safetensors";

const PREFIX = "transformer.";
const MASK_BUFFER = /^h\.\d+\.attn\.(bias|masked_bias)$/;

/**
 * Every parameter of a GPT-2 model with this config, name → shape, in the order of Hugging Face's
 * `state_dict`: `wte.weight` [vocab, d], `wpe.weight` [n_positions, d], per block `ln_1`,
 * `attn.c_attn` ([d, 3d], [3d]), `attn.c_proj` ([d, d], [d]), `ln_2`, `mlp.c_fc` ([d, inner],
 * [inner]), `mlp.c_proj` ([inner, d], [d]), then `ln_f`. Conv1D weights are (in, out).
 *
 * @example
 * ```ts
 * import { gpt2ParameterShapes, PRESETS } from "../mod.ts";
 * const shapes = gpt2ParameterShapes(PRESETS.tiny);
 * const s = shapes.get("h.1.attn.c_attn.weight");
 * if (s?.[0] !== 32 || s[1] !== 96) throw new Error("c_attn is (in, out) = (d, 3d)");
 * ```
 */
export function gpt2ParameterShapes(cfg: GPTConfig): Map<string, readonly number[]> {
  const c = validateConfig(cfg);
  const d = c.n_embd;
  const inner = innerSize(c);
  const shapes = new Map<string, readonly number[]>([
    ["wte.weight", [c.vocab_size, d]],
    ["wpe.weight", [c.n_positions, d]],
  ]);
  for (let i = 0; i < c.n_layer; i++) {
    const h = `h.${i}.`;
    shapes.set(h + "ln_1.weight", [d]);
    shapes.set(h + "ln_1.bias", [d]);
    shapes.set(h + "attn.c_attn.weight", [d, 3 * d]);
    shapes.set(h + "attn.c_attn.bias", [3 * d]);
    shapes.set(h + "attn.c_proj.weight", [d, d]);
    shapes.set(h + "attn.c_proj.bias", [d]);
    shapes.set(h + "ln_2.weight", [d]);
    shapes.set(h + "ln_2.bias", [d]);
    shapes.set(h + "mlp.c_fc.weight", [d, inner]);
    shapes.set(h + "mlp.c_fc.bias", [inner]);
    shapes.set(h + "mlp.c_proj.weight", [inner, d]);
    shapes.set(h + "mlp.c_proj.bias", [d]);
  }
  shapes.set("ln_f.weight", [d]);
  shapes.set("ln_f.bias", [d]);
  return shapes;
}

/**
 * Reads a Hugging Face GPT-2 checkpoint folder (`config.json` + `model.safetensors`); needs read
 * permission for it. F32, F16 and BF16 weights are decoded to float32. The config (every field
 * and its range) is checked first, then the weights file's header against its size and the
 * config, and only then are the weights read. Errors name the file and the field or tensor: a
 * missing parameter, a wrong shape (with the expected one), a tensor whet does not know, an
 * untied `lm_head.weight`, or NaN/±Infinity values (unless `options.allowNonFinite`).
 *
 * @example
 * ```ts
 * import { GPT, gptConfig, Gpu, loadHFCheckpoint, saveHFCheckpoint } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const model = await GPT.create(gpu, gptConfig("tiny"), { seed: 1, trainable: false });
 * const dir = await Deno.makeTempDir();
 * await saveHFCheckpoint(dir, model.config, await model.exportWeights());
 * const { config, tensors } = await loadHFCheckpoint(dir); // config.json + model.safetensors
 * const copy = await GPT.create(gpu, config, { weights: tensors, trainable: false });
 * if (copy.config.n_layer !== 2 || tensors.get("wte.weight")?.shape.join() !== "256,32") {
 *   throw new Error("load failed");
 * }
 * copy.release();
 * model.release();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function loadHFCheckpoint(
  dir: string,
  options: { allowNonFinite?: boolean } = {},
): Promise<Checkpoint> {
  const { config, st } = await readCheckpointFiles(dir, configFromHF, options);
  return { config, tensors: gpt2TensorsFromSafetensors(st, config) };
}

/**
 * A checkpoint folder's `config.json`, read by `readConfig` (which checks every field and its
 * range), then its `model.safetensors` header, checked against the file's size: in this order,
 * so that a bad config or header fails before the weights are read.
 */
async function readCheckpointFiles<C>(
  dir: string,
  readConfig: (json: unknown, file: string) => C,
  options: { allowNonFinite?: boolean },
): Promise<{ config: C; st: Safetensors }> {
  const configPath = join(dir, HF_CONFIG_FILE);
  const weightsPath = join(dir, HF_WEIGHTS_FILE);
  let configText: string;
  try {
    configText = await fileAccess().readText(configPath);
  } catch (e) {
    throw new Error(`Cannot load checkpoint ${dir}: cannot read ${configPath}: ${message(e)}`, {
      cause: e,
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(configText);
  } catch (e) {
    throw new Error(
      `Cannot load checkpoint ${dir}: ${configPath} is not valid JSON: ${message(e)}`,
    );
  }
  const config = readConfig(json, configPath);
  let weights;
  try {
    weights = await fileAccess().stat(weightsPath);
  } catch (e) {
    throw new Error(
      `Cannot load checkpoint ${dir}: cannot read ${weightsPath}: ${message(e)}${await hint(dir)}`,
      { cause: e },
    );
  }
  if (!weights) {
    throw new Error(
      `Cannot load checkpoint ${dir}: cannot read ${weightsPath}: no such file${await hint(dir)}`,
    );
  }
  return { config, st: await readSafetensors(weightsPath, options) };
}

/** File names used in {@linkcode parseHFCheckpoint}'s error messages. */
export interface CheckpointSource {
  /** Where the config came from. Default "config.json". */
  configFile?: string;
  /** Where the weights came from. Default "model.safetensors". */
  weightsFile?: string;
}

/**
 * The in-memory half of {@linkcode loadHFCheckpoint}: a parsed `config.json` and the bytes of
 * `model.safetensors` to a checked {@linkcode Checkpoint}. The config is checked first, then the
 * file's header against it, then the weights are decoded; NaN or ±Infinity weights are refused
 * naming the tensor unless `options.allowNonFinite`.
 *
 * @example
 * ```ts
 * import { parseHFCheckpoint, serializeHFCheckpoint, gpt2ParameterShapes, PRESETS } from "../mod.ts";
 * const config = PRESETS.tiny;
 * const tensors = new Map(
 *   [...gpt2ParameterShapes(config)].map(([name, shape]) => [
 *     name,
 *     { shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) },
 *   ]),
 * );
 * const files = serializeHFCheckpoint(config, tensors);
 * const back = parseHFCheckpoint(JSON.parse(files.config), files.weights);
 * if (back.tensors.size !== tensors.size) throw new Error("round trip lost tensors");
 * ```
 */
export function parseHFCheckpoint(
  configJson: unknown,
  weights: Uint8Array,
  source: CheckpointSource = {},
  options: { allowNonFinite?: boolean } = {},
): Checkpoint {
  const weightsFile = source.weightsFile ?? HF_WEIGHTS_FILE;
  const config = configFromHF(configJson, source.configFile ?? HF_CONFIG_FILE);
  const st = parseSafetensors(weights, weightsFile, options);
  return { config, tensors: gpt2TensorsFromSafetensors(st, config) };
}

/**
 * Picks, checks and decodes the GPT-2 parameters of a parsed safetensors file (see the module
 * doc for the naming rules). The map follows {@linkcode gpt2ParameterShapes} order. Every name
 * and shape is checked before any tensor is decoded; NaN or ±Infinity values are refused naming
 * the tensor unless the file was parsed with `allowNonFinite`.
 *
 * @example
 * ```ts
 * import {
 *   gpt2ParameterShapes,
 *   gpt2TensorsFromSafetensors,
 *   gptConfig,
 *   parseSafetensors,
 *   serializeSafetensors,
 * } from "../mod.ts";
 * const config = gptConfig("tiny", { n_layer: 1 });
 * // A file as transformers writes it: "transformer." prefixes and an attention mask buffer.
 * const tensors: [string, { shape: readonly number[]; data: Float32Array }][] = [];
 * for (const [name, shape] of gpt2ParameterShapes(config)) {
 *   const size = shape.reduce((a, b) => a * b, 1);
 *   tensors.push([`transformer.${name}`, { shape, data: new Float32Array(size) }]);
 * }
 * tensors.push(["transformer.h.0.attn.bias", { shape: [1, 1, 64, 64], data: new Float32Array(4096) }]);
 * const st = parseSafetensors(serializeSafetensors(tensors));
 * const weights = gpt2TensorsFromSafetensors(st, config);
 * if (weights.size !== 16 || !weights.has("h.0.attn.c_attn.weight")) throw new Error("bad picking");
 * ```
 */
export function gpt2TensorsFromSafetensors(
  st: Safetensors,
  config: GPTConfig,
): Map<string, TensorData> {
  const file = st.file ?? HF_WEIGHTS_FILE;
  const fail = (why: string): never => {
    throw new Error(`Cannot load GPT-2 weights from ${file}: ${why}`);
  };
  const expected = gpt2ParameterShapes(config);
  const found = new Map<string, string>(); // whet name → key in the file
  const unexpected: string[] = [];
  let lmHead: string | undefined;
  for (const key of st.names()) {
    const name = key.startsWith(PREFIX) ? key.slice(PREFIX.length) : key;
    if (MASK_BUFFER.test(name)) continue;
    if (key === "lm_head.weight") {
      lmHead = key;
      continue;
    }
    if (!expected.has(name)) {
      unexpected.push(key);
      continue;
    }
    const other = found.get(name);
    if (other !== undefined) fail(`tensors "${other}" and "${key}" are the same parameter`);
    found.set(name, key);
  }
  if (unexpected.length > 0) {
    fail(
      `unexpected tensor${unexpected.length > 1 ? "s" : ""} ${list(unexpected)} (a GPT-2 ` +
        `checkpoint holds only ${expected.size} parameters for this config)`,
    );
  }
  const missing = [...expected.keys()].filter((name) => !found.has(name));
  if (missing.length > 0) fail(`missing tensor${missing.length > 1 ? "s" : ""} ${list(missing)}`);

  for (const [name, shape] of expected) {
    const key = found.get(name)!;
    checkShape(`tensor "${key}"`, st.entry(key).shape, shape, fail);
  }
  if (lmHead !== undefined) {
    checkShape(`tensor "${lmHead}"`, st.entry(lmHead).shape, expected.get("wte.weight")!, fail);
  }
  const tensors = new Map<string, TensorData>();
  for (const name of expected.keys()) tensors.set(name, st.tensor(found.get(name)!));
  if (lmHead !== undefined) {
    const head = st.tensor(lmHead).data;
    const wte = tensors.get("wte.weight")!.data;
    const a = new Uint32Array(head.buffer, head.byteOffset, head.length);
    const b = new Uint32Array(wte.buffer, wte.byteOffset, wte.length);
    const i = a.findIndex((x, j) => x !== b[j]);
    if (i >= 0) {
      fail(
        `"lm_head.weight" differs from "${found.get("wte.weight")}" (first at element ${i}: ` +
          `${head[i]} vs ${wte[i]}); whet ties the LM head to wte and cannot load an untied head`,
      );
    }
  }
  return tensors;
}

/** Options for {@linkcode saveHFCheckpoint} and {@linkcode serializeHFCheckpoint}. */
export interface SaveCheckpointOptions {
  /** Storage dtype of the weights. Default "F32". */
  dtype?: WriteDtype;
}

/**
 * The two files of a checkpoint, in memory: `config.json` text (sorted keys, 2-space indent and
 * a final newline, as `save_pretrained` writes) and the `model.safetensors` bytes. Checks that
 * `tensors` holds exactly the parameters of `config` with the right shapes.
 *
 * @example
 * ```ts
 * import { gpt2ParameterShapes, gptConfig, parseHFCheckpoint, serializeHFCheckpoint } from "../mod.ts";
 * const config = gptConfig("tiny", { n_layer: 1 });
 * const tensors = new Map(
 *   [...gpt2ParameterShapes(config)].map(([name, shape]) => [
 *     name,
 *     { shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.5) },
 *   ]),
 * );
 * const files = serializeHFCheckpoint(config, tensors);
 * const back = parseHFCheckpoint(JSON.parse(files.config), files.weights);
 * if (back.config.n_layer !== 1 || back.tensors.get("ln_f.bias")?.data[0] !== 0.5) {
 *   throw new Error("round trip failed");
 * }
 * ```
 */
export function serializeHFCheckpoint(
  config: GPTConfig,
  tensors: ReadonlyMap<string, TensorData>,
  options: SaveCheckpointOptions = {},
): { config: string; weights: Uint8Array } {
  const fail = (why: string): never => {
    throw new Error(`Cannot save checkpoint: ${why}`);
  };
  const expected = gpt2ParameterShapes(config);
  for (const name of tensors.keys()) {
    if (!expected.has(name)) fail(`unexpected tensor "${name}" (not a GPT-2 parameter)`);
  }
  const entries: [string, TensorData][] = [];
  for (const [name, shape] of expected) {
    const t = tensors.get(name);
    if (t === undefined) return fail(`missing tensor "${name}"`);
    checkShape(`tensor "${name}"`, t.shape, shape, fail);
    entries.push([PREFIX + name, t]);
  }
  const weights = serializeSafetensors(entries, {
    metadata: { format: "pt" },
    dtype: options.dtype,
  });
  return { config: JSON.stringify(configToHF(config), null, 2) + "\n", weights };
}

/**
 * Writes a Hugging Face GPT-2 checkpoint folder (created if needed): `model.safetensors`, then
 * `config.json`, each atomically. Needs read and write permission for the folder. The result loads
 * with `GPT2LMHeadModel.from_pretrained(dir)` and with {@linkcode loadHFCheckpoint}.
 *
 * @example
 * ```ts
 * import { GPT, gptConfig, Gpu, saveHFCheckpoint } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const model = await GPT.create(gpu, gptConfig("tiny"), { seed: 1, trainable: false });
 * const dir = await Deno.makeTempDir();
 * await saveHFCheckpoint(dir, model.config, await model.exportWeights());
 * const config = JSON.parse(await Deno.readTextFile(`${dir}/config.json`));
 * if (config.model_type !== "gpt2" || config.n_embd !== 32) throw new Error("bad config.json");
 * model.release();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function saveHFCheckpoint(
  dir: string,
  config: GPTConfig,
  tensors: ReadonlyMap<string, TensorData>,
  options: SaveCheckpointOptions = {},
): Promise<void> {
  await writeCheckpointFiles(dir, serializeHFCheckpoint(config, tensors, options));
}

/** Writes `model.safetensors`, then `config.json` (so a folder with a config is complete). */
async function writeCheckpointFiles(
  dir: string,
  files: { config: string; weights: Uint8Array },
): Promise<void> {
  await fileAccess().mkdir(dir);
  await writeFileAtomic(join(dir, HF_WEIGHTS_FILE), files.weights);
  await writeFileAtomic(join(dir, HF_CONFIG_FILE), files.config);
}

/**
 * A checkpoint of any family whet implements, tagged with the family: its configuration and its
 * parameters by Hugging Face name (GPT-2 names without `transformer.`, Llama names as stored).
 */
export type ModelCheckpoint =
  | { family: "gpt2"; config: GPTConfig; weights: Map<string, TensorData> }
  | { family: "llama"; config: LlamaConfig; weights: Map<string, TensorData> };

/**
 * The in-memory half of {@linkcode loadModelCheckpoint}: a parsed `config.json` and the bytes of
 * `model.safetensors` to a checked {@linkcode ModelCheckpoint}, the family chosen by the config's
 * `model_type` (see {@linkcode readModelConfig}).
 *
 * @example
 * ```ts
 * import { LLAMA_PRESETS, llamaParameterShapes, parseModelCheckpoint, serializeLlamaCheckpoint } from "../mod.ts";
 * const config = LLAMA_PRESETS["llama-tiny"];
 * const tensors = new Map(
 *   [...llamaParameterShapes(config)].map(([name, shape]) => [
 *     name,
 *     { shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) },
 *   ]),
 * );
 * const files = serializeLlamaCheckpoint(config, tensors);
 * const back = parseModelCheckpoint(JSON.parse(files.config), files.weights);
 * if (back.family !== "llama" || back.weights.size !== tensors.size) throw new Error("round trip");
 * ```
 */
export function parseModelCheckpoint(
  configJson: unknown,
  weights: Uint8Array,
  source: CheckpointSource = {},
  options: { allowNonFinite?: boolean } = {},
): ModelCheckpoint {
  const model = readModelConfig(configJson, source.configFile ?? HF_CONFIG_FILE);
  const st = parseSafetensors(weights, source.weightsFile ?? HF_WEIGHTS_FILE, options);
  return tensorsOf(model, st);
}

/** The weights of a checked config's family from a parsed safetensors file. */
function tensorsOf(model: ModelConfig, st: Safetensors): ModelCheckpoint {
  return model.family === "gpt2"
    ? {
      family: "gpt2",
      config: model.config,
      weights: gpt2TensorsFromSafetensors(st, model.config),
    }
    : {
      family: "llama",
      config: model.config,
      weights: llamaTensorsFromSafetensors(st, model.config),
    };
}

/**
 * Reads a Hugging Face checkpoint folder (`config.json` + `model.safetensors`) of any family
 * whet implements: GPT-2 as {@linkcode loadHFCheckpoint} reads it, Llama and Qwen2 as
 * {@linkcode llamaTensorsFromSafetensors} does, in the same order as {@linkcode loadHFCheckpoint}
 * (config, then header, then weights; NaN/±Infinity refused unless `options.allowNonFinite`).
 * Needs read permission for the folder. Sharded checkpoints (`model.safetensors.index.json`) are
 * not supported, and the error says so.
 *
 * @example
 * ```ts
 * import { LLAMA_PRESETS, llamaParameterShapes, loadModelCheckpoint, saveModelCheckpoint } from "../mod.ts";
 * const config = LLAMA_PRESETS["smollm-tiny"];
 * const weights = new Map(
 *   [...llamaParameterShapes(config)].map(([name, shape]) => [
 *     name,
 *     { shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.5) },
 *   ]),
 * );
 * const dir = await Deno.makeTempDir();
 * await saveModelCheckpoint(dir, config, weights);
 * const back = await loadModelCheckpoint(dir);
 * if (back.family !== "llama" || back.weights.get("model.norm.weight")?.data[0] !== 0.5) {
 *   throw new Error("round trip failed");
 * }
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function loadModelCheckpoint(
  dir: string,
  options: { allowNonFinite?: boolean } = {},
): Promise<ModelCheckpoint> {
  const { config, st } = await readCheckpointFiles(dir, readModelConfig, options);
  return tensorsOf(config, st);
}

/**
 * Writes a Hugging Face checkpoint folder (created if needed) for a GPT-2 or a Llama-family
 * config: `model.safetensors`, then `config.json`, each atomically, with the names, layout and
 * metadata of {@linkcode serializeHFCheckpoint} or {@linkcode serializeLlamaCheckpoint}. Needs
 * read and write permission for the folder.
 *
 * @example
 * ```ts
 * import { GPT, gptConfig, Gpu, loadModelCheckpoint, saveModelCheckpoint } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const model = await GPT.create(gpu, gptConfig("tiny"), { seed: 1, trainable: false });
 * const dir = await Deno.makeTempDir();
 * await saveModelCheckpoint(dir, model.config, await model.exportWeights());
 * if ((await loadModelCheckpoint(dir)).family !== "gpt2") throw new Error("GPT-2 checkpoint");
 * model.release();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function saveModelCheckpoint(
  dir: string,
  config: GPTConfig | LlamaConfig,
  weights: ReadonlyMap<string, TensorData>,
  options: SaveCheckpointOptions = {},
): Promise<void> {
  // Only a Llama-family config has model_type (GPTConfig is the config of the one GPT-2 type).
  const files = "model_type" in config
    ? serializeLlamaCheckpoint(config, weights, options)
    : serializeHFCheckpoint(config, weights, options);
  await writeCheckpointFiles(dir, files);
}

function checkShape(
  what: string,
  actual: readonly number[],
  expected: readonly number[],
  fail: (why: string) => never,
): void {
  if (actual.length !== expected.length || actual.some((d, i) => d !== expected[i])) {
    fail(`${what} has shape [${actual.join(", ")}]; the config needs [${expected.join(", ")}]`);
  }
}

function list(names: string[]): string {
  const shown = names.slice(0, 5).map((n) => `"${n}"`).join(", ");
  return names.length > 5 ? `${shown} and ${names.length - 5} more` : shown;
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Explains a missing model.safetensors when the folder holds another format. */
async function hint(dir: string): Promise<string> {
  const others: [string, string][] = [
    ["model.safetensors.index.json", "sharded checkpoints are not supported"],
    ["pytorch_model.bin", "only safetensors weights are supported; convert pytorch_model.bin"],
  ];
  for (const [file, why] of others) {
    const found = await fileAccess().stat(join(dir, file)).catch(() => undefined);
    if (found) return ` (${file} exists: ${why})`;
  }
  return "";
}
