/**
 * IA³ (Liu et al., 2022) as Hugging Face PEFT implements it: learned vectors, initialised to 1,
 * that scale the output of attention targets and the input of feed-forward targets. Defaults by
 * the config's `model_type`, from PEFT's `TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING` and
 * `…_FEEDFORWARD_MODULES_MAPPING` (peft/utils/constants.py):
 *
 * | model_type | target_modules | feedforward_modules |
 * | --- | --- | --- |
 * | gpt2 | `c_attn` (the whole fused q,k,v output, a (3C) vector), `mlp.c_proj` | `mlp.c_proj` (its (4C) input, the GELU output) |
 * | llama | `k_proj`, `v_proj`, `down_proj` | `down_proj` (its (F) input, silu(gate)·up) |
 * | qwen2 | `q_proj`, `v_proj`, `down_proj` | `down_proj` |
 *
 * The base is frozen.
 *
 *   output scaling: y = base(x) ⊙ l          dl += Σ_rows dy ⊙ base(x),     d base(x) = dy ⊙ l
 *   input scaling:  y = base(x ⊙ l)          dl += Σ_rows d(x ⊙ l) ⊙ x,   dx = d(x ⊙ l) ⊙ l
 *
 * Merging folds l into the base weight: output scaling multiplies each output's weights and its
 * bias (if any) by l, input scaling each input's weights — the columns and rows of a Conv1D weight
 * stored (in, out) (GPT-2), the rows and columns of an `nn.Linear` weight stored (out, in).
 * Unmerging divides them again (exact division; a zero in l cannot be unmerged and is refused).
 *
 * Files: Hugging Face PEFT's layout, `adapter_config.json` (`peft_type: "IA3"`, sorted keys,
 * `fan_in_fan_out` as the layers store their weights) + `adapter_model.safetensors` with keys
 * `base_model.model.` + the module path from the Hugging Face model's root + `.ia3_l`
 * (`base_model.model.transformer.h.{i}.attn.c_attn.ia3_l`,
 * `base_model.model.model.layers.{i}.self_attn.k_proj.ia3_l`) of shape (out, 1) for attention
 * targets and (1, in) for feed-forward ones (PEFT's `IA3Layer.update_layer`; the adapter name is
 * removed on save, and the parameter lives in a ParameterDict, so the key has no `.weight`;
 * `….ia3_l.weight` is accepted on load).
 *
 * @module
 */

import type { Ctx } from "../models/context.ts";
import type { Decoder } from "../models/decoder.ts";
import type { Linear, LinearLike } from "../models/linear.ts";
import { type Param, requireF32 } from "../models/param.ts";
import { PeftKernels } from "../kernels/peft.ts";
import type { Tensor } from "../runtime/tensor.ts";
import type { LinearSlot } from "../models/decoder.ts";
import {
  ALL_LINEAR,
  checkConfig,
  checkPeftFields,
  checkTargets,
  freezeBase,
  hfModulePath,
  linearSlots,
  type MergeReport,
  modelType,
  type PeftContext,
  type PeftInstance,
  type PeftMethod,
  resolveTargets,
} from "./method.ts";
import {
  type AdapterConfigFile,
  type AdapterWeights,
  readAdapterConfigFile,
  readAdapterWeights,
  writeAdapterFiles,
} from "./files.ts";

/** IA³ configuration (PEFT's `IA3Config` names and defaults). */
export interface IA3Config {
  /**
   * Modules to scale: a list of names matched exactly or as a dotted suffix, or `["all-linear"]`,
   * or (as PEFT reads a string) one regular expression that must match the whole module path from
   * the Hugging Face model's root (`transformer.h.0.attn.c_attn`, `model.layers.0.mlp.down_proj`).
   * Default null: PEFT's default for the model's family (see the module doc; `["c_attn",
   * "mlp.c_proj"]` for GPT-2, `["k_proj", "v_proj", "down_proj"]` for Llama).
   */
  target_modules: string[] | string | null;
  /**
   * Targets whose input (not output) is scaled: a list of names a module path ends with, or a
   * regular expression matching the whole path, as PEFT reads them. Default null: PEFT's default
   * for the family (`["mlp.c_proj"]` for GPT-2, `["down_proj"]` for Llama and Qwen2), kept to
   * the targets.
   */
  feedforward_modules: string[] | string | null;
  /** Blocks to adapt (empty: all). */
  layers_to_transform: number[];
}

