/**
 * LoRA (Hu et al., 2021) as Hugging Face PEFT implements it: each targeted linear layer gets
 * `y = base(x) + scaling · dropout(x)·Aᵀ·Bᵀ`, A (r, in) initialised kaiming-uniform (a = √5, i.e.
 * U(−1/√in, 1/√in)) and B (out, r) at zero, so the model is unchanged until trained; scaling is
 * `lora_alpha / r` (rsLoRA: `lora_alpha / √r`). Merging adds `scaling·B·A` to an `nn.Linear`
 * weight stored (out, in) (the Llama family), or `scaling·(B·A)ᵀ` to a Conv1D weight stored
 * (in, out) (GPT-2: PEFT's `fan_in_fan_out`); unmerging subtracts it. Several named adapters can
 * live on one base; one is active at a time, or none (disabled).
 *
 * Targets follow PEFT: names match a module path exactly or as a dotted suffix; `["all-linear"]`
 * is every linear layer of the blocks (never the head); unset, the family's default from PEFT's
 * `TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING` — `c_attn` for GPT-2, `q_proj`, `v_proj`
 * for Llama and Qwen2 (chosen by the config's `model_type`).
 *
 * Files: Hugging Face PEFT's layout, `adapter_config.json` (sorted keys, long-standing keys only) +
 * `adapter_model.safetensors` (metadata `{"format":"pt"}`), keys `base_model.model.` + the module
 * path from the root of the Hugging Face model + `.lora_A.weight` (r, in) / `.lora_B.weight`
 * (out, r): `base_model.model.transformer.h.{i}.attn.c_attn.lora_A.weight` for GPT-2,
 * `base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight` for the Llama family, so
 * adapters move between whet and Python's PEFT both ways. `fan_in_fan_out` is written as the
 * layers store their weights (true for Conv1D, false for `nn.Linear`); on load a file's value is
 * corrected to the layer's, as PEFT does (it warns and overrides it): A and B are stored the same
 * either way, so nothing else changes.
 *
 * @module
 */

import type { Ctx } from "../models/context.ts";
import type { Decoder } from "../models/decoder.ts";
import type { Linear, LinearLike } from "../models/linear.ts";
import type { Param } from "../models/param.ts";
import { readSafetensors, writeFileAtomic, writeSafetensors } from "../models/safetensors.ts";
import { Rng } from "../runtime/rng.ts";
import type { Tensor } from "../runtime/tensor.ts";
import { validateAdapterConfig } from "./prompt.ts";
import {
  checkConfig,
  checkTargets,
  freezeBase,
  hfModulePath,
  linearSlots,
  type MergeReport,
  type PeftInstance,
  type PeftMethod,
  resolveTargets,
} from "./method.ts";

/** LoRA configuration (Hugging Face PEFT's `LoraConfig` names and defaults). */
export interface LoraConfig {
  /** Rank r (4–32 typical). Default 8. */
  r: number;
  /** Scaling numerator: scaling = lora_alpha / r. Default 8. */
  lora_alpha: number;
  /** Dropout on the LoRA branch input. Default 0. */
  lora_dropout: number;
  /**
   * Module names matched exactly or as a dotted suffix (`c_attn`, `attn.c_proj`, `q_proj`,
   * `mlp.down_proj`), or `["all-linear"]` (every linear layer of the blocks). Default null: PEFT's
   * default for the model's family, `["c_attn"]` for GPT-2, `["q_proj", "v_proj"]` for Llama and
   * Qwen2.
   */
  target_modules: string[] | null;
  /** rsLoRA: scaling = lora_alpha / √r. Default false. */
  use_rslora: boolean;
  /** Blocks to adapt (empty: all). */
  layers_to_transform: number[];
  /** Adapter name (several can live on one model). Default `"default"`. */
  adapter_name: string;
}

const DEFAULTS: LoraConfig = {
  r: 8,
  lora_alpha: 8,
  lora_dropout: 0,
  target_modules: null,
  use_rslora: false,
  layers_to_transform: [],
  adapter_name: "default",
};

