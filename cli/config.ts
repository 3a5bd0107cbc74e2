/**
 * The run configuration of `deno task train` / `compare`: typed defaults with comments, a YAML file
 * validated against them, and `--key=value` overrides (`--peft.method=lora --peft.r=16
 * --steps=300`). Unknown keys, wrong types and missing files are errors that name the key, and the
 * file and line when it came from a file.
 *
 * @module
 */

import { parseYaml, YAMLException } from "../deps.ts";
import { peftMethod } from "../peft/registry.ts";

/** Everything a run needs. Sections mirror the YAML files in configs/. */
export interface RunConfig {
  /** Run name: outputs go to `<output.dir>/<name>/`. */
  name: string;
  /** Seed of data generation, shuffling, initialisation of added parameters and dropout. */
  seed: number;
  /** The base model. */
  model: {
    /** A Hugging Face model folder (config.json + model.safetensors; GPT-2, Llama, Qwen2); "" to use `preset`. */
    path: string;
    /** A built-in size with random weights (tiny, modelA, modelB, gpt2) when `path` is "". */
    preset: string;
  };
  /**
   * The tokenizer: "auto" (the model folder's tokenizer.json, else what its vocabulary implies:
   * bytes for 256, GPT-2's for 50,257), "bytes", "tiktoken-gpt2", or a tokenizer.json path.
   */
  tokenizer: { kind: string };
  /** Training and evaluation data. */
  data: {
    /** Your own JSONL (prompt/completion or chat messages); "" to use the embedded suite. */
    train_file: string;
    /** Dev JSONL for your own data ("" = split from train_file). */
    dev_file: string;
    /** Test JSONL for your own data ("" = split from train_file). */
    test_file: string;
    /** Embedded suite tasks to train on (multi-task when several). */
    tasks: string[];
    /** Embedded suite tasks only evaluated (forgetting). */
    held_out: string[];
    /** Training examples generated per suite task. */
    train_size: number;
    /** Dev examples per task (dev loss). */
    dev_size: number;
    /** Test examples per task (scores before and after). */
    test_size: number;
    /** Longest example in tokens (the model's context is the upper bound). */
    max_length: number;
    /** Over-long examples: "error" or "truncate" (counted and reported). */
    truncation: string;
    /** FLAN-style examples-proportional mixing cap per task. */
    mixing_cap: number;
  };
  /** The fine-tuning method and its own settings (e.g. r, lora_alpha for LoRA). */
  peft: { method: string } & Record<string, unknown>;
  /** AdamW. */
  optimizer: {
    lr: number;
    weight_decay: number;
    beta1: number;
    beta2: number;
    eps: number;
    grad_clip: number;
  };
  /** Steps and batches. */
  schedule: {
    steps: number;
    warmup_steps: number;
    min_lr_ratio: number;
    batch_size: number;
    grad_accum: number;
    /**
     * Activation (gradient) checkpointing: recompute each block's activations in the backward
     * instead of keeping them all. Same results, much less activation memory, about one more
     * forward pass of compute per step.
     */
    gradient_checkpointing: boolean;
  };
  /** Evaluation. */
  eval: {
    /** Dev loss every N steps (0: only at the end). */
    every: number;
    /** Dev batches per evaluation. */
    batches: number;
    /** Longest generated answer, in tokens. */
    max_new_tokens: number;
  };
  /** Outputs. */
  output: {
    /** Parent folder of runs. */
    dir: string;
    /** Checkpoint every N steps (0: only at the end). */
    checkpoint_every: number;
  };
}

/** The defaults: LoRA on the embedded base and the default multi-task mixture. */
export const DEFAULT_CONFIG: Readonly<RunConfig> = Object.freeze({
  name: "default",
  seed: 0,
  model: { path: "models/base", preset: "" },
  tokenizer: { kind: "auto" },
  data: {
    train_file: "",
    dev_file: "",
    test_file: "",
    tasks: ["summarise", "translate", "sentiment", "arithmetic", "multiple_choice"],
    held_out: ["reverse_words", "uppercase", "count_words"],
    train_size: 1000,
    dev_size: 50,
    test_size: 100,
    max_length: 128,
    truncation: "error",
    mixing_cap: 3000,
  },
  peft: { method: "lora", r: 16, lora_alpha: 32, target_modules: ["all-linear"] },
  optimizer: { lr: 3e-3, weight_decay: 0, beta1: 0.9, beta2: 0.999, eps: 1e-8, grad_clip: 1.0 },
  schedule: {
    steps: 400,
    warmup_steps: 20,
    min_lr_ratio: 0.1,
    batch_size: 16,
    grad_accum: 1,
    gradient_checkpointing: false,
  },
  eval: { every: 100, batches: 4, max_new_tokens: 32 },
  output: { dir: "runs", checkpoint_every: 100 },
}) as RunConfig;

