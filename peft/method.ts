/**
 * The PEFT method contract. A method is one file that declares what it adds (parameters under its
 * own name prefix), what stays trainable (the gradient mask over base parameters), how it merges
 * into the base weights and unmerges (where that exists), and how it saves and loads; the registry
 * (peft/registry.ts) enables it with one line. Every method starts as a no-op: applying it leaves
 * the model's outputs unchanged until it is trained.
 *
 * @module
 */

import { didYouMean } from "../models/config.ts";
import type { Decoder, LinearSlot } from "../models/decoder.ts";
import type { Param } from "../models/param.ts";
import type { Tokenizer } from "../models/tokenizer.ts";
import type { AdapterConfigFile } from "./files.ts";

/** Largest |merged − unmerged| output difference a merge produced, and where. */
export interface MergeReport {
  /** Parameters whose values changed. */
  merged: string[];
}

/** A method applied to a model. */
export interface PeftInstance {
  /** Registry name of the method (e.g. `"lora"`). */
  readonly method: string;
  /** The validated configuration. */
  readonly config: Readonly<Record<string, unknown>>;
  /** Parameters the method added to the model (names under its prefix). */
  readonly added: readonly Param[];
  /** Every trainable parameter (added ones and base ones left trainable). */
  trainable(): Param[];
  /** Folds the method into the base weights (LoRA, IA³); absent where no merge exists. */
  merge?(): Promise<MergeReport>;
  /** Undoes {@linkcode merge}. */
  unmerge?(): Promise<MergeReport>;
  /**
   * Writes the trained method to `dir` (Hugging Face PEFT layout where one exists); `baseModel`
   * becomes `base_model_name_or_path` where the layout has it (default "").
   */
  save(dir: string, baseModel?: string): Promise<void>;
  /** Loads trained values written by {@linkcode save} (or by Python's PEFT where the layout is shared). */
  load(dir: string): Promise<void>;
  /** A short description for reports, e.g. `"LoRA r=8 alpha=16 on c_attn"`. */
  describe(): string;
  /**
   * False for methods that change the outputs from the start (prompt and prefix tuning: their
   * virtual tokens attend like real ones, in PEFT too); absent or true: a no-op until trained.
   */
  readonly identityAtInit?: boolean;
}

/**
 * What a method may need from its surroundings when it is applied or loaded; every field is
 * optional.
 */
export interface PeftContext {
  /**
   * The model's tokenizer: prompt tuning's TEXT init tokenises its text with it (on apply, when
   * `init_text_ids` is empty; on load, to know which rows the prompt started from).
   */
  tokenizer?: Tokenizer;
  /**
   * The base model's name or folder: recorded as `base_model_name_or_path` when the instance is
   * saved without one, and as prompt tuning's `tokenizer_name_or_path` when that is unset.
   */
  baseModel?: string;
  /** Where warnings go (unknown fields of an adapter_config.json). Default `console.warn`. */
  warn?: (message: string) => void;
  /** Seed of anything a load initialises. Default 0. */
  seed?: number;
}

/** A PEFT method: its name, defaults, validation and how to apply it. */
export interface PeftMethod<
  C extends object = Record<string, unknown>,
  I extends PeftInstance = PeftInstance,
> {
  /** Registry name, used by `--peft.method=NAME`. */
  readonly name: string;
  /** One-line description. */
  readonly summary: string;
  /** Default configuration (every key the method accepts). */
  readonly defaults: Readonly<C>;
  /**
   * Checks a (partial) configuration against the defaults: unknown keys and wrong types are
   * errors that name the key. Returns the full configuration.
   */
  validate(config: Record<string, unknown>): C;
  /** Freezes the base as the method requires, injects its parameters, and returns the instance. */
  apply(model: Decoder, config: C, seed: number, context?: PeftContext): Promise<I>;
  /**
   * The `peft_type` of its adapter_config.json: PEFT's name (`"LORA"`, `"IA3"`,
   * `"PROMPT_TUNING"`, `"PREFIX_TUNING"`), a `WHET_` name for a whet-only layout, or absent for
   * the masking methods (their folders hold whet_peft.json instead; see peft/selective.ts).
   */
  readonly peftType?: string;
  /**
   * Applies a saved adapter folder to `model`: reads its settings from `config` (the folder's
   * config file, already parsed; the folder is `config.dir`) and its tensors, checks them
   * against the model, and returns the instance, ready to run or to train further.
   */
  load(model: Decoder, config: AdapterConfigFile, context?: PeftContext): Promise<I>;
  /**
   * Positions of the model's context the method takes for itself (prompt and prefix tuning's
   * virtual tokens; absent: none) with `settings`: its configuration, or the object of a saved
   * adapter_config.json (the same key names), so that a caller can plan before applying.
   */
  reservedPositions?(settings: Readonly<Record<string, unknown>>): number;
}

