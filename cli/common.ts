/**
 * What the command-line tools share: usage errors, number flags, permission-aware file reading,
 * choosing a tokenizer, loading a model and a LoRA adapter.
 *
 * @module
 */

import { loadHFCheckpoint } from "../models/checkpoint.ts";
import { gptConfig, type PresetName } from "../models/config.ts";
import { GPT } from "../models/gpt.ts";
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
 * A frozen model for inference: a Hugging Face GPT-2 folder (`dir`) or a preset with random
 * weights. Inference runs no dropout, so a checkpoint's attention dropout (which whet cannot
 * train) is set to 0.
 */
export async function loadInferenceModel(
  gpu: Gpu,
  dir: string | undefined,
  preset: string | undefined,
  seed: number,
): Promise<GPT> {
  if (dir !== undefined) {
    const ckpt = await reading("model", dir, () => loadHFCheckpoint(dir));
    return await GPT.create(gpu, { ...ckpt.config, attn_pdrop: 0 }, {
      weights: ckpt.tensors,
      trainable: false,
    });
  }
  return await GPT.create(gpu, gptConfig(preset as PresetName, { attn_pdrop: 0 }), {
    seed,
    trainable: false,
  });
}

/** Applies a LoRA adapter saved in PEFT's layout; returns its description. */
export async function applyLoraAdapter(model: GPT, dir: string): Promise<string> {
  const config = await reading("adapter", dir, () => readLoraConfig(dir));
  const instance = await lora.apply(model, config, 0);
  await reading("adapter", dir, () => instance.load(dir));
  return instance.describe();
}