/** Short override names: `--steps=300` means `--schedule.steps=300`. */
export const ALIASES: Readonly<Record<string, string>> = {
  steps: "schedule.steps",
  lr: "optimizer.lr",
  batch_size: "schedule.batch_size",
  method: "peft.method",
  model: "model.path",
  data: "data.train_file",
  out: "output.dir",
};

/** A config error naming the key (and where it came from). */
export class ConfigError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/** Where a value came from, for messages: `configs/lora.yaml:12` or `--peft.r=16`. */
type Origin = (path: string[]) => string;

/** The 1-based line of `path` in a YAML source (by indentation), or undefined. */
export function yamlLine(source: string, path: readonly string[]): number | undefined {
  const lines = source.split(/\r?\n/);
  let depth = 0, minIndent = -1;
  for (let i = 0; i < lines.length; i++) {
    const m = /^(\s*)([A-Za-z0-9_.-]+)\s*:/.exec(lines[i]);
    if (!m) continue;
    const indent = m[1].length;
    if (indent <= minIndent && depth > 0) return undefined; // left the parent section
    if (m[2] === path[depth] && indent > minIndent) {
      if (depth === path.length - 1) return i + 1;
      depth++;
      minIndent = indent;
    }
  }
  return undefined;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function typeName(v: unknown): string {
  return Array.isArray(v)
    ? "a list"
    : v === null
    ? "null"
    : isPlainObject(v)
    ? "a section"
    : `a ${typeof v}`;
}

/** Merges `value` into `target` checking every key and type against `defaults`. */
function mergeChecked(
  target: Record<string, unknown>,
  defaults: Record<string, unknown>,
  value: Record<string, unknown>,
  path: string[],
  origin: Origin,
  open: boolean,
): void {
  for (const [key, v] of Object.entries(value)) {
    const p = [...path, key];
    const name = p.join(".");
    if (!(key in defaults)) {
      if (open) {
        target[key] = v; // peft settings: checked by the method below
        continue;
      }
      throw new ConfigError(
        `Cannot use config key "${name}" (${origin(p)}): unknown key; known keys here: ${
          Object.keys(defaults).join(", ")
        }`,
      );
    }
    const d = defaults[key];
    if (isPlainObject(d)) {
      if (!isPlainObject(v)) {
        throw new ConfigError(
          `Cannot use config key "${name}" (${origin(p)}): expected a section, got ${typeName(v)}`,
        );
      }
      mergeChecked(target[key] as Record<string, unknown>, d, v, p, origin, name === "peft");
      continue;
    }
    const ok = Array.isArray(d)
      ? Array.isArray(v) && v.every((x) => typeof x === typeof (d[0] ?? x))
      : typeof v === typeof d;
    if (!ok) {
      throw new ConfigError(
        `Cannot use config key "${name}" (${origin(p)}): expected ${typeName(d)}, got ${
          typeName(v)
        } ${JSON.stringify(v)}`,
      );
    }
    target[key] = v;
  }
}

function clone<T>(v: T): T {
  return structuredClone(v);
}

/** Parses `--a.b=value` (or `--alias=value`) into a path and a YAML-typed value. */
export function parseOverride(arg: string): { path: string[]; value: unknown } {
  const m = /^--([A-Za-z0-9_.-]+)=(.*)$/s.exec(arg);
  if (!m) {
    throw new ConfigError(
      `Cannot parse override "${arg}": expected --key=value (e.g. --peft.r=16)`,
    );
  }
  const key = ALIASES[m[1]] ?? m[1];
  let value: unknown = m[2];
  try {
    value = parseYaml(m[2]);
  } catch {
    // Not YAML: keep the string as it is.
  }
  if (value === null || value === undefined) value = m[2];
  return { path: key.split("."), value };
}

/**
 * Builds a run config: defaults, then the YAML file (if any), then overrides in order. Every
 * value is checked; the peft section is checked by its method's own validation.
 *
 * @example
 * ```ts
 * import { loadConfig } from "./config.ts";
 * const cfg = await loadConfig(undefined, ["--peft.r=4", "--steps=20"]);
 * if (cfg.peft.r !== 4 || cfg.schedule.steps !== 20) throw new Error();
 * ```
 */
export async function loadConfig(
  file: string | undefined,
  overrides: readonly string[] = [],
): Promise<RunConfig> {
  const cfg = clone(DEFAULT_CONFIG) as unknown as Record<string, unknown>;
  const defaults = DEFAULT_CONFIG as unknown as Record<string, unknown>;
  const origins = new Map<string, string>();
  if (file) {
    let source: string;
    try {
      source = await Deno.readTextFile(file);
    } catch (e) {
      throw new ConfigError(`Cannot read config file ${file}: ${(e as Error).message}`);
    }
    let parsed: unknown;
    try {
      parsed = parseYaml(source);
    } catch (e) {
      if (e instanceof YAMLException) {
        const line = (e as unknown as { mark?: { line: number } }).mark?.line;
        throw new ConfigError(
          `Cannot parse config file ${file}${line !== undefined ? `:${line + 1}` : ""}: ${
            e.message.split("\n")[0]
          }`,
        );
      }
      throw e;
    }
    if (parsed !== undefined && parsed !== null) {
      if (!isPlainObject(parsed)) {
        throw new ConfigError(
          `Cannot use config file ${file}: the top level must be a mapping of sections`,
        );
      }
      // The method decides which peft keys exist: switching methods drops the default method's keys.
      const peft = parsed.peft;
      if (
        isPlainObject(peft) && typeof peft.method === "string" &&
        peft.method !== DEFAULT_CONFIG.peft.method
      ) {
        cfg.peft = { method: peft.method };
      }
      const origin: Origin = (p) => `${file}:${yamlLine(source, p) ?? "?"}`;
      mergeChecked(cfg, defaults, parsed, [], origin, false);
      const record = (obj: Record<string, unknown>, path: string[]) => {
        for (const [k, v] of Object.entries(obj)) {
          const p = [...path, k];
          origins.set(p.join("."), origin(p));
          if (isPlainObject(v)) record(v, p);
        }
      };
      record(parsed, []);
    }
  }
  for (const arg of overrides) {
    const { path, value } = parseOverride(arg);
    if (
      path.join(".") === "peft.method" && value !== (cfg.peft as Record<string, unknown>).method
    ) cfg.peft = { method: value };
    let nested: Record<string, unknown> = {};
    const root = nested;
    path.forEach((k, i) => {
      if (i === path.length - 1) nested[k] = value;
      else nested = (nested[k] = {}) as Record<string, unknown>;
    });
    mergeChecked(cfg, defaults, root, [], () => arg, false);
    origins.set(path.join("."), arg);
  }
  const run = cfg as unknown as RunConfig;
  // The method validates its own keys; name where the bad key came from.
  const { method, ...settings } = run.peft;
  let validated: Record<string, unknown>;
  try {
    validated = peftMethod(method).validate(settings);
  } catch (e) {
    const msg = (e as Error).message;
    const key = /key "([^"]+)"/.exec(msg) ?? /: "([a-z_]+)"/.exec(msg);
    const name = key ? `peft.${key[1]}` : "peft.method";
    const where = origins.get(name) ??
      (name === "peft.method" ? origins.get("peft.method") : undefined) ?? "default";
    throw new ConfigError(`Cannot use config key "${name}" (${where}): ${(e as Error).message}`);
  }
  run.peft = { method, ...settings };
  void validated;
  checkRanges(run, origins);
  return run;
}

