/**
 * The run configuration of `deno task train` / `compare`: typed defaults with comments, a YAML file
 * validated against them, and `--key=value` overrides (`--peft.method=lora --peft.r=16
 * --steps=300`). Unknown keys (with the closest known key), wrong types, values out of range
 * ({@linkcode RUN_LIMITS}) and missing files are errors that name the key, and the file and line
 * when it came from a file. YAML aliases are bounded ({@linkcode MAX_YAML_ALIASES},
 * {@linkcode MAX_YAML_VALUES}), so a small file cannot expand into a huge document.
 *
 * @module
 */

import { parseYaml, YAMLException } from "../deps.ts";
import { closestName, type NumberRange, rangeProblem } from "../models/config.ts";
import { peftMethod } from "../peft/registry.ts";
import { explainAccess } from "./common.ts";
import { HALF_BASE_METHODS } from "../models/base_dtype.ts";
import { SUITE_TASKS } from "../data/suite.ts";

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
    /**
     * `base_model_name_or_path` of the saved adapter_config.json: "" writes `path` as given (as
     * Python's PEFT writes what was passed to `from_pretrained`, a folder or a hub id), or "" for a
     * preset; set it to the hub id (e.g. `openai-community/gpt2`) when `path` is a local copy.
     */
    base_model_name: string;
    /**
     * How the frozen base weights are stored: "auto" (models/base_dtype.ts `defaultBaseDtype`: f16
     * for LoRA, IA³, prompt and prefix tuning, adapters and BitFit on models over 100M parameters,
     * else f32), "f32", "f16" or "bf16" (half the bytes; compute stays f32). Methods that train
     * base matrices (full, selective) need f32.
     */
    base_dtype: string;
    /**
     * An adapter folder to continue training from ("" = start the method fresh): any method's
     * files, Hugging Face PEFT's layout (LoRA, IA³, prompt, prefix tuning) or whet's. The method
     * and its settings come from the folder: `peft.method` must name the same method, and
     * `peft`'s other keys are not used. Scores "before" are of the model with the adapter.
     */
    adapter: string;
  };
  /**
   * The tokenizer: "auto" (the model folder's tokenizer.json, else what its vocabulary implies:
   * bytes for 256, bytes and <|endoftext|> for 257, GPT-2's for 50,257), "bytes", "tiktoken-gpt2", or a
   * tokenizer.json path.
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
    /**
     * Shares of the training mixture for suite tasks, by name (0–1), overriding the
     * examples-proportional rule for the trained tasks they name (data/mixture.ts: when every
     * trained task has one they are relative; otherwise the rest share what is left). Setting
     * any key starts from an empty map, not the defaults; `{}` mixes by the rule alone.
     */
    mixing_weights: Record<string, number>;
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
    /**
     * Longest generated answer, in tokens: each task generates at most its longest reference
     * answer plus 8 tokens (at most 64), and never more than this.
     */
    max_new_tokens: number;
    /**
     * Documents of general text whose perplexity before and after measures forgetting (0: not
     * measured; a real checkpoint's vocabulary makes the default 200 take minutes on a CPU).
     */
    general_documents: number;
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
  model: { path: "models/base", preset: "", base_model_name: "", base_dtype: "auto", adapter: "" },
  tokenizer: { kind: "auto" },
  data: {
    train_file: "",
    dev_file: "",
    test_file: "",
    tasks: ["summarise", "translate", "sentiment", "arithmetic", "multiple_choice"],
    held_out: ["reverse_words", "uppercase", "count_words"],
    train_size: 2000,
    dev_size: 50,
    test_size: 100,
    max_length: 128,
    truncation: "error",
    mixing_cap: 3000,
    // Sentiment needs the most: trained alone, it stays at chance for about 120 steps and then
    // learns in a few dozen; arithmetic and summarise learn fastest (README, "The default run").
    mixing_weights: {
      sentiment: 0.40,
      multiple_choice: 0.22,
      translate: 0.18,
      summarise: 0.10,
      arithmetic: 0.10,
    },
  },
  peft: { method: "lora", r: 16, lora_alpha: 32, target_modules: ["all-linear"] },
  optimizer: { lr: 3e-3, weight_decay: 0, beta1: 0.9, beta2: 0.999, eps: 1e-8, grad_clip: 1.0 },
  schedule: {
    steps: 450,
    warmup_steps: 20,
    min_lr_ratio: 0.1,
    batch_size: 16,
    grad_accum: 1,
    gradient_checkpointing: false,
  },
  eval: { every: 100, batches: 4, max_new_tokens: 64, general_documents: 200 },
  output: { dir: "runs", checkpoint_every: 100 },
}) as RunConfig;

