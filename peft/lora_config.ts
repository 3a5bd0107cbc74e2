/**
 * LoRA's configuration: Hugging Face PEFT's `LoraConfig` fields (peft/tuners/lora/config.py),
 * validated once, and how its target rules pick layers. Every field PEFT 0.17 writes is either
 * honoured or refused by name:
 *
 * | field | here |
 * | --- | --- |
 * | `r`, `lora_alpha`, `lora_dropout`, `use_rslora`, `use_dora` | honoured |
 * | `target_modules` | a list: exact name or dotted suffix; a string: a full-match regex over the module path (`re.fullmatch`); `"all-linear"`; null: the family's default |
 * | `exclude_modules` | the same rules, taking layers back out |
 * | `layers_to_transform`, `layers_pattern` | honoured (list targets only, as PEFT requires) |
 * | `rank_pattern`, `alpha_pattern` | per-module r and alpha; keys are regexes matched as PEFT's `get_pattern_key` (`(.*\.)?(KEY)$` against the module path, first key in file order wins) |
 * | `bias` | `none`, `all` (every bias of the model trains), `lora_only` (the adapted layers' biases train) |
 * | `modules_to_save` | trainable full copies of the named (leaf) modules |
 * | `init_lora_weights` | `true` (kaiming-uniform A, B = 0), `"gaussian"` (A ~ N(0, 1/r²)), `false` (A and B as `nn.Linear` initialises them); `pissa*`, `olora`, `loftq`, `eva`, `corda` refused |
 * | `task_type` | `CAUSAL_LM` (or null); others refused |
 * | `fan_in_fan_out` | corrected to the layer's layout with a warning, as PEFT does |
 * | `lora_bias`, `use_qalora`, `megatron_config`, `layer_replication`, `trainable_token_indices`, `target_parameters`, `alora_invocation_tokens`, `arrow_config`, `use_bdlora`, `ensure_weight_tying` | refused unless at their default |
 * | `peft_type`, `base_model_name_or_path`, `revision`, `inference_mode`, `auto_mapping`, `peft_version`, `megatron_core`, `qalora_group_size`, `loftq_config`, `eva_config`, `corda_config`, `lora_ga_config`, `runtime_config` | bookkeeping, or settings of a refused feature at its default: accepted |
 *
 * Any other field draws a warning naming it (PEFT's forward compatibility).
 *
 * @module
 */

import type { Decoder, LinearSlot } from "../models/decoder.ts";
import { didYouMean } from "../models/config.ts";
import type { AdapterConfigFile } from "./files.ts";
import { ALL_LINEAR, hfModulePath } from "./method.ts";

/** PEFT's `bias` settings. */
export type LoraBias = "none" | "all" | "lora_only";

/** PEFT's `init_lora_weights` settings whet implements. */
export type LoraInit = boolean | "gaussian";

/** LoRA configuration (Hugging Face PEFT's `LoraConfig` names and defaults). */
export interface LoraConfig {
  /** Rank r (4–32 typical). Default 8. */
  r: number;
  /** Scaling numerator: scaling = lora_alpha / r. Default 8. */
  lora_alpha: number;
  /** Dropout on the LoRA branch input. Default 0. */
  lora_dropout: number;
  /**
   * A list of module names matched exactly or as a dotted suffix (`c_attn`, `attn.c_proj`,
   * `q_proj`), `["all-linear"]` (every linear layer of the blocks), a string: a regex that must
   * match the whole module path from the Hugging Face model's root (`transformer.h.0.attn.c_attn`,
   * `model.layers.0.self_attn.q_proj`), or null: PEFT's default for the family (`c_attn` for
   * GPT-2, `q_proj`, `v_proj` for Llama and Qwen2).
   */
  target_modules: string[] | string | null;
  /** Modules taken back out of the targets, by the same rules (list or regex string). Default null. */
  exclude_modules: string[] | string | null;
  /** rsLoRA: scaling = lora_alpha / √r. Default false. */
  use_rslora: boolean;
  /** DoRA: a trained magnitude per output times the direction of W + scaling·B·A. Default false. */
  use_dora: boolean;
  /** Which biases train: `none`, `all` (every bias of the model), `lora_only` (the adapted layers'). */
  bias: LoraBias;
  /** Modules trained as full copies (e.g. `["ln_f"]`), or null. */
  modules_to_save: string[] | null;
  /** `true` (kaiming-uniform A, B = 0), `"gaussian"` (A ~ N(0, 1/r²), B = 0), `false` (both random). */
  init_lora_weights: LoraInit;
  /** Blocks to adapt (empty: all). */
  layers_to_transform: number[];
  /** Name(s) of the block list in module paths (`h`, `layers`) for `layers_to_transform`, or null. */
  layers_pattern: string[] | null;
  /** Rank by module-path pattern (PEFT's `rank_pattern`). Default `{}`. */
  rank_pattern: Record<string, number>;
  /** Alpha by module-path pattern (PEFT's `alpha_pattern`). Default `{}`. */
  alpha_pattern: Record<string, number>;
  /** Adapter name (several can live on one model). Default `"default"`. */
  adapter_name: string;
}