/** PEFT's `TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING` for the families whet has. */
const DEFAULT_TARGETS: Readonly<Record<string, readonly string[]>> = {
  gpt2: ["c_attn"],
  llama: ["q_proj", "v_proj"],
  qwen2: ["q_proj", "v_proj"],
};

/** One named adapter of a {@linkcode LoRALinear}. */
export interface LoraAdapter {
  /** Adapter name. */
  name: string;
  /** A (r, in). */
  A: Param;
  /** B (out, r). */
  B: Param;
  /** Rank. */
  r: number;
  /** alpha/r (or alpha/√r). */
  scaling: number;
  /** Dropout on the branch input. */
  dropout: number;
}

/**
 * A linear layer (Conv1D or `nn.Linear`) with LoRA adapters; replaces the base {@linkcode Linear}
 * in its block.
 *
 * @example
 * ```ts
 * import { GPT, gptConfig, Gpu, lora, LoRALinear } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const model = await GPT.create(gpu, gptConfig("tiny"), { seed: 1 });
 * await lora.apply(model, lora.validate({ r: 4, target_modules: ["c_attn", "c_fc"] }), 0);
 * const layer = model.blocks[1].mlp.cFc;
 * if (!(layer instanceof LoRALinear) || layer.path !== "h.1.mlp.c_fc") throw new Error();
 * // A (r, in), B (out, r), scaling lora_alpha / r = 8 / 4.
 * const a = layer.adapters.get("default")!;
 * if (a.A.shape.join() !== "4,32" || a.B.shape.join() !== "128,4" || a.scaling !== 2) throw new Error();
 * model.release();
 * ```
 */
export class LoRALinear implements LinearLike {
  /** The wrapped base layer. */
  readonly base: Linear;
  /** Module path, e.g. `h.0.attn.c_attn` or `model.layers.0.self_attn.q_proj`. */
  readonly path: string;
  /** Adapters by name. */
  readonly adapters: Map<string, LoraAdapter> = new Map();
  /** The adapter in use, or null (disabled: the base alone). */
  active: string | null = null;
  /** Adapters currently folded into the base weight. */
  readonly merged: Set<string> = new Set();

  /** Wraps `base` (found at `path`). */
  constructor(base: Linear, path: string) {
    this.base = base;
    this.path = path;
  }

  /** Input features. */
  get nIn(): number {
    return this.base.nIn;
  }
  /** Output features. */
  get nOut(): number {
    return this.base.nOut;
  }