/** Short override names: `--steps=300` means `--schedule.steps=300`. */
export const ALIASES: Readonly<Record<string, string>> = {
  steps: "schedule.steps",
  lr: "optimizer.lr",
  batch_size: "schedule.batch_size",
  method: "peft.method",
  model: "model.path",
  "base-model-name": "model.base_model_name",
  adapter: "model.adapter",
  data: "data.train_file",
  out: "output.dir",
};

/**
 * The range of every numeric key of {@linkcode RunConfig} (the peft section's keys are checked by
 * their method). `schedule.warmup_steps` may exceed `schedule.steps` (a short run that stops
 * while warming up, as `--steps=4` with the default warmup does).
 */
export const RUN_LIMITS: Readonly<Record<string, NumberRange>> = Object.freeze({
  seed: { min: 0, max: 2 ** 32 - 1, integer: true }, // the generators take 32-bit seeds
  "data.train_size": { min: 1, max: 1_000_000, integer: true },
  "data.dev_size": { min: 0, max: 1_000_000, integer: true },
  "data.test_size": { min: 0, max: 1_000_000, integer: true },
  "data.max_length": { min: 1, max: 2 ** 20, integer: true }, // the model's context bounds it too
  "data.mixing_cap": { min: 1, max: 1e9, integer: true },
  "optimizer.lr": { min: 0, max: 1, minOpen: true },
  "optimizer.weight_decay": { min: 0, max: 1 },
  "optimizer.beta1": { min: 0, max: 1, maxOpen: true },
  "optimizer.beta2": { min: 0, max: 1, maxOpen: true },
  "optimizer.eps": { min: 0, max: 1, minOpen: true },
  "optimizer.grad_clip": { min: 0, max: 1e6 }, // 0: no clipping
  "schedule.steps": { min: 1, max: 1e8, integer: true },
  "schedule.warmup_steps": { min: 0, max: 1e8, integer: true },
  "schedule.min_lr_ratio": { min: 0, max: 1 }, // the floor is lr × this: above 1 it is no floor
  "schedule.batch_size": { min: 1, max: 65536, integer: true },
  "schedule.grad_accum": { min: 1, max: 65536, integer: true },
  "eval.every": { min: 0, max: 1e8, integer: true }, // 0: only at the end
  "eval.batches": { min: 0, max: 1_000_000, integer: true }, // 0: the whole dev set
  "eval.max_new_tokens": { min: 1, max: 65536, integer: true },
  "eval.general_documents": { min: 0, max: 100_000, integer: true }, // 0: not measured
  "output.checkpoint_every": { min: 0, max: 1e8, integer: true }, // 0: only at the end
});

/** Most aliases (`*name`) one YAML document may use: anchors are for reuse, not for growth. */
export const MAX_YAML_ALIASES = 100;

/**
 * Most values (scalars, list items and mapping entries, each alias counted as what it stands
 * for) and most characters of text one YAML document may expand to: far above any run config,
 * far below what an alias bomb (each level doubling the last) reaches in 30 lines.
 */
export const MAX_YAML_VALUES = 10_000;

/** See {@linkcode MAX_YAML_VALUES}. */
export const MAX_YAML_CHARS = 1_000_000;

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

/** Sections whose keys are not fixed by the defaults: the method's settings, the mixing weights. */
const OPEN_SECTIONS = ["peft", "data.mixing_weights"];

/**
 * Merges `value` into `target` checking every key and type against `defaults`. `freshOpen` holds
 * the open sections (other than peft, which the method resets) a config already replaced, so that
 * a later override adds to what the file gave.
 */