/** The defaults. */
export const LORA_DEFAULTS: Readonly<LoraConfig> = Object.freeze({
  r: 8,
  lora_alpha: 8,
  lora_dropout: 0,
  target_modules: null,
  exclude_modules: null,
  use_rslora: false,
  use_dora: false,
  bias: "none",
  modules_to_save: null,
  init_lora_weights: true,
  layers_to_transform: [],
  layers_pattern: null,
  rank_pattern: {},
  alpha_pattern: {},
  adapter_name: "default",
});

/** Configurations {@linkcode validateLoraConfig} returned (apply does not check them again). */
const validated = new WeakSet<object>();

/** Whether `c` came from {@linkcode validateLoraConfig}. */
export function isValidatedLoraConfig(c: object): c is LoraConfig {
  return validated.has(c);
}

function fail(key: string, reason: string): never {
  throw new TypeError(`Cannot configure LoRA: key "${key}" ${reason}`);
}

function stringList(key: string, v: unknown, allowString: boolean): string[] | string | null {
  if (v === null || v === undefined) return null;
  if (typeof v === "string") {
    if (!allowString) fail(key, `must be a list of names or null, got ${JSON.stringify(v)}`);
    try {
      new RegExp(v);
    } catch (e) {
      fail(key, `is not a valid regular expression: ${(e as Error).message}`);
    }
    return v;
  }
  if (!Array.isArray(v) || !v.every((s) => typeof s === "string")) {
    fail(
      key,
      `must be a list of names${allowString ? ", a regex string" : ""} or null, got ${
        JSON.stringify(v)
      }`,
    );
  }
  return v.slice();
}

function patterns(key: string, v: unknown): Record<string, number> {
  if (v === null || v === undefined) return {};
  if (typeof v !== "object" || Array.isArray(v)) {
    fail(key, `must be an object of module pattern → number, got ${JSON.stringify(v)}`);
  }
  const out: Record<string, number> = {};
  for (const [k, n] of Object.entries(v as Record<string, unknown>)) {
    if (typeof n !== "number" || !(n > 0)) {
      fail(key, `holds ${JSON.stringify(k)}: ${JSON.stringify(n)}, expected a positive number`);
    }
    if (key === "rank_pattern" && !Number.isInteger(n)) {
      fail(key, `holds ${JSON.stringify(k)}: ${n}, expected a positive integer rank`);
    }
    try {
      new RegExp(k);
    } catch (e) {
      fail(
        key,
        `key ${JSON.stringify(k)} is not a valid regular expression: ${(e as Error).message}`,
      );
    }
    out[k] = n;
  }
  return out;
}