const DEFAULTS: IA3Config = {
  target_modules: null,
  feedforward_modules: null,
  layers_to_transform: [],
};

/** PEFT's `TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING` for the families whet has. */
const DEFAULT_TARGETS: Readonly<Record<string, readonly string[]>> = {
  gpt2: ["c_attn", "mlp.c_proj"],
  llama: ["k_proj", "v_proj", "down_proj"],
  qwen2: ["q_proj", "v_proj", "down_proj"],
};

/** PEFT's `TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING` for the families whet has. */
const DEFAULT_FEEDFORWARD: Readonly<Record<string, readonly string[]>> = {
  gpt2: ["mlp.c_proj"],
  llama: ["down_proj"],
  qwen2: ["down_proj"],
};

/** A regular expression that must match a whole module path (PEFT's `re.fullmatch`). */
function fullMatch(key: string, source: string): RegExp {
  try {
    return new RegExp(`^(?:${source})$`);
  } catch (e) {
    throw new TypeError(
      `Cannot configure IA³: "${key}" is not a valid regular expression: ${(e as Error).message}`,
    );
  }
}

/**
 * Whether the module at `path` is a feed-forward target, as PEFT's IA³ decides it: a string is a
 * regular expression over the Hugging Face path, a list holds names the path ends with.
 */
function isFeedforward(hfPath: string, feedforward: readonly string[] | string): boolean {
  return typeof feedforward === "string"
    ? fullMatch("feedforward_modules", feedforward).test(hfPath)
    : feedforward.some((f) => hfPath.endsWith(f));
}

/** The linear layers IA³ targets: by regular expression over the Hugging Face path, or by name. */
function targetSlots(
  model: Decoder,
  targets: readonly string[] | string,
  layers: readonly number[],
): LinearSlot[] {
  if (typeof targets !== "string") return linearSlots(model, "IA³", targets, layers);
  const re = fullMatch("target_modules", targets);
  const names = [...new Set(model.linearSlots().map((s) => s.name))];
  const found = linearSlots(model, "IA³", names, layers).filter((s) =>
    re.test(hfModulePath(model, s.path))
  );
  if (found.length === 0) {
    throw new RangeError(
      `Cannot apply IA³: target_modules ${JSON.stringify(targets)} matches no module path (e.g. ${
        hfModulePath(model, model.linearSlots()[0].path)
      })`,
    );
  }
  return found;
}

/**
 * A linear layer (Conv1D or `nn.Linear`) with an IA³ scaling vector; replaces the base
 * {@linkcode Linear} in its block.
 *
 * @example
 * ```ts
 * import { GPT, gptConfig, Gpu, ia3, IA3Linear } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const model = await GPT.create(gpu, gptConfig("tiny"), { seed: 1 });
 * await ia3.apply(model, ia3.validate({}), 0);
 * const cAttn = model.blocks[0].attn.cAttn, cProj = model.blocks[0].mlp.cProj;
 * // c_attn's output is scaled (out, 1); the feed-forward c_proj's input (1, in).
 * if (!(cAttn instanceof IA3Linear) || cAttn.feedforward || cAttn.l.shape.join() !== "96,1") throw new Error();
 * if (!(cProj instanceof IA3Linear) || !cProj.feedforward || cProj.l.shape.join() !== "1,128") throw new Error();
 * model.release();
 * ```
 */
export class IA3Linear implements LinearLike {
  /** The wrapped base layer. */
  readonly base: Linear;
  /** Module path, e.g. `h.0.attn.c_attn`. */
  readonly path: string;
  /** The scaling vector: (out, 1) for output scaling, (1, in) for input scaling (feed-forward). */
  readonly l: Param;
  /** True when the input is scaled (a feed-forward target). */
  readonly feedforward: boolean;
  /** Whether l is folded into the base weight (then the layer runs as the base alone). */
  merged = false;
  /** Whether the scaling is applied (false: the base alone). */
  active = true;
  readonly #k: PeftKernels;