function checkRanges(c: RunConfig, origins: Map<string, string>): void {
  const where = (k: string) => origins.get(k) ?? "default";
  const positive: [string, number][] = [
    ["schedule.steps", c.schedule.steps],
    ["schedule.batch_size", c.schedule.batch_size],
    ["schedule.grad_accum", c.schedule.grad_accum],
    ["data.max_length", c.data.max_length],
    ["data.train_size", c.data.train_size],
    ["eval.max_new_tokens", c.eval.max_new_tokens],
  ];
  for (const [k, v] of positive) {
    if (!Number.isInteger(v) || v < 1) {
      throw new ConfigError(
        `Cannot use config key "${k}" (${where(k)}): must be a positive integer, got ${v}`,
      );
    }
  }
  if (!(c.optimizer.lr > 0)) {
    throw new ConfigError(
      `Cannot use config key "optimizer.lr" (${
        where("optimizer.lr")
      }): must be positive, got ${c.optimizer.lr}`,
    );
  }
  if (!["error", "truncate"].includes(c.data.truncation)) {
    throw new ConfigError(
      `Cannot use config key "data.truncation" (${
        where("data.truncation")
      }): must be "error" or "truncate", got "${c.data.truncation}"`,
    );
  }
  if (!/^[A-Za-z0-9_.-]+$/.test(c.name)) {
    throw new ConfigError(
      `Cannot use config key "name" (${
        where("name")
      }): use letters, digits, "_", "-" or "." only, got "${c.name}"`,
    );
  }
}

/** Checks that the files a config names exist, naming the key. */
export async function checkFiles(c: RunConfig): Promise<void> {
  const files: [string, string][] = [
    ["data.train_file", c.data.train_file],
    ["data.dev_file", c.data.dev_file],
    ["data.test_file", c.data.test_file],
  ];
  if (c.model.path) files.push(["model.path", `${c.model.path}/config.json`]);
  for (const [key, path] of files) {
    if (!path) continue;
    try {
      await Deno.stat(path);
    } catch {
      throw new ConfigError(`Cannot use config key "${key}": ${path} does not exist`);
    }
  }
}