function mergeChecked(
  target: Record<string, unknown>,
  defaults: Record<string, unknown>,
  value: Record<string, unknown>,
  path: string[],
  origin: Origin,
  open: boolean,
  freshOpen: Set<string>,
): void {
  for (const [key, v] of Object.entries(value)) {
    const p = [...path, key];
    const name = p.join(".");
    if (!Object.hasOwn(defaults, key)) {
      if (open) {
        // peft settings, checked by the method below, or mixing weights, checked in
        // checkRanges; defined, so that "__proto__" stays a key.
        Object.defineProperty(target, key, {
          value: v,
          enumerable: true,
          writable: true,
          configurable: true,
        });
        continue;
      }
      throw new ConfigError(
        `Cannot use config key "${name}" (${origin(p)}): unknown key${
          suggestKey(key, defaults)
        }; known keys here: ${Object.keys(defaults).join(", ")}`,
      );
    }
    const d = defaults[key];
    if (isPlainObject(d)) {
      if (!isPlainObject(v)) {
        throw new ConfigError(
          `Cannot use config key "${name}" (${origin(p)}): expected a section, got ${typeName(v)}`,
        );
      }
      if (name !== "peft" && OPEN_SECTIONS.includes(name) && !freshOpen.has(name)) {
        // An open section given in a config replaces the default's keys instead of adding to
        // them (peft's are reset by the method instead, in loadConfig).
        freshOpen.add(name);
        target[key] = {};
      }
      mergeChecked(
        target[key] as Record<string, unknown>,
        d,
        v,
        p,
        origin,
        OPEN_SECTIONS.includes(name),
        freshOpen,
      );
      continue;
    }
    const ok = Array.isArray(d)
      ? Array.isArray(v) && v.every((x) => typeof x === typeof (d[0] ?? x))
      : typeof v === typeof d;
    if (!ok) {
      throw new ConfigError(
        `Cannot use config key "${name}" (${origin(p)}): expected ${typeName(d)}, got ${
          typeName(v)
        } ${short(JSON.stringify(v))}`,
      );
    }
    target[key] = v;
  }
}

/**
 * ` (did you mean "x"?)` for an unknown key: the closest key of its own section, else the key of
 * another section (or a top-level name) whose last part is closest, written in full.
 */
function suggestKey(key: string, section: Record<string, unknown>): string {
  const here = closestName(key, Object.keys(section));
  if (here !== undefined) return ` (did you mean "${here}"?)`;
  const byLeaf = new Map<string, string>();
  for (const path of leafPaths(DEFAULT_CONFIG as unknown as Record<string, unknown>, [])) {
    if (path[0] !== "peft" && !byLeaf.has(path.at(-1)!)) byLeaf.set(path.at(-1)!, path.join("."));
  }
  const leaf = closestName(key, byLeaf.keys());
  return leaf === undefined ? "" : ` (did you mean "${byLeaf.get(leaf)}"?)`;
}

/** Every path from `obj` to a value that is not a section. */
function leafPaths(obj: Record<string, unknown>, path: string[]): string[][] {
  return Object.entries(obj).flatMap(([k, v]) =>
    isPlainObject(v) ? leafPaths(v, [...path, k]) : [[...path, k]]
  );
}

/** At most 60 characters of `s`, for quoting values in messages. */
function short(s: string | undefined): string {
  const text = s ?? "undefined";
  return text.length > 60 ? text.slice(0, 57) + "..." : text;
}

/**
 * Parses YAML with its aliases bounded: at most {@linkcode MAX_YAML_ALIASES} of them, and the
 * document they expand to at most {@linkcode MAX_YAML_VALUES} values and
 * {@linkcode MAX_YAML_CHARS} characters of text (measured by a walk that stops at the limit, so an
 * alias that contains itself fails too). Throws YAMLException for syntax errors and the alias
 * count; returns the reason for an oversized document as a string.
 */