/**
 * Checks a (partial) LoRA configuration: unknown keys and wrong types are errors naming the key
 * (with the closest known key). Returns the full configuration, marked as validated.
 *
 * @example
 * ```ts
 * import { validateLoraConfig } from "../mod.ts";
 * const c = validateLoraConfig({ r: 4, target_modules: ".*\\.h\\.1\\.attn\\.c_attn", use_dora: true });
 * if (c.lora_alpha !== 8 || typeof c.target_modules !== "string" || !c.use_dora) throw new Error();
 * try {
 *   validateLoraConfig({ init_lora_weights: "pissa" });
 *   throw new Error("PiSSA is refused by name");
 * } catch (e) {
 *   if (!(e as Error).message.includes('"init_lora_weights"')) throw e;
 * }
 * ```
 */
export function validateLoraConfig(c: Record<string, unknown>): LoraConfig {
  if (isValidatedLoraConfig(c)) return c;
  const known = Object.keys(LORA_DEFAULTS);
  for (const key of Object.keys(c)) {
    if (!known.includes(key)) {
      throw new TypeError(
        `Cannot configure PEFT method "lora": unknown key "${key}"${
          didYouMean(key, known)
        } (known: ${known.join(", ")})`,
      );
    }
  }
  const get = <K extends keyof LoraConfig>(k: K): unknown =>
    c[k] === undefined ? LORA_DEFAULTS[k] : c[k];
  const num = (k: "r" | "lora_alpha" | "lora_dropout") => {
    const v = get(k);
    if (typeof v !== "number") fail(k, `must be number, got ${JSON.stringify(v)}`);
    return v;
  };
  const bool = (k: "use_rslora" | "use_dora") => {
    const v = get(k);
    if (typeof v !== "boolean") fail(k, `must be boolean, got ${JSON.stringify(v)}`);
    return v;
  };
  const r = num("r"), lora_alpha = num("lora_alpha"), lora_dropout = num("lora_dropout");
  if (!Number.isInteger(r) || r < 1) fail("r", `must be a positive integer, got ${r}`);
  if (!(lora_alpha > 0)) fail("lora_alpha", `must be positive, got ${lora_alpha}`);
  if (!(lora_dropout >= 0 && lora_dropout < 1)) {
    fail("lora_dropout", `must be in [0, 1), got ${lora_dropout}`);
  }
  let target_modules = stringList("target_modules", get("target_modules"), true);
  if (Array.isArray(target_modules)) {
    if (target_modules.length === 0) fail("target_modules", "is empty");
    if (target_modules.length > 1 && target_modules.some((t) => t.toLowerCase() === ALL_LINEAR)) {
      fail("target_modules", `holds "${ALL_LINEAR}" beside other names; use it alone`);
    }
  } else if (typeof target_modules === "string" && target_modules.toLowerCase() === ALL_LINEAR) {
    target_modules = [target_modules];
  }
  const exclude_modules = stringList("exclude_modules", get("exclude_modules"), true);
  const bias = get("bias");
  if (bias !== "none" && bias !== "all" && bias !== "lora_only") {
    fail("bias", `must be "none", "all" or "lora_only", got ${JSON.stringify(bias)}`);
  }
  const modules_to_save = stringList("modules_to_save", get("modules_to_save"), false) as
    | string[]
    | null;
  const init = get("init_lora_weights");
  if (init !== true && init !== false && init !== "gaussian") {
    fail(
      "init_lora_weights",
      `is ${JSON.stringify(init)}: whet implements true, "gaussian" and false; ${
        typeof init === "string"
          ? `"${init}" (PiSSA, OLoRA, LoftQ, EVA, CorDA and the like) changes the base weights or needs data at initialisation, which whet does not do`
          : "expected one of those"
      }`,
    );
  }
  let layers = get("layers_to_transform");
  if (typeof layers === "number") layers = [layers];
  if (layers === null) layers = [];
  if (!Array.isArray(layers) || !layers.every((l) => Number.isInteger(l) && l >= 0)) {
    fail("layers_to_transform", `must be a list of block indices, got ${JSON.stringify(layers)}`);
  }
  let layers_pattern = stringList("layers_pattern", get("layers_pattern"), true);
  if (typeof layers_pattern === "string") layers_pattern = [layers_pattern];
  if (layers_pattern !== null && layers_pattern.length === 0) layers_pattern = null;
  if (typeof target_modules === "string" && (layers as number[]).length > 0) {
    fail(
      "layers_to_transform",
      "cannot be used when target_modules is a regex string (PEFT refuses it too)",
    );
  }
  if (typeof target_modules === "string" && layers_pattern) {
    fail(
      "layers_pattern",
      "cannot be used when target_modules is a regex string (PEFT refuses it too)",
    );
  }
  if (layers_pattern && (layers as number[]).length === 0) {
    fail("layers_pattern", "needs layers_to_transform (PEFT refuses it alone too)");
  }
  const adapter_name = get("adapter_name");
  if (typeof adapter_name !== "string" || adapter_name === "" || adapter_name.includes(".")) {
    fail(
      "adapter_name",
      `must be a non-empty name without dots, got ${JSON.stringify(adapter_name)}`,
    );
  }
  const out: LoraConfig = {
    r,
    lora_alpha,
    lora_dropout,
    target_modules,
    exclude_modules,
    use_rslora: bool("use_rslora"),
    use_dora: bool("use_dora"),
    bias,
    modules_to_save,
    init_lora_weights: init,
    layers_to_transform: (layers as number[]).slice(),
    layers_pattern: layers_pattern as string[] | null,
    rank_pattern: patterns("rank_pattern", get("rank_pattern")),
    alpha_pattern: patterns("alpha_pattern", get("alpha_pattern")),
    adapter_name,
  };
  validated.add(out);
  return out;
}

