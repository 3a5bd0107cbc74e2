/**
 * IA³ (Liu et al., 2022) as Hugging Face PEFT implements it: learned vectors, initialised to 1,
 * that scale the output of attention targets and the input of feed-forward targets. GPT-2's
 * defaults (PEFT's `TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING`): `c_attn` — its whole
 * fused q,k,v output is scaled, a (3C) vector — and `mlp.c_proj`, a feed-forward module whose
 * (4C) input (the GELU output) is scaled. The base is frozen.
 *
 *   output scaling: y = (x·W + b) ⊙ l          dl += Σ_rows dy ⊙ (x·W + b),  d(x·W + b) = dy ⊙ l
 *   input scaling:  y = (x ⊙ l)·W + b          dl += Σ_rows d(x ⊙ l) ⊙ x,   dx = d(x ⊙ l) ⊙ l
 *
 * Merging folds l into the Conv1D weight (stored (in, out)): output scaling multiplies W's
 * columns and the bias by l; input scaling multiplies W's rows. Unmerging divides them again
 * (exact division; a zero in l cannot be unmerged and is refused).
 *
 * Files: Hugging Face PEFT's layout, `adapter_config.json` (`peft_type: "IA3"`, sorted keys) +
 * `adapter_model.safetensors` with keys `base_model.model.transformer.h.{i}.attn.c_attn.ia3_l` of
 * shape (out, 1) for attention targets and `….mlp.c_proj.ia3_l` of shape (1, in) for feed-forward
 * ones (PEFT's `IA3Layer.update_layer`; the adapter name is removed on save, and the parameter
 * lives in a ParameterDict, so the key has no `.weight`; `….ia3_l.weight` is accepted on load).
 *
 * @module
 */

import type { Ctx } from "../models/context.ts";
import type { GPT } from "../models/gpt.ts";
import type { Linear, LinearLike } from "../models/linear.ts";
import type { Param } from "../models/param.ts";
import { PeftKernels } from "../kernels/peft.ts";
import type { Tensor } from "../runtime/tensor.ts";
import {
  checkConfig,
  freezeBase,
  linearSlots,
  matchesTarget,
  type MergeReport,
  type PeftInstance,
  type PeftMethod,
} from "./method.ts";
import { readAdapterConfig, readAdapterTensor, writeAdapterFiles } from "./prompt.ts";

/** IA³ configuration (PEFT's `IA3Config` names and GPT-2 defaults). */
export interface IA3Config {
  /** Modules to scale, matched exactly or as a dotted suffix. Default `["c_attn", "mlp.c_proj"]`. */
  target_modules: string[];
  /** Targets whose input (not output) is scaled. Default `["mlp.c_proj"]`. */
  feedforward_modules: string[];
  /** Blocks to adapt (empty: all). */
  layers_to_transform: number[];
}

const DEFAULTS: IA3Config = {
  target_modules: ["c_attn", "mlp.c_proj"],
  feedforward_modules: ["mlp.c_proj"],
  layers_to_transform: [],
};