function parseYamlBounded(text: string): { value: unknown } | { tooBig: string } {
  const value = parseYaml(text, { maxAliases: MAX_YAML_ALIASES });
  let values = 0, chars = 0;
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (++values > MAX_YAML_VALUES) {
      return { tooBig: `it expands to more than ${MAX_YAML_VALUES} values through its aliases` };
    }
    if (typeof v === "string") chars += v.length;
    else if (typeof v === "object" && v !== null) {
      for (const [k, x] of Object.entries(v)) {
        chars += k.length;
        stack.push(x);
      }
    }
    if (chars > MAX_YAML_CHARS) {
      return { tooBig: `it expands to more than ${MAX_YAML_CHARS} characters through its aliases` };
    }
  }
  return { value };
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
  const key = Object.hasOwn(ALIASES, m[1]) ? ALIASES[m[1]] : m[1];
  if (key.split(".").includes("")) {
    throw new ConfigError(`Cannot parse override "${short(arg)}": a key part is empty`);
  }
  let value: unknown = m[2];
  try {
    const parsed = parseYamlBounded(m[2]);
    if ("tooBig" in parsed) {
      throw new ConfigError(`Cannot parse override "${short(arg)}": ${parsed.tooBig}`);
    }
    value = parsed.value;
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    // Not YAML (or too many aliases): keep the string as it is.
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
  // Where each key was set, computed only for a message (finding a YAML line scans the file).
  const origins = new Map<string, () => string>();
  // Open sections a config already replaced (see mergeChecked).
  const freshOpen = new Set<string>();
  if (file) {
    let source: string;
    try {
      source = await Deno.readTextFile(file);
    } catch (e) {
      throw explainAccess(e, { path: file, what: "config file" }) ??
        new ConfigError(`Cannot read config file ${file}: ${(e as Error).message}`);
    }
    let bounded: ReturnType<typeof parseYamlBounded>;
    try {
      bounded = parseYamlBounded(source);
    } catch (e) {
      if (e instanceof YAMLException) {
        const line = (e as unknown as { mark?: { line: number } }).mark?.line;
        const why = e.message.includes("maxAliases")
          ? `more than ${MAX_YAML_ALIASES} aliases (*name); whet bounds them so that a small ` +
            `file cannot expand into a huge one`
          : e.message.split("\n")[0];
        throw new ConfigError(
          `Cannot parse config file ${file}${line !== undefined ? `:${line + 1}` : ""}: ${why}`,
        );
      }
      throw e;
    }
    if ("tooBig" in bounded) {
      throw new ConfigError(
        `Cannot parse config file ${file}: ${bounded.tooBig} (at most ${MAX_YAML_VALUES} values ` +
          `and ${MAX_YAML_CHARS} characters; an alias bomb or an alias inside its own anchor)`,
      );
    }
    const parsed = bounded.value;
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
      mergeChecked(cfg, defaults, parsed, [], origin, false, freshOpen);
      const record = (obj: Record<string, unknown>, path: string[]) => {
        for (const [k, v] of Object.entries(obj)) {
          const p = [...path, k];
          origins.set(p.join("."), () => origin(p));
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
    // {a: {b: value}} for a.b, with own properties even for a key "__proto__".
    const root = path.reduceRight<unknown>((v, k) => Object.fromEntries([[k, v]]), value);
    mergeChecked(cfg, defaults, root as Record<string, unknown>, [], () => arg, false, freshOpen);
    // The argument set its key and every section on the way (a setting given as a section too).
    path.forEach((_, i) => origins.set(path.slice(0, i + 1).join("."), () => arg));
  }
  const run = cfg as unknown as RunConfig;
  // The method validates its own keys; name where the bad key came from.
  const { method, ...settings } = run.peft;
  let validated: Record<string, unknown>;
  try {
    validated = peftMethod(method).validate(settings);
  } catch (e) {
    const msg = (e as Error).message;
    // The setting the message names (`key "r"` first, then any quoted setting; the longest, as
    // one key's name may hold another's), else the method itself.
    const longest = (quoted: (k: string) => string) =>
      Object.keys(settings).filter((k) => msg.includes(quoted(k)))
        .sort((a, b) => b.length - a.length)[0];
    const key = longest((k) => `key "${k}"`) ?? longest((k) => `"${k}"`);
    const name = key === undefined ? "peft.method" : `peft.${key}`;
    const where = [name, "peft.method", "peft"].map((k) => origins.get(k)).find((o) => o)?.() ??
      "default";
    throw new ConfigError(`Cannot use config key "${name}" (${where}): ${msg}`);
  }
  run.peft = { method, ...settings };
  void validated;
  checkRanges(run, origins);
  return run;
}

function checkRanges(c: RunConfig, origins: Map<string, () => string>): void {
  const where = (k: string) => origins.get(k)?.() ?? "default";
  const fail = (key: string, why: string): never => {
    throw new ConfigError(`Cannot use config key "${key}" (${where(key)}): ${why}`);
  };
  const config = c as unknown as Record<string, unknown>;
  for (const path of leafPaths(config, [])) {
    const key = path.join(".");
    const v = path.reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], config);
    if (path[0] === "peft" || key.startsWith("data.mixing_weights.") || typeof v !== "number") {
      continue;
    }
    const range = RUN_LIMITS[key];
    if (range === undefined) throw new Error(`Cannot check config key "${key}": it has no range`);
    const why = rangeProblem(v, range);
    if (why !== undefined) fail(key, `${why}, got ${v}`);
  }
  if (!["auto", "f32", "f16", "bf16"].includes(c.model.base_dtype)) {
    fail(
      "model.base_dtype",
      `must be "auto", "f32", "f16" or "bf16", got "${short(c.model.base_dtype)}"`,
    );
  }
  if (c.model.base_dtype !== "auto" && c.model.base_dtype !== "f32") {
    if (!HALF_BASE_METHODS.includes(c.peft.method)) {
      fail(
        "model.base_dtype",
        `${c.model.base_dtype} stores the frozen base in half precision, and peft.method "${c.peft.method}" trains base weights, which must be f32; use "f32" or "auto"`,
      );
    }
  }
  const weights = Object.entries(c.data.mixing_weights);
  for (const [task, w] of weights) {
    const key = `data.mixing_weights.${task}`;
    if (!SUITE_TASKS.some((t) => t.name === task)) {
      fail(
        key,
        `no suite task is called "${short(task)}"; tasks: ${
          SUITE_TASKS.map((t) => t.name).join(", ")
        }`,
      );
    }
    if (typeof w !== "number" || !(w >= 0 && w <= 1)) {
      fail(key, `a share must be a number from 0 to 1, got ${short(JSON.stringify(w))}`);
    }
  }
  // Shares of some of the trained tasks are fractions of the mixture: at most 1 in all.
  const named = weights.filter(([task]) => c.data.tasks.includes(task));
  const sum = named.reduce((a, [, w]) => a + w, 0);
  if (named.length < c.data.tasks.length && sum > 1 + 1e-9) {
    fail(
      "data.mixing_weights",
      `the shares of ${named.map(([t]) => t).join(", ")} add up to ${+sum.toFixed(
        6,
      )}, more than the whole mixture`,
    );
  }
  if (!["error", "truncate"].includes(c.data.truncation)) {
    fail("data.truncation", `must be "error" or "truncate", got "${short(c.data.truncation)}"`);
  }
  if (!/^[A-Za-z0-9_.-]+$/.test(c.name)) {
    fail("name", `use letters, digits, "_", "-" or "." only, got "${short(c.name)}"`);
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
  if (c.model.adapter) files.push(["model.adapter", c.model.adapter]);
  for (const [key, path] of files) {
    if (!path) continue;
    try {
      await Deno.stat(path);
    } catch (e) {
      const folder = key === "model.path"
        ? c.model.path
        : key === "model.adapter"
        ? c.model.adapter
        : undefined;
      throw explainAccess(e, { path: folder ?? path, folder: folder !== undefined, what: key }) ??
        new ConfigError(
          `Cannot use config key "${key}": ${path} ${
            e instanceof Deno.errors.NotFound
              ? "does not exist"
              : `cannot be read (${(e as Error).message})`
          }`,
        );
    }
  }
}