/** Fields of adapter_config.json mapped onto {@linkcode LoraConfig} keys of the same name. */
const HONOURED = [
  "r",
  "lora_alpha",
  "lora_dropout",
  "target_modules",
  "exclude_modules",
  "use_rslora",
  "use_dora",
  "bias",
  "modules_to_save",
  "init_lora_weights",
  "layers_to_transform",
  "layers_pattern",
  "rank_pattern",
  "alpha_pattern",
] as const;

/** Fields whet does not implement, with the values that mean "off" (their PEFT defaults). */
const REFUSED: Readonly<Record<string, { off: readonly unknown[]; what: string }>> = {
  lora_bias: { off: [false], what: "a trainable bias on LoRA's B (lora_bias) is not implemented" },
  use_qalora: { off: [false], what: "QALoRA is not implemented" },
  megatron_config: { off: [], what: "Megatron parallel layers are not supported" },
  layer_replication: { off: [], what: "layer replication is not implemented" },
  trainable_token_indices: { off: [], what: "trainable tokens are not implemented" },
  target_parameters: { off: [], what: "LoRA on parameters (target_parameters) is not implemented" },
  alora_invocation_tokens: { off: [], what: "activated LoRA (aLoRA) is not implemented" },
  arrow_config: { off: [], what: "Arrow routing is not implemented" },
  use_bdlora: { off: [false], what: "block-diagonal LoRA is not implemented" },
  ensure_weight_tying: { off: [false], what: "tied modules_to_save copies are not implemented" },
};

/** Bookkeeping fields, and settings of refused features that PEFT writes at their defaults. */
const ACCEPTED = [
  "peft_type",
  "task_type",
  "base_model_name_or_path",
  "revision",
  "inference_mode",
  "auto_mapping",
  "peft_version",
  "fan_in_fan_out",
  "megatron_core",
  "qalora_group_size",
  "loftq_config",
  "eva_config",
  "corda_config",
  "lora_ga_config",
  "runtime_config",
];

/** What {@linkcode loraConfigFromFile} found besides the configuration. */
export interface PeftFileNotes {
  /** `fan_in_fan_out` as the file holds it (null when absent); corrected per layer on apply. */
  fanInFanOut: boolean | null;
}

/**
 * A PEFT `adapter_config.json` (read once by peft/files.ts) as a validated {@linkcode LoraConfig}:
 * refused fields and settings are errors naming the file and the field; unknown fields are named
 * in one warning.
 */