  #live(): LoraAdapter | null {
    if (this.active === null || this.merged.has(this.active)) return null;
    return this.adapters.get(this.active) ?? null;
  }

  #input(ctx: Ctx, a: LoraAdapter, x: Tensor, M: number): Tensor {
    if (!(ctx.training && a.dropout > 0)) return x;
    return ctx.acts.scratch(`${this.path}.lora.${a.name}.xd`, [M, this.nIn]);
  }

  #seed(ctx: Ctx): number {
    let h = ctx.seed ^ 0x5bd1e995;
    for (let i = 0; i < this.path.length; i++) {
      h = Math.imul(h ^ this.path.charCodeAt(i), 0x01000193);
    }
    return h >>> 0;
  }

  /** x (M,in) → y (M,out) `=`: base, plus scaling·dropout(x)·Aᵀ·Bᵀ. */
  forward(ctx: Ctx, x: Tensor, y: Tensor, M: number): void {
    this.base.forward(ctx, x, y, M);
    const a = this.#live();
    if (!a) return;
    const mm = ctx.k.matmul, batch = ctx.batch;
    const xd = this.#input(ctx, a, x, M);
    if (xd !== x) ctx.k.dropout.forward(batch, x, xd, a.dropout, this.#seed(ctx));
    const u = ctx.acts.scratch(`${this.path}.lora.${a.name}.u`, [M, a.r]);
    mm.gemm(batch, { a: xd, b: a.A.value, c: u, m: M, n: a.r, k: this.nIn, transB: true });
    mm.gemm(batch, {
      a: u,
      b: a.B.value,
      c: y,
      m: M,
      n: this.nOut,
      k: a.r,
      transB: true,
      alpha: a.scaling,
      accumulate: true,
    });
  }

  /** dy (M,out) → dx (M,in) `=`; dA, dB `+=`; base gradients `+=` when trainable. */
  backward(ctx: Ctx, x: Tensor, dy: Tensor, dx: Tensor | null, M: number): void {
    this.base.backward(ctx, x, dy, dx, M);
    const a = this.#live();
    if (!a) return;
    const mm = ctx.k.matmul, batch = ctx.batch;
    const xd = this.#input(ctx, a, x, M);
    const u = ctx.acts.scratch(`${this.path}.lora.${a.name}.u`, [M, a.r]);
    const du = ctx.acts.scratch(`${this.path}.lora.${a.name}.du`, [M, a.r]);
    if (a.B.grad) {
      mm.gemm(batch, {
        a: dy,
        b: u,
        c: a.B.grad,
        m: this.nOut,
        n: a.r,
        k: M,
        transA: true,
        alpha: a.scaling,
        accumulate: true,
      });
    }
    mm.gemm(batch, { a: dy, b: a.B.value, c: du, m: M, n: a.r, k: this.nOut, alpha: a.scaling });
    if (a.A.grad) {
      mm.gemm(batch, {
        a: du,
        b: xd,
        c: a.A.grad,
        m: a.r,
        n: this.nIn,
        k: M,
        transA: true,
        accumulate: true,
      });
    }
    if (!dx) return;
    if (xd === x) {
      mm.gemm(batch, { a: du, b: a.A.value, c: dx, m: M, n: this.nIn, k: a.r, accumulate: true });
    } else {
      const dxd = ctx.acts.scratch(`${this.path}.lora.${a.name}.dxd`, [M, this.nIn]);
      mm.gemm(batch, { a: du, b: a.A.value, c: dxd, m: M, n: this.nIn, k: a.r });
      ctx.k.dropout.backward(batch, dxd, dx, a.dropout, this.#seed(ctx));
    }
  }
}

/** Finds (or creates) the LoRA wrapper of every targeted layer. */
function targets(model: Decoder, config: LoraConfig & { target_modules: string[] }): LoRALinear[] {
  const slots = linearSlots(model, "LoRA", config.target_modules, config.layers_to_transform);
  for (const slot of slots) {
    if (!(slot.current instanceof LoRALinear) && !("weight" in slot.current)) {
      throw new TypeError(
        `Cannot apply LoRA to ${slot.path}: it is already wrapped by another method`,
      );
    }
  }
  return slots.map((slot) => {
    if (slot.current instanceof LoRALinear) return slot.current;
    const wrapper = new LoRALinear(slot.current as Linear, slot.path);
    slot.replace(wrapper);
    return wrapper;
  });
}

/**
 * LoRA applied to a model (one named adapter).
 *
 * @example
 * ```ts
 * import { GPT, gptConfig, Gpu, lora } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const model = await GPT.create(gpu, gptConfig("tiny"), { seed: 1 });
 * const inst = await lora.apply(model, lora.validate({ r: 4, lora_alpha: 16 }), 0);
 * if (inst.describe() !== "LoRA r=4 alpha=16 (scaling 4) on c_attn, 2 modules") throw new Error();
 * if (inst.trainable().length !== 4) throw new Error("A and B in each of the 2 blocks");
 * const dir = await Deno.makeTempDir();
 * await inst.save(dir); // adapter_config.json + adapter_model.safetensors, as PEFT writes them
 * await inst.load(dir);
 * await inst.merge(); // W += scaling·(B·A)ᵀ; unmerge() takes it out again
 * await inst.unmerge();
 * model.release();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class LoraInstance implements PeftInstance {
  /** `"lora"`. */
  readonly method = "lora";
  /** The configuration, its targets resolved for the model. */
  readonly config: Readonly<LoraConfig & { target_modules: string[] }>;
  /** A and B of every targeted layer. */
  readonly added: readonly Param[];
  /** The wrapped layers. */
  readonly layers: readonly LoRALinear[];
  readonly #model: Decoder;

  /** Use {@linkcode lora}.apply. */
  constructor(
    model: Decoder,
    config: LoraConfig & { target_modules: string[] },
    layers: LoRALinear[],
    added: Param[],
  ) {
    this.#model = model;
    this.config = config;
    this.layers = layers;
    this.added = added;
  }

  /** A and B of every adapted layer. */
  trainable(): Param[] {
    return this.added.slice();
  }

  /** Makes this adapter the active one on its layers. */
  activate(): void {
    for (const l of this.layers) l.active = this.config.adapter_name;
  }

  /** Turns LoRA off on its layers (the base alone). */
  disable(): void {
    for (const l of this.layers) l.active = null;
  }

  /**
   * W += scaling·B·A on every adapted layer (scaling·(B·A)ᵀ for Conv1D's (in, out) weights); the
   * adapter then adds nothing at run time.
   */
  merge(): Promise<MergeReport> {
    return this.#fold(+1);
  }

  /** W −= scaling·B·A (or its transpose): undoes {@linkcode merge}. */
  unmerge(): Promise<MergeReport> {
    return this.#fold(-1);
  }

  async #fold(sign: 1 | -1): Promise<MergeReport> {
    const name = this.config.adapter_name, gpu = this.#model.gpu, batch = gpu.batch();
    const merged: string[] = [];
    for (const l of this.layers) {
      const a = l.adapters.get(name)!;
      if ((sign > 0) === l.merged.has(name)) {
        throw new Error(
          `Cannot ${sign > 0 ? "merge" : "unmerge"} LoRA adapter "${name}" on ${l.path}: it is ${
            sign > 0 ? "already" : "not"
          } merged`,
        );
      }
      const W = l.base.weight.value, alpha = sign * a.scaling;
      this.#model.kernels.matmul.gemm(
        batch,
        l.base.fanInFanOut
          // W (in,out) += sign·scaling · Aᵀ (in,r) · Bᵀ (r,out)
          ? {
            a: a.A.value,
            b: a.B.value,
            c: W,
            m: l.nIn,
            n: l.nOut,
            k: a.r,
            transA: true,
            transB: true,
            alpha,
            accumulate: true,
          }
          // W (out,in) += sign·scaling · B (out,r) · A (r,in)
          : {
            a: a.B.value,
            b: a.A.value,
            c: W,
            m: l.nOut,
            n: l.nIn,
            k: a.r,
            alpha,
            accumulate: true,
          },
      );
      if (sign > 0) l.merged.add(name);
      else l.merged.delete(name);
      merged.push(l.base.weight.name);
    }
    await batch.submit();
    return { merged };
  }

  /** PEFT's adapter_config.json for this adapter. */
  adapterConfig(baseModel = ""): Record<string, unknown> {
    const c = this.config;
    const cfg: Record<string, unknown> = {
      alpha_pattern: {},
      base_model_name_or_path: baseModel,
      bias: "none",
      // As the layers store their weights: Conv1D (in, out) or nn.Linear (out, in).
      fan_in_fan_out: this.layers[0].base.fanInFanOut,
      inference_mode: true,
      init_lora_weights: true,
      layers_pattern: null,
      layers_to_transform: c.layers_to_transform.length > 0 ? c.layers_to_transform : null,
      lora_alpha: c.lora_alpha,
      lora_dropout: c.lora_dropout,
      modules_to_save: null,
      peft_type: "LORA",
      r: c.r,
      rank_pattern: {},
      target_modules: c.target_modules,
      task_type: "CAUSAL_LM",
      use_dora: false,
      use_rslora: c.use_rslora,
    };
    return Object.fromEntries(Object.keys(cfg).sort().map((k) => [k, cfg[k]]));
  }

  /** Writes adapter_config.json + adapter_model.safetensors in Hugging Face PEFT's layout. */
  async save(dir: string, baseModel = ""): Promise<void> {
    await Deno.mkdir(dir, { recursive: true });
    const tensors: [string, { shape: readonly number[]; data: Float32Array }][] = [];
    const ps = this.#keyed();
    const data = await this.#model.gpu.read(ps.map(([, p]) => p.value));
    ps.forEach(([key, p], i) => tensors.push([key, { shape: p.shape, data: data[i] }]));
    await writeSafetensors(`${dir}/adapter_model.safetensors`, tensors, {
      metadata: { format: "pt" },
    });
    await writeFileAtomic(
      `${dir}/adapter_config.json`,
      JSON.stringify(this.adapterConfig(baseModel), null, 2) + "\n",
    );
  }

  /** Loads A and B from a PEFT-layout folder (written here or by Python's PEFT). */
  async load(dir: string): Promise<void> {
    const file = `${dir}/adapter_model.safetensors`;
    const st = await readSafetensors(file);
    for (const [key, p] of this.#keyed()) {
      if (!st.names().includes(key)) {
        throw new Error(`Cannot load LoRA from ${file}: tensor "${key}" is missing`);
      }
      const t = st.tensor(key);
      if (t.shape.join() !== p.shape.join()) {
        throw new Error(
          `Cannot load LoRA from ${file}: tensor "${key}" has shape [${t.shape}], expected [${p.shape}]`,
        );
      }
      p.value.write(t.data);
    }
  }

  /**
   * A and B of every adapted layer with their PEFT file keys: `base_model.model.` + the module
   * path from the Hugging Face model's root + `.lora_A.weight` (the adapter name is not in the key).
   */
  #keyed(): [string, Param][] {
    const name = this.config.adapter_name;
    return this.layers.flatMap((l) => {
      const a = l.adapters.get(name)!,
        key = `base_model.model.${hfModulePath(this.#model, l.path)}`;
      return [[`${key}.lora_A.weight`, a.A], [`${key}.lora_B.weight`, a.B]] as [string, Param][];
    });
  }

  /** e.g. `LoRA r=8 alpha=16 (scaling 2) on c_attn, 4 modules`. */
  describe(): string {
    const c = this.config;
    const s = this.layers[0]?.adapters.get(c.adapter_name)?.scaling ?? 0;
    return `LoRA r=${c.r} alpha=${c.lora_alpha}${c.use_rslora ? " (rsLoRA)" : ""} (scaling ${+s
      .toFixed(4)}) on ${c.target_modules.join(", ")}, ${this.layers.length} modules`;
  }
}