  /** Wraps `base` (found at `path`) with scaling vector `l`. */
  constructor(base: Linear, path: string, l: Param, feedforward: boolean, kernels: PeftKernels) {
    this.base = base;
    this.path = path;
    this.l = l;
    this.feedforward = feedforward;
    this.#k = kernels;
  }

  /** Input features. */
  get nIn(): number {
    return this.base.nIn;
  }
  /** Output features. */
  get nOut(): number {
    return this.base.nOut;
  }

  #live(): boolean {
    return this.active && !this.merged;
  }

  /** x (M,in) → y (M,out) `=`: base with its output or input scaled by l. */
  forward(ctx: Ctx, x: Tensor, y: Tensor, M: number): void {
    if (!this.#live()) return this.base.forward(ctx, x, y, M);
    if (this.feedforward) {
      const xs = ctx.acts.scratch(`${this.path}.ia3.xs`, [M, this.nIn]);
      this.#k.scale(ctx.batch, x, this.l.value, xs, M, this.nIn);
      this.base.forward(ctx, xs, y, M);
    } else {
      const u = ctx.acts.scratch(`${this.path}.ia3.u`, [M, this.nOut]);
      this.base.forward(ctx, x, u, M);
      this.#k.scale(ctx.batch, u, this.l.value, y, M, this.nOut);
    }
  }

  /** dy (M,out) → dx (M,in) `=` (skipped when null); dl `+=`; base gradients `+=` when trainable. */
  backward(ctx: Ctx, x: Tensor, dy: Tensor, dx: Tensor | null, M: number): void {
    if (!this.#live()) return this.base.backward(ctx, x, dy, dx, M);
    const batch = ctx.batch;
    if (this.feedforward) {
      const xs = ctx.acts.scratch(`${this.path}.ia3.xs`, [M, this.nIn]);
      const dxs = ctx.acts.scratch(`${this.path}.ia3.dxs`, [M, this.nIn]);
      this.base.backward(ctx, xs, dy, dxs, M);
      if (this.l.grad) this.#k.scaleGrad(batch, dxs, x, this.l.grad, M, this.nIn);
      if (dx) this.#k.scale(batch, dxs, this.l.value, dx, M, this.nIn);
    } else {
      const u = ctx.acts.scratch(`${this.path}.ia3.u`, [M, this.nOut]);
      const du = ctx.acts.scratch(`${this.path}.ia3.du`, [M, this.nOut]);
      if (this.l.grad) this.#k.scaleGrad(batch, dy, u, this.l.grad, M, this.nOut);
      this.#k.scale(batch, dy, this.l.value, du, M, this.nOut);
      this.base.backward(ctx, x, du, dx, M);
    }
  }
}

/**
 * IA³ applied to a model.
 *
 * @example
 * ```ts
 * import { GPT, gptConfig, Gpu, ia3 } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const model = await GPT.create(gpu, gptConfig("tiny"), { seed: 1 });
 * const inst = await ia3.apply(model, ia3.validate({}), 0);
 * if (inst.describe() !== "IA³ on c_attn, mlp.c_proj (feed-forward: mlp.c_proj), 4 layers") {
 *   throw new Error(inst.describe());
 * }
 * await inst.merge(); // W scaled by l; unmerge() divides it out again
 * await inst.unmerge();
 * model.release();
 * ```
 */
export class IA3Instance implements PeftInstance {
  /** `"ia3"`. */
  readonly method = "ia3";
  /** The configuration, its module lists resolved for the model. */
  readonly config: Readonly<
    IA3Config & { target_modules: string[] | string; feedforward_modules: string[] | string }
  >;
  /** The scaling vectors. */
  readonly added: readonly Param[];
  /** The wrapped layers. */
  readonly layers: readonly IA3Linear[];
  readonly #model: Decoder;
  readonly #k: PeftKernels;
  readonly #baseModel: string;

  /** Use {@linkcode ia3}.apply or `load`. */
  constructor(
    model: Decoder,
    config: IA3Config & {
      target_modules: string[] | string;
      feedforward_modules: string[] | string;
    },
    layers: IA3Linear[],
    kernels: PeftKernels,
    baseModel = "",
  ) {
    this.#model = model;
    this.#baseModel = baseModel;
    this.config = config;
    this.layers = layers;
    this.added = layers.map((l) => l.l);
    this.#k = kernels;
  }

  /** The scaling vectors. */
  trainable(): Param[] {
    return this.added.slice();
  }

  /** Turns the scaling on (default) or off (the base alone) on every adapted layer. */
  setActive(on: boolean): void {
    for (const l of this.layers) l.active = on;
  }

  /** Folds l into the base weights (and the bias, for output scaling). */
  merge(): Promise<MergeReport> {
    return this.#fold(false);
  }

  /** Divides l back out of the base weights: undoes {@linkcode merge}. */
  unmerge(): Promise<MergeReport> {
    return this.#fold(true);
  }

  async #fold(divide: boolean): Promise<MergeReport> {
    const gpu = this.#model.gpu;
    for (const l of this.layers) {
      if (l.merged !== divide) {
        throw new Error(
          `Cannot ${divide ? "unmerge" : "merge"} IA³ on ${l.path}: it is ${
            divide ? "not" : "already"
          } merged`,
        );
      }
    }
    if (divide) {
      const ls = await gpu.read(this.layers.map((l) => l.l.value));
      ls.forEach((v, i) => {
        if (v.some((x) => x === 0)) {
          throw new Error(
            `Cannot unmerge IA³ on ${this.layers[i].path}: its scaling vector holds a zero`,
          );
        }
      });
    }
    // A half base (baseDtype) would round the scaled W to its grid: refused, naming the weight.
    for (const l of this.layers) {
      const W = l.base.weight;
      requireF32(W, `${divide ? "unmerge IA³ from" : "merge IA³ into"} "${W.name}"`);
    }
    const batch = gpu.batch(), temps: Tensor[] = [];
    const merged: string[] = [];
    for (const l of this.layers) {
      const W = l.base.weight, b = l.base.bias, nOut = l.nOut;
      const [rows, cols] = W.shape as [number, number];
      const w0 = gpu.tensor(W.shape, undefined, `${l.path}.ia3.merge`);
      temps.push(w0);
      batch.copy(W.value, w0);
      // Conv1D's W (in, out): output scaling scales its columns, input scaling its rows;
      // nn.Linear's W (out, in): the other way round.
      const byRow = l.feedforward === l.base.fanInFanOut;
      this.#k.scale(batch, w0, l.l.value, W.value, rows, cols, { byRow, divide });
      merged.push(W.name);
      if (!l.feedforward && b) {
        const b0 = gpu.tensor(b.shape, undefined, `${l.path}.ia3.merge.bias`);
        temps.push(b0);
        batch.copy(b.value, b0);
        this.#k.scale(batch, b0, l.l.value, b.value, 1, nOut, { divide });
        merged.push(b.name);
      }
      l.merged = !divide;
    }
    batch.afterSubmit(() => temps.forEach((t) => t.release()));
    await batch.submit();
    return { merged };
  }

  /**
   * PEFT's adapter_config.json, only the long-standing keys of PEFT's `IA3Config` (as
   * LoRA's, REFERENCES.md: PEFT before 0.14 refuses a key it does not know, e.g. `exclude_modules`). PEFT's IA³ has no
   * `layers_to_transform`: with it set, `target_modules` is written as a regular expression
   * matching exactly the adapted modules' paths, which PEFT (and whet) read as such.
   */
  adapterConfig(baseModel = ""): Record<string, unknown> {
    const c = this.config;
    const targets = c.layers_to_transform.length === 0
      ? c.target_modules
      : this.layers.map((l) =>
        hfModulePath(this.#model, l.path).replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
      ).join("|");
    return {
      base_model_name_or_path: baseModel || this.#baseModel || null,
      // As the layers store their weights: Conv1D (in, out) or nn.Linear (out, in).
      fan_in_fan_out: this.layers[0].base.fanInFanOut,
      feedforward_modules: c.feedforward_modules,
      inference_mode: true,
      init_ia3_weights: true,
      modules_to_save: null,
      peft_type: "IA3",
      target_modules: targets,
      task_type: "CAUSAL_LM",
    };
  }

  /** Writes adapter_config.json + adapter_model.safetensors in Hugging Face PEFT's layout. */
  async save(dir: string, baseModel = ""): Promise<void> {
    const config = this.adapterConfig(baseModel);
    const data = await this.#model.gpu.read(this.added.map((p) => p.value));
    await writeAdapterFiles(
      dir,
      config,
      this.layers.map((l, i) => [this.#key(l), { shape: l.l.shape, data: data[i] }] as const),
    );
  }

  /** Loads the scaling vectors from a PEFT-layout folder (written here or by Python's PEFT). */
  async load(dir: string): Promise<void> {
    (await readAdapterConfigFile(dir)).expect("peft_type", "IA3");
    this.read(await readAdapterWeights(dir));
  }

  /**
   * Writes the scaling vectors from `weights` (keys `….ia3_l`, or `….ia3_l.weight`); a tensor
   * in the file that no adapted layer takes is an error naming it, since PEFT would apply it.
   */
  read(weights: AdapterWeights): void {
    const used = new Set<string>();
    for (const l of this.layers) {
      const key = this.#key(l);
      l.l.value.write(weights.tensor([key, key + ".weight"], l.l.shape, "IA³"));
      used.add(key).add(key + ".weight");
    }
    const extra = weights.names().filter((n) => !used.has(n));
    if (extra.length > 0) {
      throw new Error(
        `Cannot load IA³ from ${weights.file}: tensor${extra.length > 1 ? "s" : ""} ${
          extra.slice(0, 3).map((n) => `"${n}"`).join(", ")
        }${extra.length > 3 ? ` and ${extra.length - 3} more` : ""} belong to no adapted module`,
      );
    }
  }

  /** PEFT's file key: `base_model.model.` + the module path from the Hugging Face model's root. */
  #key(l: IA3Linear): string {
    return `base_model.model.${hfModulePath(this.#model, l.path)}.ia3_l`;
  }

  /** e.g. `IA³ on c_attn, mlp.c_proj (feed-forward: mlp.c_proj), 24 layers`. */
  describe(): string {
    const c = this.config;
    const names = (v: string[] | string) => typeof v === "string" ? `/${v}/` : v.join(", ");
    return `IA³ on ${names(c.target_modules)} (feed-forward: ${
      names(c.feedforward_modules) || "none"
    }), ${this.layers.length} layers`;
  }
}

/**
 * Reads a PEFT IA³ adapter_config.json into an {@linkcode IA3Config}.
 *
 * @example
 * ```ts
 * import { GPT, gptConfig, Gpu, ia3, readIA3Config } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const model = await GPT.create(gpu, gptConfig("tiny"), { seed: 1 });
 * const inst = await ia3.apply(model, ia3.validate({}), 0);
 * const dir = await Deno.makeTempDir();
 * await inst.save(dir); // PEFT's IA³ layout
 * const cfg = await readIA3Config(dir);
 * if (String(cfg.feedforward_modules) !== "mlp.c_proj") throw new Error();
 * model.release();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function readIA3Config(
  dir: string,
): Promise<
  IA3Config & { target_modules: string[] | string; feedforward_modules: string[] | string }
> {
  const cfg = ia3Settings(await readAdapterConfigFile(dir));
  return {
    ...cfg,
    target_modules: cfg.target_modules ?? [],
    feedforward_modules: cfg.feedforward_modules ?? [],
  };
}

/** Every field of PEFT 0.17's IA3Config (and `peft_version`, which later ones add). */
const PEFT_FIELDS = [
  "auto_mapping",
  "base_model_name_or_path",
  "exclude_modules",
  "fan_in_fan_out",
  "feedforward_modules",
  "inference_mode",
  "init_ia3_weights",
  "modules_to_save",
  "peft_type",
  "peft_version",
  "revision",
  "target_modules",
  "task_type",
];

/**
 * Checks an IA³ adapter_config.json's fields and returns its settings. PEFT's IA3Config has no
 * `layers_to_transform` or `layers_pattern`: whet honours a `layers_to_transform` (its own saves
 * before it wrote regular expressions) and refuses `layers_pattern`; `fan_in_fan_out` follows the
 * layers' storage whatever the file says, as in PEFT (which warns and corrects it);
 * `init_ia3_weights` only decides an initialisation that the file's vectors replace.
 */
function ia3Settings(
  config: AdapterConfigFile,
  warn?: (message: string) => void,
): IA3Config {
  config.expect("peft_type", "IA3");
  checkPeftFields(config, "IA³", ["layers_to_transform"]);
  if (warn) config.warnUnknown([...PEFT_FIELDS, "layers_to_transform", "layers_pattern"], warn);
  const ex = config.get("exclude_modules");
  if (ex !== undefined && ex !== null && !(Array.isArray(ex) && ex.length === 0)) {
    throw config.error(
      "exclude_modules",
      `is ${JSON.stringify(ex)}, which whet's IA³ does not support`,
    );
  }
  for (const key of ["fan_in_fan_out", "init_ia3_weights", "inference_mode"]) {
    const v = config.get(key);
    if (v !== undefined && v !== null && typeof v !== "boolean") {
      throw config.error(key, `must be true or false, got ${JSON.stringify(v)}`);
    }
  }
  const layers = config.get("layers_to_transform");
  return config.validate(() =>
    ia3.validate({
      target_modules: config.get("target_modules") ?? null,
      feedforward_modules: config.get("feedforward_modules") ?? null,
      layers_to_transform: Array.isArray(layers)
        ? layers
        : typeof layers === "number"
        ? [layers]
        : [],
    })
  );
}

/**
 * The IA³ method.
 *
 * @example
 * ```ts
 * import { GPT, gptConfig, Gpu, ia3, Llama, llamaConfig } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const model = await GPT.create(gpu, gptConfig("tiny"), { seed: 1 });
 * const inst = await ia3.apply(model, ia3.validate({}), 0);
 * // c_attn output (3C, 1) and mlp.c_proj input (1, 4C) in each of the 2 blocks.
 * if (inst.added.map((p) => p.shape.join("x")).join() !== "96x1,1x128,96x1,1x128") {
 *   throw new Error("IA³ shapes");
 * }
 * await inst.merge(); // folded into the weights; unmerge() divides it out again
 * model.release();
 * // Llama: k_proj and v_proj outputs (2 kv heads of 12), down_proj's input (F = 88).
 * const llama = await Llama.create(gpu, llamaConfig("llama-tiny"), { seed: 1 });
 * const li = await ia3.apply(llama, ia3.validate({}), 0);
 * if (li.added.slice(0, 3).map((p) => p.shape.join("x")).join() !== "24x1,24x1,1x88") {
 *   throw new Error("IA³ shapes on Llama");
 * }
 * llama.release();
 * ```
 */
export const ia3: Omit<PeftMethod<IA3Config>, "apply" | "load"> & {
  apply(
    model: Decoder,
    config: IA3Config,
    seed: number,
    context?: PeftContext,
  ): Promise<IA3Instance>;
  load(model: Decoder, config: AdapterConfigFile, context?: PeftContext): Promise<IA3Instance>;
} = {
  name: "ia3",
  summary:
    "IA³: learned scaling of attention projections' outputs and the feed-forward input; mergeable",
  defaults: DEFAULTS,
  validate(c: Record<string, unknown>): IA3Config {
    const cfg = checkConfig("ia3", DEFAULTS, c);
    const t = cfg.target_modules;
    const regex = typeof t === "string" && t.toLowerCase() !== ALL_LINEAR;
    if (regex) fullMatch("target_modules", t);
    const targets = regex ? t : checkTargets("IA³", "target_modules", t);
    const ff = cfg.feedforward_modules;
    if (typeof ff === "string") fullMatch("feedforward_modules", ff);
    else if (
      ff !== null && !(Array.isArray(ff) && ff.every((f: unknown) => typeof f === "string"))
    ) {
      throw new TypeError(
        `Cannot configure IA³: key "feedforward_modules" must be a list of module names, a regular expression or null, got ${
          JSON.stringify(ff)
        }`,
      );
    }
    // Checked only when both are lists, as PEFT's IA3Config does: a subset of the targets, name
    // for name (PEFT refuses to load a config that fails it).
    const listed = Array.isArray(targets) && targets[0].toLowerCase() !== ALL_LINEAR;
    for (const f of listed && Array.isArray(ff) ? ff : []) {
      if (!(targets as string[]).includes(f)) {
        throw new RangeError(
          `Cannot configure IA³: feedforward module "${f}" is not among target_modules ${
            JSON.stringify(targets)
          }`,
        );
      }
    }
    return {
      ...cfg,
      target_modules: targets,
      feedforward_modules: ff === null ? null : typeof ff === "string" ? ff : ff.slice(),
    };
  },
  async apply(
    model: Decoder,
    config: IA3Config,
    _seed: number,
    context: PeftContext = {},
  ): Promise<IA3Instance> {
    const valid = ia3.validate(config as unknown as Record<string, unknown>);
    const targets = typeof valid.target_modules === "string"
      ? valid.target_modules
      : resolveTargets(model, "IA³", valid.target_modules, DEFAULT_TARGETS);
    // The family's feed-forward default keeps only names among the targets, so that the saved
    // config passes PEFT's subset check (name for name).
    const cfg = {
      ...valid,
      target_modules: targets,
      feedforward_modules: valid.feedforward_modules ??
        (DEFAULT_FEEDFORWARD[modelType(model)] ?? []).filter((f) =>
          typeof targets === "string" || targets.includes(f)
        ),
    };
    const k = await PeftKernels.create(model.gpu);
    // Find every target first, so a refusal leaves the model untouched.
    const found = targetSlots(model, cfg.target_modules, cfg.layers_to_transform);
    for (const slot of found) {
      if (!("weight" in slot.current)) {
        throw new TypeError(
          `Cannot apply IA³ to ${slot.path}: it is already wrapped by another method`,
        );
      }
    }
    freezeBase(model);
    const layers = found.map((slot) => {
      const base = slot.current as Linear, path = slot.path;
      const ff = isFeedforward(hfModulePath(model, path), cfg.feedforward_modules);
      const shape = ff ? [1, base.nIn] : [base.nOut, 1];
      const l = model.addParam(
        `${path}.ia3_l.default`,
        shape,
        new Float32Array(ff ? base.nIn : base.nOut).fill(1),
      );
      const wrapper = new IA3Linear(base, path, l, ff, k);
      slot.replace(wrapper);
      return wrapper;
    });
    return new IA3Instance(model, cfg, layers, k, context.baseModel ?? "");
  },
  peftType: "IA3",
  /**
   * Applies an IA3 folder: every field of PEFT 0.17's config is checked (see `ia3Settings`;
   * unknown fields are warned about by name), then the vectors are read; a tensor no adapted
   * module takes is an error.
   */
  async load(
    model: Decoder,
    config: AdapterConfigFile,
    context: PeftContext = {},
  ): Promise<IA3Instance> {
    const cfg = ia3Settings(config, context.warn ?? console.warn);
    const weights = await readAdapterWeights(config.dir);
    const base = String(config.get("base_model_name_or_path") ?? "") || context.baseModel || "";
    const inst = await ia3.apply(model, cfg, 0, { ...context, baseModel: base });
    const stored = config.get("fan_in_fan_out");
    const layout = inst.layers[0].base.fanInFanOut;
    if (typeof stored === "boolean" && stored !== layout) {
      (context.warn ?? console.warn)(
        `warning: ${config.file}: fan_in_fan_out is ${stored}, but the layers store their weights ${
          layout ? "(in, out)" : "(out, in)"
        }; using ${layout}, as PEFT does`,
      );
    }
    inst.read(weights);
    return inst;
  },
};