export function loraConfigFromFile(
  cfg: AdapterConfigFile,
  warn: (message: string) => void,
): { config: LoraConfig; notes: PeftFileNotes } {
  cfg.expect("peft_type", "LORA");
  const task = cfg.get("task_type");
  if (task !== undefined && task !== null && task !== "CAUSAL_LM") {
    throw cfg.error(
      "task_type",
      `is ${
        JSON.stringify(task)
      }: whet loads causal language models only ("CAUSAL_LM"); a ${task} adapter carries heads or keys whet's decoders do not have`,
    );
  }
  for (const [key, { off, what }] of Object.entries(REFUSED)) cfg.refuseUnless(key, off, what);
  for (const key of ["loftq_config", "eva_config", "corda_config", "lora_ga_config"]) {
    // Their settings only matter with the matching init_lora_weights, which validate() refuses.
    const v = cfg.get(key);
    if (v !== undefined && v !== null && (typeof v !== "object" || Array.isArray(v))) {
      throw cfg.error(key, `must be an object or null, got ${JSON.stringify(v)}`);
    }
  }
  cfg.warnUnknown([...HONOURED, ...Object.keys(REFUSED), ...ACCEPTED], warn);
  const given: Record<string, unknown> = {};
  for (const key of HONOURED) {
    const v = cfg.get(key);
    // null in the file is PEFT's "unset": the default.
    if (v !== undefined && v !== null) given[key] = v;
  }
  const fif = cfg.get("fan_in_fan_out");
  if (fif !== undefined && fif !== null && typeof fif !== "boolean") {
    throw cfg.error("fan_in_fan_out", `must be true or false, got ${JSON.stringify(fif)}`);
  }
  const config = cfg.validate(() => validateLoraConfig(given));
  return { config, notes: { fanInFanOut: typeof fif === "boolean" ? fif : null } };
}

/**
 * PEFT's `get_pattern_key`: the first key of `pattern` (in insertion order) for which
 * `(.*\.)?(KEY)$` matches the module path from the start, or undefined.
 *
 * @example
 * ```ts
 * import { loraPatternKey } from "../mod.ts";
 * const p = { "h\\.1\\.attn\\.c_attn": 2, "c_attn": 6 };
 * if (loraPatternKey(p, "transformer.h.1.attn.c_attn") !== "h\\.1\\.attn\\.c_attn") throw new Error();
 * if (loraPatternKey(p, "transformer.h.0.attn.c_attn") !== "c_attn") throw new Error();
 * if (loraPatternKey(p, "transformer.h.0.mlp.c_fc") !== undefined) throw new Error();
 * ```
 */
export function loraPatternKey(
  pattern: Readonly<Record<string, number>>,
  path: string,
): string | undefined {
  return Object.keys(pattern).find((k) => new RegExp(`^(.*\\.)?(${k})$`).test(path));
}

/** Whether PEFT's target rule selects the module at HF path `hf`: a list (exact or dotted suffix) or a full-match regex. */
function matches(rule: string[] | string, hf: string): boolean {
  if (typeof rule === "string") return new RegExp(`^(?:${rule})$`).test(hf);
  return rule.some((t) => hf === t || hf.endsWith("." + t));
}

/**
 * The block index PEFT reads from a module path for `layers_to_transform`: the number after the
 * last `.NAME.` (any NAME, or one of `layersPattern`) followed by a dot, or null.
 */
function layerIndex(hf: string, layersPattern: string[] | null): number | null {
  const res = layersPattern ? layersPattern.map((p) => new RegExp(`^.*\\.${p}\\.(\\d+)\\.`)) : [
    /^.*\.[^.]*\.(\d+)\./,
  ];
  for (const re of res) {
    const m = re.exec(hf);
    if (m) return Number(m[1]);
  }
  return null;
}

/** The module paths (Hugging Face form) of the model's parameters and every ancestor of them. */
function modulePaths(model: Decoder): Set<string> {
  const out = new Set<string>();
  for (const name of model.params.keys()) {
    const parts = hfModulePath(model, name).split(".");
    for (let i = 1; i < parts.length; i++) out.add(parts.slice(0, i).join("."));
  }
  return out;
}

