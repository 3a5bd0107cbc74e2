/**
 * What the command-line tools share: usage errors, number flags, the rule for permissions Deno
 * refuses (errors that name the flag to add), choosing a tokenizer, loading a model and a LoRA
 * adapter.
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
import { loadAdapter } from "../peft/registry.ts";
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

/** What Deno refused to do: the access (`read`, `write`, …) and the path it names. */
export interface Refusal {
  /** The permission Deno lacked: `read`, `write`, `net`, `env`, `run`, …. */
  access: string;
  /** The path (or host, variable, program) Deno named, as the program gave it. */
  target: string;
}

/**
 * The permission a Deno error says is missing: a `Deno.errors.NotCapable` anywhere in `e`'s
 * `cause` chain (whet's loaders wrap file errors), or undefined.
 *
 * @example
 * ```ts
 * import { refusal } from "./common.ts";
 * const denied = new Deno.errors.NotCapable(
 *   'Requires read access to "/data/x.jsonl", run again with the --allow-read flag',
 * );
 * const r = refusal(new Error("Cannot load /data/x.jsonl", { cause: denied }));
 * if (r?.access !== "read" || r.target !== "/data/x.jsonl") throw new Error(JSON.stringify(r));
 * if (refusal(new Deno.errors.NotFound("gone")) !== undefined) throw new Error("not a refusal");
 * ```
 */
export function refusal(e: unknown): Refusal | undefined {
  for (let x = e, depth = 0; x instanceof Error && depth < 16; x = x.cause, depth++) {
    if (x instanceof Deno.errors.NotCapable) {
      const m = /Requires (\w+) access to "(.*)",/s.exec(x.message);
      return m ? { access: m[1], target: m[2] } : { access: "read", target: "" };
    }
  }
  return undefined;
}

/** A file operation Deno refused for lack of a permission flag (the message names the flag). */
export class AccessError extends UsageError {
  /** What was refused. */
  readonly refusal: Refusal;
  /** Creates the error. */
  constructor(message: string, refusal: Refusal, options?: ErrorOptions) {
    super(message, options);
    this.name = "AccessError";
    this.refusal = refusal;
  }
}

/** Where a path came from, for {@linkcode explainAccess} and {@linkcode withAccess}. */
export interface AccessContext {
  /** The path the program was given (a file, or with `folder` a folder). */
  path: string;
  /** `path` is a folder whose files are read or written (default: a file). */
  folder?: boolean;
  /** Where the path came from, e.g. `--model` or `data.train_file`. */
  what?: string;
}

function parentFolder(path: string): string {
  const trimmed = path.replace(/\/+$/, "");
  const i = trimmed.lastIndexOf("/");
  return i < 0 ? "." : i === 0 ? "/" : trimmed.slice(0, i);
}

/**
 * The one rule for operations Deno refuses: when `e` (or its cause) is a missing permission,
 * an {@linkcode AccessError} worded `Cannot read /data/x.jsonl: no read permission; run with
 * --allow-read=/data` that names the flag to add, else undefined. The flag grants the folder the
 * program was given (`context.path` with `folder`, else the folder holding it) when the refused
 * path lies inside it, else the refused path itself. Not "does not exist": the file may well.
 *
 * @example
 * ```ts
 * import { explainAccess } from "./common.ts";
 * const denied = new Deno.errors.NotCapable(
 *   'Requires read access to "/data/x.jsonl", run again with the --allow-read flag',
 * );
 * const e = explainAccess(denied, { path: "/data/x.jsonl", what: "--data" });
 * const want = "Cannot read /data/x.jsonl (--data): no read permission; run with --allow-read=/data";
 * if (e?.message !== want) throw new Error(e?.message);
 * ```
 */
export function explainAccess(e: unknown, context?: AccessContext): AccessError | undefined {
  if (e instanceof AccessError) return e; // explained where it happened, with more context
  const r = refusal(e);
  if (!r) return undefined;
  const target = r.target || context?.path || "the file";
  let grant = r.target || context?.path || "PATH";
  if (context) {
    const folder = context.folder ? context.path.replace(/\/+$/, "") : parentFolder(context.path);
    const inside = folder === "." ? !r.target.startsWith("/") : r.target === folder ||
      r.target.startsWith(folder.endsWith("/") ? folder : `${folder}/`);
    if (inside || r.target === "") grant = folder;
  }
  const what = context?.what ? ` (${context.what})` : "";
  const verb = r.access === "read" || r.access === "write" ? r.access : `use (${r.access})`;
  return new AccessError(
    `Cannot ${verb} ${target}${what}: no ${r.access} permission; run with --allow-${r.access}=${grant}`,
    r,
    { cause: e },
  );
}

/**
 * Runs `fn`, which reads or writes `context.path`, turning a permission Deno refused into the
 * {@linkcode explainAccess} error; other errors pass through unchanged.
 *
 * @example
 * ```ts
 * import { withAccess } from "./common.ts";
 * const text = await withAccess({ path: "deno.json" }, () => Deno.readTextFile("deno.json"));
 * if (!text.includes("tasks")) throw new Error("read");
 * ```
 */
export async function withAccess<T>(context: AccessContext, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw explainAccess(e, context) ?? e;
  }
}

/** Runs `fn`, which reads `path` given as `--flag` (a file or a folder), naming the flag on refusal. */
export function reading<T>(flag: string, path: string, fn: () => Promise<T>): Promise<T> {
  return withAccess({ path, folder: true, what: `--${flag}` }, fn);
}

/**
 * The tokenizer `spec` names (`bytes`, `tiktoken-gpt2`, or a tokenizer.json path), or else the
 * model folder's tokenizer.json, or the tokenizer its vocabulary implies (50,257: GPT-2's; 256:
 * bytes; 257: bytes and `<|endoftext|>` 256, as models/base); without a model folder, bytes.
 * `bytes` for a 257-id model is that same byte tokenizer with its end-of-text id.
 */
export async function tokenizerFor(
  spec: string | undefined,
  modelDir: string | undefined,
  vocab: number,
): Promise<Tokenizer> {
  const bytes = () => new ByteTokenizer({ endOfText: vocab === 257 });
  if (spec === "bytes") return bytes();
  if (spec === "tiktoken-gpt2") return TiktokenTokenizer.gpt2();
  if (spec !== undefined) {
    return await reading("tokenizer", spec, () => HuggingFaceTokenizer.fromFile(spec));
  }
  if (modelDir === undefined) return new ByteTokenizer();
  const local = `${modelDir.replace(/\/+$/, "")}/tokenizer.json`;
  const found = await reading("model", modelDir, () => Deno.stat(local).catch(() => null));
  if (found) return await reading("model", modelDir, () => HuggingFaceTokenizer.fromFile(local));
  if (vocab === 50257) return TiktokenTokenizer.gpt2();
  if (vocab === 256 || vocab === 257) return bytes();
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

/**
 * Applies the adapter folder given to `--adapter` (any method: LoRA, IA³, prompt or prefix
 * tuning in PEFT's layout, whet's bottleneck adapters and masking methods) through the PEFT
 * registry; `tokenizer` lets prompt tuning know its TEXT init, `warn` takes the warnings (unknown
 * fields). Returns its description.
 */
export async function applyAdapterFlag(
  model: Decoder,
  dir: string,
  tokenizer: Tokenizer,
  warn: (line: string) => void,
): Promise<string> {
  const inst = await reading("adapter", dir, () => loadAdapter(model, dir, { tokenizer, warn }));
  return inst.describe();
}