/**
 * Checks the fields every PEFT config has against what whet runs: `task_type` must be
 * `CAUSAL_LM` (or unset), and `modules_to_save`, `layers_pattern` and `layers_to_transform` are
 * refused by name when `supported` does not list them (whet would otherwise ignore them and give
 * other outputs than PEFT). Errors name the file and the field.
 */
export function checkPeftFields(
  config: AdapterConfigFile,
  method: string,
  supported: readonly string[] = [],
): void {
  config.refuseUnless(
    "task_type",
    ["CAUSAL_LM"],
    `whet's models are causal language models (CAUSAL_LM); ${method} adapters for other tasks cannot be loaded`,
  );
  for (const key of ["modules_to_save", "layers_pattern", "layers_to_transform"]) {
    if (supported.includes(key)) continue;
    const v = config.get(key);
    if (v === undefined || v === null || (Array.isArray(v) && v.length === 0)) continue;
    throw config.error(key, `is ${JSON.stringify(v)}, which whet's ${method} does not support`);
  }
}

/**
 * Validates `config` against `defaults`: every key must exist in the defaults with a value of the
 * same type (numbers, strings, booleans, arrays of strings or numbers, or null where the default
 * is null). Errors name the method and the key (and, for an unknown key, the known key it is
 * likely a typo of).
 *
 * @example
 * ```ts
 * import { checkConfig } from "../mod.ts";
 * const defaults = { r: 8, target_modules: ["c_attn"] };
 * const cfg = checkConfig("mine", defaults, { r: 4 });
 * if (cfg.r !== 4 || cfg.target_modules[0] !== "c_attn") throw new Error("defaults fill the rest");
 * for (const bad of [{ rank: 4 }, { r: "4" }]) {
 *   try {
 *     checkConfig("mine", defaults, bad);
 *     throw new Error("accepted " + JSON.stringify(bad));
 *   } catch (e) {
 *     if (!(e instanceof TypeError)) throw e; // names the unknown key or the wrong type
 *   }
 * }
 * ```
 */
export function checkConfig<C extends object>(
  method: string,
  defaults: Readonly<C>,
  config: Record<string, unknown>,
): C {
  const out: Record<string, unknown> = { ...defaults };
  const known = defaults as Record<string, unknown>;
  for (const [key, value] of Object.entries(config)) {
    if (!Object.hasOwn(known, key)) {
      throw new TypeError(
        `Cannot configure PEFT method "${method}": unknown key "${key}"${
          didYouMean(key, Object.keys(known))
        } (known: ${Object.keys(known).join(", ")})`,
      );
    }
    const d = known[key];
    const ok = d === null || value === null
      ? true
      : Array.isArray(d)
      ? Array.isArray(value) && value.every((v) => typeof v === "string" || typeof v === "number")
      : typeof value === typeof d;
    if (!ok) {
      throw new TypeError(
        `Cannot configure PEFT method "${method}": key "${key}" must be ${
          Array.isArray(d) ? "an array" : typeof d
        }, got ${JSON.stringify(value)}`,
      );
    }
    out[key] = value;
  }
  return out as C;
}

/**
 * Freezes every base parameter of the model (releases their gradients).
 *
 * @example
 * ```ts
 * import { freezeBase, GPT, gptConfig, Gpu } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const model = await GPT.create(gpu, gptConfig("tiny"), { seed: 1 });
 * freezeBase(model);
 * if (model.countParameters().trainable !== 0) throw new Error("everything frozen");
 * model.release();
 * ```
 */
export function freezeBase(model: Decoder): void {
  for (const p of model.params.values()) model.setTrainable(p, false);
}

/**
 * Whether PEFT's target matching selects `path` (exact name or `.`-separated suffix).
 *
 * @example
 * ```ts
 * import { matchesTarget } from "../mod.ts";
 * if (!matchesTarget("h.0.attn.c_proj", ["attn.c_proj"])) throw new Error("dotted suffix");
 * if (matchesTarget("h.0.attn.c_proj", ["proj"])) throw new Error("not a partial segment");
 * if (!matchesTarget("h.3.mlp.c_fc", ["c_attn", "c_fc"])) throw new Error("any target");
 * ```
 */
export function matchesTarget(path: string, targets: readonly string[]): boolean {
  return targets.some((t) => path === t || path.endsWith("." + t));
}