/**
 * A Conv1D layer with an IA³ scaling vector; replaces the base {@linkcode Linear} in its block.
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
  /** The configuration. */
  readonly config: Readonly<IA3Config>;
  /** The scaling vectors. */
  readonly added: readonly Param[];
  /** The wrapped layers. */
  readonly layers: readonly IA3Linear[];
  readonly #model: GPT;
  readonly #k: PeftKernels;

  /** Use {@linkcode ia3}.apply. */
  constructor(model: GPT, config: IA3Config, layers: IA3Linear[], kernels: PeftKernels) {
    this.#model = model;
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
    const batch = gpu.batch(), temps: Tensor[] = [];
    const merged: string[] = [];
    for (const l of this.layers) {
      const W = l.base.weight, b = l.base.bias, nIn = l.nIn, nOut = l.nOut;
      const w0 = gpu.tensor(W.shape, undefined, `${l.path}.ia3.merge`);
      temps.push(w0);
      batch.copy(W.value, w0);
      // W (in, out): output scaling scales its columns, input scaling its rows.
      this.#k.scale(batch, w0, l.l.value, W.value, nIn, nOut, { byRow: l.feedforward, divide });
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

  /** PEFT's adapter_config.json. */
  adapterConfig(baseModel = ""): Record<string, unknown> {
    const c = this.config;
    return {
      base_model_name_or_path: baseModel,
      fan_in_fan_out: true,
      feedforward_modules: c.feedforward_modules,
      inference_mode: true,
      init_ia3_weights: true,
      modules_to_save: null,
      peft_type: "IA3",
      target_modules: c.target_modules,
      task_type: "CAUSAL_LM",
    };
  }

  /** Writes adapter_config.json + adapter_model.safetensors in Hugging Face PEFT's layout. */
  async save(dir: string, baseModel = ""): Promise<void> {
    const data = await this.#model.gpu.read(this.added.map((p) => p.value));
    await writeAdapterFiles(
      dir,
      this.adapterConfig(baseModel),
      this.layers.map((l, i) => [peftKey(l.path), { shape: l.l.shape, data: data[i] }] as const),
    );
  }

  /** Loads the scaling vectors from a PEFT-layout folder (written here or by Python's PEFT). */
  async load(dir: string): Promise<void> {
    await readAdapterConfig(dir, "peft_type", "IA3");
    for (const l of this.layers) {
      const key = peftKey(l.path);
      l.l.value.write(await readAdapterTensor(dir, [key, key + ".weight"], l.l.shape, "IA³"));
    }
  }

  /** e.g. `IA³ on c_attn, mlp.c_proj (feed-forward: mlp.c_proj), 24 layers`. */
  describe(): string {
    const c = this.config;
    return `IA³ on ${c.target_modules.join(", ")} (feed-forward: ${
      c.feedforward_modules.join(", ") || "none"
    }), ${this.layers.length} layers`;
  }
}

/** whet's module path `h.0.attn.c_attn` → PEFT's file key. */
function peftKey(path: string): string {
  return `base_model.model.transformer.${path}.ia3_l`;
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
 * if (cfg.feedforward_modules.join() !== "mlp.c_proj") throw new Error();
 * model.release();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function readIA3Config(dir: string): Promise<IA3Config> {
  const json = await readAdapterConfig(dir, "peft_type", "IA3");
  const list = (v: unknown) => typeof v === "string" ? [v] : Array.isArray(v) ? v : [];
  return ia3.validate({
    target_modules: list(json.target_modules),
    feedforward_modules: list(json.feedforward_modules),
  });
}

/**
 * The IA³ method.
 *
 * @example
 * ```ts
 * import { GPT, gptConfig, Gpu, ia3 } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const model = await GPT.create(gpu, gptConfig("tiny"), { seed: 1 });
 * const inst = await ia3.apply(model, ia3.validate({}), 0);
 * // c_attn output (3C, 1) and mlp.c_proj input (1, 4C) in each of the 2 blocks.
 * if (inst.added.map((p) => p.shape.join("x")).join() !== "96x1,1x128,96x1,1x128") {
 *   throw new Error("IA³ shapes");
 * }
 * await inst.merge(); // folded into the weights; unmerge() divides it out again
 * model.release();
 * ```
 */
export const ia3: Omit<PeftMethod<IA3Config>, "apply"> & {
  apply(model: GPT, config: IA3Config, seed: number): Promise<IA3Instance>;
} = {
  name: "ia3",
  summary: "IA³: learned scaling of c_attn's output and the feed-forward input; mergeable",
  defaults: DEFAULTS,
  validate(c: Record<string, unknown>): IA3Config {
    const cfg = checkConfig("ia3", DEFAULTS, c);
    if (cfg.target_modules.length === 0) {
      throw new RangeError(`Cannot configure IA³: "target_modules" is empty`);
    }
    for (const f of cfg.feedforward_modules) {
      if (!cfg.target_modules.some((t) => matchesTarget(f, [t]) || matchesTarget(t, [f]))) {
        throw new RangeError(
          `Cannot configure IA³: feedforward module "${f}" is not among target_modules ${
            JSON.stringify(cfg.target_modules)
          }`,
        );
      }
    }
    return cfg;
  },
  async apply(model: GPT, config: IA3Config, _seed: number): Promise<IA3Instance> {
    const cfg = ia3.validate(config as unknown as Record<string, unknown>);
    const k = await PeftKernels.create(model.gpu);
    // Find every target first, so a refusal leaves the model untouched.
    const found = linearSlots(model, "IA³", cfg.target_modules, cfg.layers_to_transform);
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
      const ff = matchesTarget(path, cfg.feedforward_modules);
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
    return new IA3Instance(model, cfg, layers, k);
  },
};