/**
 * Reads a PEFT adapter_config.json into a {@linkcode LoraConfig}, with clear errors.
 *
 * @example
 * ```ts
 * import { readLoraConfig } from "../mod.ts";
 * const dir = await Deno.makeTempDir();
 * const config = {
 *   peft_type: "LORA", r: 16, lora_alpha: 32, lora_dropout: 0.05,
 *   target_modules: ["c_attn", "c_proj"], fan_in_fan_out: true,
 * };
 * await Deno.writeTextFile(`${dir}/adapter_config.json`, JSON.stringify(config));
 * const cfg = await readLoraConfig(dir);
 * if (cfg.r !== 16 || cfg.target_modules.join() !== "c_attn,c_proj") throw new Error();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function readLoraConfig(
  dir: string,
): Promise<LoraConfig & { target_modules: string[] }> {
  const file = `${dir}/adapter_config.json`;
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(await Deno.readTextFile(file));
  } catch (e) {
    throw new Error(`Cannot read ${file}: ${(e as Error).message}`, { cause: e });
  }
  if (json.peft_type !== "LORA") {
    throw new Error(
      `Cannot load ${file}: field "peft_type" is ${
        JSON.stringify(json.peft_type)
      }, expected "LORA"`,
    );
  }
  // fan_in_fan_out is not read: the layers' own layout decides, as in PEFT (see the module doc).
  let targets = json.target_modules;
  if (typeof targets === "string") targets = [targets];
  if (!Array.isArray(targets)) {
    throw new Error(`Cannot load ${file}: field "target_modules" must be a list`);
  }
  const cfg = validateAdapterConfig(dir, () =>
    lora.validate({
      r: json.r,
      lora_alpha: json.lora_alpha,
      lora_dropout: json.lora_dropout ?? 0,
      target_modules: targets,
      use_rslora: json.use_rslora ?? false,
      layers_to_transform: Array.isArray(json.layers_to_transform)
        ? json.layers_to_transform
        : typeof json.layers_to_transform === "number"
        ? [json.layers_to_transform]
        : [],
    }));
  return { ...cfg, target_modules: targets as string[] };
}

/**
 * The LoRA method.
 *
 * @example
 * ```ts
 * import { GPT, gptConfig, Gpu, Llama, llamaConfig, lora } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const model = await GPT.create(gpu, gptConfig("tiny"), { seed: 1 });
 * const config = lora.validate({ r: 4, target_modules: ["c_attn", "c_proj"] }); // PEFT's names
 * const inst = await lora.apply(model, config, 0); // freezes the base; B starts at zero
 * // c_attn and both c_proj (attention and MLP) in each of the 2 blocks; only A and B train.
 * const added = inst.trainable().reduce((n, p) => n + p.value.size, 0);
 * if (inst.layers.length !== 6 || model.countParameters().trainable !== added) throw new Error();
 * model.release();
 * // The Llama family: PEFT's default targets q_proj and v_proj, nn.Linear weights (out, in).
 * const llama = await Llama.create(gpu, llamaConfig("smollm-tiny"), { seed: 1 });
 * const li = await lora.apply(llama, lora.validate({ r: 4 }), 0);
 * if (li.layers[1].path !== "model.layers.0.self_attn.v_proj") throw new Error();
 * if (li.adapterConfig().fan_in_fan_out !== false) throw new Error("nn.Linear layout");
 * llama.release();
 * ```
 */