/**
 * The linear slots PEFT's rules select on `model`: `targets` (resolved list, or regex string),
 * minus `exclude`, within `layers` (per `layersPattern`). A regex or name that selects a module
 * that is not one of the blocks' linear layers (an embedding, a norm, a container) is refused
 * naming it, as PEFT refuses module types LoRA cannot wrap.
 */
export function selectLoraSlots(
  model: Decoder,
  targets: string[] | string,
  exclude: string[] | string | null,
  layers: readonly number[],
  layersPattern: string[] | null,
): LinearSlot[] {
  const L = model.shape.L;
  for (const l of layers) {
    if (l >= L) {
      throw new RangeError(
        `Cannot apply LoRA: layers_to_transform holds ${l}, outside 0..${L - 1}`,
      );
    }
  }
  const slots = model.linearSlots();
  const linear = new Set(slots.map((s) => hfModulePath(model, s.path)));
  if (typeof targets === "string") {
    // lm_head is a module of every Hugging Face causal LM, tied or not.
    const others = [...new Set([...modulePaths(model), "lm_head"])].filter((p) =>
      !linear.has(p) && matches(targets, p)
    );
    if (others.length > 0) {
      throw new RangeError(
        `Cannot apply LoRA: target_modules ${JSON.stringify(targets)} matches ${
          others.join(", ")
        }, ${
          others.length > 1 ? "which are not linear layers" : "which is not a linear layer"
        } of the blocks (LoRA wraps those only)`,
      );
    }
  }
  const out = slots.filter((s) => {
    const hf = hfModulePath(model, s.path);
    if (!matches(targets, hf)) return false;
    if (exclude !== null && matches(exclude, hf)) return false;
    if (layers.length === 0 || typeof targets === "string") return true;
    const l = layerIndex(hf, layersPattern);
    return l !== null && layers.includes(l);
  });
  if (out.length === 0) {
    const names = [...new Set(slots.map((s) => s.name))];
    throw new RangeError(
      `Cannot apply LoRA: target_modules ${JSON.stringify(targets)}${
        exclude ? ` without ${JSON.stringify(exclude)}` : ""
      }${layers.length > 0 ? ` in layers ${JSON.stringify(layers)}` : ""}${
        layersPattern ? ` (layers_pattern ${JSON.stringify(layersPattern)})` : ""
      } match none of ${names.join(", ")} (module paths like ${
        hfModulePath(model, slots[0].path)
      })`,
    );
  }
  return out;
}

/**
 * The `adapter_config.json` whet writes for `config` on layers stored per `fanInFanOut`: only the
 * long-standing `LoraConfig` keys (REFERENCES.md), because PEFT before 0.14 refuses a config with a
 * key it does not know (`LoraConfig.__init__() got an unexpected keyword argument`), while every
 * version fills a missing key with its default. `exclude_modules` (PEFT 0.14+) is written only
 * when set: an older PEFT cannot honour it, so refusing the file is then the right outcome.
 */
export function peftLoraJson(
  config: LoraConfig,
  targets: string[] | string,
  fanInFanOut: boolean,
  baseModel: string,
): Record<string, unknown> {
  const c = config;
  return {
    alpha_pattern: c.alpha_pattern,
    base_model_name_or_path: baseModel,
    bias: c.bias,
    ...(c.exclude_modules === null ? {} : { exclude_modules: c.exclude_modules }),
    // As the layers store their weights: Conv1D (in, out) or nn.Linear (out, in).
    fan_in_fan_out: fanInFanOut,
    inference_mode: true,
    init_lora_weights: c.init_lora_weights,
    layers_pattern: c.layers_pattern,
    layers_to_transform: c.layers_to_transform.length > 0 ? c.layers_to_transform : null,
    lora_alpha: c.lora_alpha,
    lora_dropout: c.lora_dropout,
    modules_to_save: c.modules_to_save,
    peft_type: "LORA",
    r: c.r,
    rank_pattern: c.rank_pattern,
    target_modules: targets,
    task_type: "CAUSAL_LM",
    use_dora: c.use_dora,
    use_rslora: c.use_rslora,
  };
}