/**
 * The linear layers of the model's blocks (GPT-2: `attn.c_attn`, `attn.c_proj`, `mlp.c_fc`,
 * `mlp.c_proj`; the Llama family: `self_attn.{q,k,v,o}_proj`, `mlp.{gate,up,down}_proj`) that
 * `targets` match (exactly or as a dotted suffix, as PEFT matches), restricted
 * to `layers` when it is not empty. Errors name `method` and the bad layer index, or say that no
 * layer matched.
 */
export function linearSlots(
  model: Decoder,
  method: string,
  targets: readonly string[],
  layers: readonly number[] = [],
): LinearSlot[] {
  const L = model.shape.L;
  for (const l of layers) {
    if (!Number.isInteger(l) || l < 0 || l >= L) {
      throw new RangeError(
        `Cannot apply ${method}: layers_to_transform holds ${l}, outside 0..${L - 1}`,
      );
    }
  }
  const all = model.linearSlots();
  const out = all.filter((s) =>
    (layers.length === 0 || layers.includes(s.layer)) && matchesTarget(s.path, targets)
  );
  if (out.length === 0) {
    const names = [...new Set(all.map((s) => s.name))];
    throw new RangeError(
      `Cannot apply ${method}: target_modules ${JSON.stringify(targets)} match none of ${
        names.join(", ")
      }`,
    );
  }
  return out;
}

/**
 * The `model_type` PEFT keys its per-family defaults by (`TRANSFORMERS_MODELS_TO_*_MAPPING` in
 * peft/utils/constants.py): `"gpt2"`, or the Llama-family config's `"llama"` / `"qwen2"`.
 */
export function modelType(model: Decoder): string {
  // Only a Llama-family config has model_type (GPTConfig is the config of the one GPT-2 type).
  return "model_type" in model.config ? model.config.model_type : "gpt2";
}

/**
 * A block module's path from the root of the Hugging Face model, as PEFT's file keys hold it
 * after `base_model.model.`: GPT2LMHeadModel's blocks are under `transformer.` (whet's GPT-2
 * paths start at `h.`), LlamaForCausalLM's paths (`model.layers.0.…`) are whet's as they are.
 */
export function hfModulePath(model: Decoder, path: string): string {
  return modelType(model) === "gpt2" ? `transformer.${path}` : path;
}

/** PEFT's `target_modules` shorthand for every linear layer except the output head. */
export const ALL_LINEAR = "all-linear";

/**
 * The module names a method targets on `model`: `targets` as given, PEFT's default for the
 * model's family when null (`defaults[modelType(model)]`), or, for `["all-linear"]`, the name of
 * every linear layer of the blocks (the head is not one of them), in model order — the names
 * PEFT's `_maybe_include_all_linear_layers` expands the shorthand to.
 */
export function resolveTargets(
  model: Decoder,
  method: string,
  targets: readonly string[] | null,
  defaults: Readonly<Record<string, readonly string[]>>,
): string[] {
  if (targets === null) {
    const d = defaults[modelType(model)];
    if (!d) {
      throw new RangeError(
        `Cannot apply ${method}: no default target_modules for model_type "${
          modelType(model)
        }"; set target_modules`,
      );
    }
    return d.slice();
  }
  if (targets.length === 1 && targets[0].toLowerCase() === ALL_LINEAR) {
    return [...new Set(model.linearSlots().map((s) => s.name.split(".").pop()!))];
  }
  return targets.slice();
}

/**
 * Checks a `target_modules` setting: null (the family's default), a non-empty list of names, or
 * `"all-linear"` (alone; a string is accepted for it, as PEFT writes it). Returns it as a list.
 */
export function checkTargets(method: string, key: string, value: unknown): string[] | null {
  if (value === null) return null;
  if (typeof value === "string" && value.toLowerCase() === ALL_LINEAR) return [value];
  if (!Array.isArray(value) || !value.every((v) => typeof v === "string")) {
    throw new TypeError(
      `Cannot configure ${method}: key "${key}" must be a list of module names, "${ALL_LINEAR}" or null, got ${
        JSON.stringify(value)
      }`,
    );
  }
  if (value.length === 0) throw new RangeError(`Cannot configure ${method}: "${key}" is empty`);
  if (value.length > 1 && value.some((v) => v.toLowerCase() === ALL_LINEAR)) {
    throw new RangeError(
      `Cannot configure ${method}: "${key}" holds "${ALL_LINEAR}" beside other names; use it alone`,
    );
  }
  return value.slice();
}

/**
 * Module path of block `l` (`h.0`, `model.layers.0`): the common prefix of its linear layers' paths.
 */
export function blockPath(model: Decoder, l: number): string {
  const slot = model.linearSlots().find((s) => s.layer === l);
  if (!slot) throw new RangeError(`Cannot find block ${l}: the model has ${model.shape.L}`);
  return slot.path.slice(0, slot.path.length - slot.name.length - 1);
}