export const lora: PeftMethod<LoraConfig, LoraInstance> = {
  name: "lora",
  summary: "LoRA: low-rank updates scaling·B·A beside frozen linear layers; mergeable",
  defaults: DEFAULTS,
  validate(c: Record<string, unknown>): LoraConfig {
    const cfg = checkConfig("lora", DEFAULTS, c);
    if (!Number.isInteger(cfg.r) || cfg.r < 1) {
      throw new RangeError(`Cannot configure LoRA: "r" must be a positive integer, got ${cfg.r}`);
    }
    if (!(cfg.lora_alpha > 0)) {
      throw new RangeError(
        `Cannot configure LoRA: "lora_alpha" must be positive, got ${cfg.lora_alpha}`,
      );
    }
    if (!(cfg.lora_dropout >= 0 && cfg.lora_dropout < 1)) {
      throw new RangeError(
        `Cannot configure LoRA: "lora_dropout" must be in [0, 1), got ${cfg.lora_dropout}`,
      );
    }
    return { ...cfg, target_modules: checkTargets("LoRA", "target_modules", cfg.target_modules) };
  },
  async apply(model: Decoder, config: LoraConfig, seed: number): Promise<LoraInstance> {
    const valid = lora.validate(config as unknown as Record<string, unknown>);
    const cfg = {
      ...valid,
      target_modules: resolveTargets(model, "LoRA", valid.target_modules, DEFAULT_TARGETS),
    };
    freezeBase(model);
    const layers = targets(model, cfg);
    const rng = new Rng(seed);
    const added: Param[] = [];
    const scaling = cfg.use_rslora ? cfg.lora_alpha / Math.sqrt(cfg.r) : cfg.lora_alpha / cfg.r;
    for (const l of layers) {
      if (l.adapters.has(cfg.adapter_name)) {
        throw new RangeError(
          `Cannot apply LoRA: ${l.path} already has an adapter named "${cfg.adapter_name}"`,
        );
      }
      const bound = 1 / Math.sqrt(l.nIn); // kaiming_uniform_(a=√5) on (r, in): gain·√(3/in) = 1/√in
      const A = model.addParam(
        `${l.path}.lora_A.${cfg.adapter_name}.weight`,
        [cfg.r, l.nIn],
        rng.fillUniform(new Float32Array(cfg.r * l.nIn), -bound, bound) as Float32Array,
      );
      const B = model.addParam(
        `${l.path}.lora_B.${cfg.adapter_name}.weight`,
        [l.nOut, cfg.r],
        new Float32Array(l.nOut * cfg.r),
      );
      l.adapters.set(cfg.adapter_name, {
        name: cfg.adapter_name,
        A,
        B,
        r: cfg.r,
        scaling,
        dropout: cfg.lora_dropout,
      });
      l.active = cfg.adapter_name;
      added.push(A, B);
    }
    await Promise.resolve();
    return new LoraInstance(model, cfg, layers, added);
  },
};
