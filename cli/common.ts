/**
 * What the command-line tools share: usage errors, number flags, permission-aware file reading,
 * choosing a tokenizer, loading a model and a LoRA adapter.
 *
 * @module
 */

import { loadModelCheckpoint, type ModelCheckpoint } from "../models/checkpoint.ts";
import { gptConfig, type PresetName } from "../models/config.ts";
import type { Decoder, DecoderOptions } from "../models/decoder.ts";
import { GPT } from "../models/gpt.ts";
import { Llama } from "../models/llama.ts";
import {
  ByteTokenizer,
  HuggingFaceTokenizer,
  TiktokenTokenizer,
  type Tokenizer,
} from "../models/tokenizer.ts";
import { lora, readLoraConfig } from "../peft/lora.ts";
import type { Gpu } from "../runtime/gpu.ts";

/** A command-line mistake: printed with a pointer to --help, exit code 2. */
export class UsageError extends Error {}

/** `--flag` as an integer ≥ `min` (or `fallback` when absent). */
export function integerFlag(
  flag: string,
  text: string | undefined,
  fallback: number,
  min = 0,
): number {
  if (text === undefined) return fallback;
  const v = Number(text);
  if (!(text.trim() !== "" && Number.isInteger(v) && v >= min)) {
    throw new UsageError(`--${flag} must be an integer ≥ ${min}, got ${JSON.stringify(text)}`);
  }
  return v;
}

/** `--flag` as a finite number that `ok` accepts (`range` says which, for the message). */
export function realFlag(
  flag: string,
  text: string | undefined,
  fallback: number,
  ok: (v: number) => boolean,
  range: string,
): number {
  if (text === undefined) return fallback;
  const v = Number(text);
  if (!(text.trim() !== "" && Number.isFinite(v) && ok(v))) {
    throw new UsageError(`--${flag} must be a number ${range}, got ${JSON.stringify(text)}`);
  }
  return v;
}

/** Runs `fn`, turning a missing read permission into an error that says how to grant it. */
export async function reading<T>(flag: string, path: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (
      e instanceof Deno.errors.NotCapable || (e as Error).cause instanceof Deno.errors.NotCapable
    ) {
      throw new UsageError(
        `--${flag} ${path}: no permission to read it; run with --allow-read=${path}`,
      );
    }
    throw e;
  }
}

/**
 * The tokenizer `spec` names (`bytes`, `tiktoken-gpt2`, or a tokenizer.json path), or else the
 * model folder's tokenizer.json, or the tokenizer its vocabulary implies (50,257: GPT-2's; 256:
 * bytes); without a model folder, bytes.
 */
export async function tokenizerFor(
  spec: string | undefined,
  modelDir: string | undefined,
  vocab: number,
): Promise<Tokenizer> {
  if (spec === "bytes") return new ByteTokenizer();
  if (spec === "tiktoken-gpt2") return TiktokenTokenizer.gpt2();
  if (spec !== undefined) {
    return await reading("tokenizer", spec, () => HuggingFaceTokenizer.fromFile(spec));
  }
  if (modelDir === undefined) return new ByteTokenizer();
  const local = `${modelDir.replace(/\/+$/, "")}/tokenizer.json`;
  const found = await reading("model", modelDir, () => Deno.stat(local).catch(() => null));
  if (found) return await reading("model", modelDir, () => HuggingFaceTokenizer.fromFile(local));
  if (vocab === 50257) return TiktokenTokenizer.gpt2();
  if (vocab === 256) return new ByteTokenizer();
  throw new UsageError(
    `--tokenizer is needed: ${modelDir} has no tokenizer.json and its vocabulary of ${vocab} is not GPT-2's`,
  );
}

/**
 * Builds the model of a checkpoint read by `loadModelCheckpoint`, GPT-2 or Llama family by its
 * `model_type`, with the config's dropout rates (active in training only, as in Hugging Face); a
 * note through `log` says which are nonzero.
 */
export async function modelFromCheckpoint(
  gpu: Gpu,
  ckpt: ModelCheckpoint,
  options: DecoderOptions,
  log?: (line: string) => void,
): Promise<Decoder> {
  const opts = { ...options, weights: ckpt.weights };
  const rates: [string, number][] = ckpt.family === "gpt2"
    ? [
      ["attn_pdrop", ckpt.config.attn_pdrop],
      ["resid_pdrop", ckpt.config.resid_pdrop],
      ["embd_pdrop", ckpt.config.embd_pdrop],
    ]
    : [["attention_dropout", ckpt.config.attention_dropout]];
  const active = rates.filter(([, p]) => p > 0).map((r) => r.join(" "));
  if (active.length > 0) {
    log?.(`note: dropout in training, as config.json sets it: ${active.join(", ")}`);
  }
  if (ckpt.family === "gpt2") return await GPT.create(gpu, ckpt.config, opts);
  return await Llama.create(gpu, ckpt.config, opts);
}

/**
 * A frozen model for inference: a Hugging Face model folder (`dir`: GPT-2, Llama, Qwen2) or a
 * GPT-2 preset with random weights. Inference runs no dropout.
 */
export async function loadInferenceModel(
  gpu: Gpu,
  dir: string | undefined,
  preset: string | undefined,
  seed: number,
): Promise<Decoder> {
  if (dir !== undefined) {
    const ckpt = await reading("model", dir, () => loadModelCheckpoint(dir));
    return await modelFromCheckpoint(gpu, ckpt, { trainable: false });
  }
  return await GPT.create(gpu, gptConfig(preset as PresetName), {
    seed,
    trainable: false,
  });
}

/** Applies a LoRA adapter saved in PEFT's layout; returns its description. */
export async function applyLoraAdapter(model: Decoder, dir: string): Promise<string> {
  const config = await reading("adapter", dir, () => readLoraConfig(dir));
  const instance = await lora.apply(model, config, 0);
  await reading("adapter", dir, () => instance.load(dir));
  return instance.describe();
}
