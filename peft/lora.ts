/**
 * LoRA (Hu et al., 2021) and DoRA (Liu et al., 2024) as Hugging Face PEFT implements them. Each
 * targeted linear layer gets `y = base(x) + scaling · dropout(x)·Aᵀ·Bᵀ`, A (r, in) initialised
 * kaiming-uniform (a = √5, i.e. U(−1/√in, 1/√in)) and B (out, r) at zero, so the model is
 * unchanged until trained; scaling is `lora_alpha / r` (rsLoRA: `lora_alpha / √r`), with r and
 * alpha per module from `rank_pattern` / `alpha_pattern`. Merging adds `scaling·B·A` to an
 * `nn.Linear` weight stored (out, in) (the Llama family), or `scaling·(B·A)ᵀ` to a Conv1D weight
 * stored (in, out) (GPT-2: PEFT's `fan_in_fan_out`); unmerging subtracts it. Several named
 * adapters can live on one base; one is active at a time, or none (disabled).
 *
 * DoRA (`use_dora`): a trained magnitude m (out), initialised to the row norms of W + s·B·A, and
 * `y = b + (m/n)⊙(x·Vᵀ + s·xd·Aᵀ·Bᵀ)` with V the weight as (out, in) and n = ‖V + s·B·A‖ per
 * output, recomputed every forward and treated as a constant by the backward (PEFT detaches it).
 * As in PEFT's `DoraLinearVariant.forward`, without dropout the base layer's result is reused
 * (its bias taken off), and with dropout the base product is recomputed on the dropped-out input
 * and added as `(m/n − 1)·xd·Vᵀ` beside the undropped base result. Merging writes
 * `W ← (m/n)⊙(W + s·B·A)` with n of that sum, kept for the unmerge (kernels/dora.ts).
 *
 * Which layers, which biases train and which modules are saved whole follow the config's PEFT
 * fields (peft/lora_config.ts lists every field and what happens to it).
 *
 * Files: Hugging Face PEFT's layout (peft/files.ts), keys as `get_peft_model_state_dict` writes
 * them: `base_model.model.` + the module path from the root of the Hugging Face model +
 * `.lora_A.weight` (r, in) / `.lora_B.weight` (out, r) / `.lora_magnitude_vector` (out) (DoRA);
 * biases under their module path (`….c_attn.base_layer.bias` for an adapted layer, whose base
 * PEFT wraps as `base_layer`); `modules_to_save` copies under the module's own path
 * (`base_model.model.transformer.ln_f.weight`: PEFT keeps them as `….ln_f.modules_to_save.default.
 * weight` in memory and saves them without the wrapper's part). `fan_in_fan_out` is written as
 * the layers store their weights; a file's other value is corrected with a warning, as PEFT does.
 *
 * @module
 */

import type { Ctx } from "../models/context.ts";
import type { Decoder } from "../models/decoder.ts";
import type { Linear, LinearLike } from "../models/linear.ts";
import { type Param, requireF32 } from "../models/param.ts";
import { DoraKernels } from "../kernels/dora.ts";
import { PeftKernels } from "../kernels/peft.ts";
import { Rng } from "../runtime/rng.ts";
import type { Tensor } from "../runtime/tensor.ts";
import {
  AdapterConfigFile,
  type AdapterWeights,
  readAdapterConfigFile,
  readAdapterWeights,
  writeAdapterFiles,
} from "./files.ts";
import {
  isValidatedLoraConfig,
  LORA_DEFAULTS,
  type LoraConfig,
  loraConfigFromFile,
  loraPatternKey,
  peftLoraJson,
  selectLoraSlots,
  validateLoraConfig,
} from "./lora_config.ts";
import {
  freezeBase,
  hfModulePath,
  type MergeReport,
  type PeftContext,
  type PeftInstance,
  type PeftMethod,
  resolveTargets,
} from "./method.ts";

export type { LoraBias, LoraConfig, LoraInit } from "./lora_config.ts";

/** PEFT's `TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING` for the families whet has. */
const DEFAULT_TARGETS: Readonly<Record<string, readonly string[]>> = {
  gpt2: ["c_attn"],
  llama: ["q_proj", "v_proj"],
  qwen2: ["q_proj", "v_proj"],
};

/** DoRA's per-layer state: the magnitude and the kernels' per-output vectors. */
export interface DoraState {
  /** The trained magnitude m (out): PEFT's `lora_magnitude_vector`. */
  magnitude: Param;
  /** n (out): ‖V + s·B·A‖ per output, written by every forward. */
  norm: Tensor;
  /** g = m / n (out). */
  scale: Tensor;
  /** g − 1 (out). */
  scaleMinus1: Tensor;
  /** g at merge time, kept for the unmerge (PEFT caches the weight norm). */
  mergedScale: Tensor;
  /** The kernels. */
  kernels: { dora: DoraKernels; peft: PeftKernels };
}

/** One named adapter of a {@linkcode LoRALinear}. */
export interface LoraAdapter {
  /** Adapter name. */
  name: string;
  /** A (r, in). */
  A: Param;
  /** B (out, r). */
  B: Param;
  /** Rank (the config's r, or its rank_pattern entry). */
  r: number;
  /** alpha/r (or alpha/√r), alpha from alpha_pattern where it matches. */
  scaling: number;
  /** Dropout on the branch input. */
  dropout: number;
  /** DoRA's state, or null for plain LoRA. */
  dora: DoraState | null;
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

  #scratch(ctx: Ctx, a: LoraAdapter, what: string, shape: number[]): Tensor {
    return ctx.acts.scratch(`${this.path}.lora.${a.name}.${what}`, shape);
  }

  #input(ctx: Ctx, a: LoraAdapter, x: Tensor, M: number): Tensor {
    if (!(ctx.training && a.dropout > 0)) return x;
    return this.#scratch(ctx, a, "xd", [M, this.nIn]);
  }

  #seed(ctx: Ctx): number {
    let h = ctx.seed ^ 0x5bd1e995;
    for (let i = 0; i < this.path.length; i++) {
      h = Math.imul(h ^ this.path.charCodeAt(i), 0x01000193);
    }
    return h >>> 0;
  }

  #shape(a: LoraAdapter) {
    return { nOut: this.nOut, nIn: this.nIn, r: a.r, fanInFanOut: this.base.fanInFanOut };
  }

  /** x (M,in) → y (M,out) `=`: base, plus scaling·dropout(x)·Aᵀ·Bᵀ (DoRA: see the module doc). */
  forward(ctx: Ctx, x: Tensor, y: Tensor, M: number): void {
    this.base.forward(ctx, x, y, M);
    const a = this.#live();
    if (!a) return;
    const mm = ctx.k.matmul, batch = ctx.batch;
    const xd = this.#input(ctx, a, x, M);
    if (xd !== x) ctx.k.dropout.forward(batch, x, xd, a.dropout, this.#seed(ctx));
    const u = this.#scratch(ctx, a, "u", [M, a.r]);
    mm.gemm(batch, { a: xd, b: a.A.value, c: u, m: M, n: a.r, k: this.nIn, transB: true });
    if (!a.dora) {
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
      return;
    }
    // DoRA: n, g = m/n from W, A, B; ls = s·u·Bᵀ; y += (g − 1)·z + g·ls, h = (z + ls)/n.
    const d = a.dora, N = this.nOut, W = this.base.weight.value;
    d.kernels.dora.norm(
      batch,
      {
        W,
        A: a.A.value,
        B: a.B.value,
        m: d.magnitude.value,
        n: d.norm,
        g: d.scale,
        gm1: d.scaleMinus1,
      },
      a.scaling,
      this.#shape(a),
    );
    const ls = this.#scratch(ctx, a, "ls", [M, N]), h = this.#scratch(ctx, a, "h", [M, N]);
    mm.gemm(batch, {
      a: u,
      b: a.B.value,
      c: ls,
      m: M,
      n: N,
      k: a.r,
      transB: true,
      alpha: a.scaling,
    });
    let zin: Tensor | null = null;
    if (xd !== x) {
      // PEFT recomputes the base product on the dropped-out input (no bias) when dropout is on.
      zin = this.#scratch(ctx, a, "z", [M, N]);
      mm.linearForward(batch, xd, W, null, zin, M, this.nIn, N, !this.base.fanInFanOut);
    }
    const bias = zin ? null : this.base.bias?.value ?? null;
    d.kernels.dora.combine(batch, { y, zin, bias, ls, g: d.scale, n: d.norm, h }, M, N);
  }

  /** dy (M,out) → dx (M,in) `=`; dA, dB (and DoRA's dm) `+=`; base gradients `+=` when trainable. */
  backward(ctx: Ctx, x: Tensor, dy: Tensor, dx: Tensor | null, M: number): void {
    const a = this.#live();
    if (a?.dora) return this.#doraBackward(ctx, a, a.dora, x, dy, dx, M);
    this.base.backward(ctx, x, dy, dx, M);
    if (!a) return;
    const mm = ctx.k.matmul, batch = ctx.batch;
    const xd = this.#input(ctx, a, x, M);
    const u = this.#scratch(ctx, a, "u", [M, a.r]);
    const du = this.#scratch(ctx, a, "du", [M, a.r]);
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
    this.#branchInput(ctx, a, x, xd, du, dx, M, null);
  }

  /** dA += duᵀ·xd; dx += du·A (through the dropout's mask when xd ≠ x; `dxd` already holds = terms). */
  #branchInput(
    ctx: Ctx,
    a: LoraAdapter,
    x: Tensor,
    xd: Tensor,
    du: Tensor,
    dx: Tensor | null,
    M: number,
    dxd: Tensor | null,
  ): void {
    const mm = ctx.k.matmul, batch = ctx.batch;
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
      return;
    }
    const target = dxd ?? this.#scratch(ctx, a, "dxd", [M, this.nIn]);
    mm.gemm(batch, {
      a: du,
      b: a.A.value,
      c: target,
      m: M,
      n: this.nIn,
      k: a.r,
      accumulate: dxd !== null,
    });
    ctx.k.dropout.backward(batch, target, dx, a.dropout, this.#seed(ctx));
  }

  /**
   * DoRA's backward, n a constant (PEFT detaches it), g = m/n, h = (z + ls)/n from the forward:
   * dm += Σ_rows dy⊙h; dB += s·(dy⊙g)ᵀ·u; du = s·(dy⊙g)·B; dA += duᵀ·xd. Without dropout the
   * base path carries dy⊙g (dx = (dy⊙g)·V, dW += (dy⊙g)ᵀ·x) and the bias dy; with dropout the base
   * layer takes dy and the recomputed (g − 1)·xd·Vᵀ term takes dy⊙(g − 1) through the mask.
   */
  #doraBackward(
    ctx: Ctx,
    a: LoraAdapter,
    d: DoraState,
    x: Tensor,
    dy: Tensor,
    dx: Tensor | null,
    M: number,
  ): void {
    const mm = ctx.k.matmul, batch = ctx.batch, peft = d.kernels.peft;
    const N = this.nOut, K = this.nIn, W = this.base.weight.value, outIn = !this.base.fanInFanOut;
    const xd = this.#input(ctx, a, x, M);
    const u = this.#scratch(ctx, a, "u", [M, a.r]), du = this.#scratch(ctx, a, "du", [M, a.r]);
    const h = this.#scratch(ctx, a, "h", [M, N]), dyg = this.#scratch(ctx, a, "dyg", [M, N]);
    peft.scale(batch, dy, d.scale, dyg, M, N);
    if (d.magnitude.grad) peft.scaleGrad(batch, dy, h, d.magnitude.grad, M, N);
    if (a.B.grad) {
      mm.gemm(batch, {
        a: dyg,
        b: u,
        c: a.B.grad,
        m: N,
        n: a.r,
        k: M,
        transA: true,
        alpha: a.scaling,
        accumulate: true,
      });
    }
    mm.gemm(batch, { a: dyg, b: a.B.value, c: du, m: M, n: a.r, k: N, alpha: a.scaling });
    const dW = this.base.weight.grad, dBias = this.base.bias?.grad ?? null;
    if (xd === x) {
      mm.linearBackward(batch, { x, W, outIn, dy: dyg, dx, dW }, M, K, N);
      if (dBias) mm.linearBackward(batch, { x, W, outIn, dy, dx: null, dW: null, dBias }, M, K, N);
      this.#branchInput(ctx, a, x, xd, du, dx, M, null);
      return;
    }
    this.base.backward(ctx, x, dy, dx, M);
    const dyz = this.#scratch(ctx, a, "dyz", [M, N]);
    peft.scale(batch, dy, d.scaleMinus1, dyz, M, N);
    const dxd = dx ? this.#scratch(ctx, a, "dxd", [M, K]) : null;
    mm.linearBackward(batch, { x: xd, W, outIn, dy: dyz, dx: dxd, dW }, M, K, N);
    this.#branchInput(ctx, a, x, xd, du, dx, M, dxd);
  }
}

/** A module saved whole (PEFT's `modules_to_save`): its parameters, trained in place, and the originals. */
export interface SavedModule {
  /** Module path from the Hugging Face model's root (e.g. `transformer.ln_f`). */
  path: string;
  /** Its parameters (trainable while the adapter is active) with the base values kept aside. */
  params: { param: Param; original: Tensor }[];
}

/** The resolved, validated configuration of an applied adapter. */
export type AppliedLoraConfig = LoraConfig & { target_modules: string[] | string };

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
  /** The configuration, its targets resolved for the model (a list, or the regex string). */
  readonly config: Readonly<AppliedLoraConfig>;
  /** A, B (and DoRA's magnitude) of every targeted layer. */
  readonly added: readonly Param[];
  /** The wrapped layers. */
  readonly layers: readonly LoRALinear[];
  /** Base biases made trainable by `bias` ("all" or "lora_only"). */
  readonly biases: readonly Param[];
  /** Modules saved whole (`modules_to_save`). */
  readonly saved: readonly SavedModule[];
  readonly #model: Decoder;
  readonly #baseModel: string;
  #savedActive = true;

  /** Use {@linkcode lora}.apply. */
  constructor(
    model: Decoder,
    config: AppliedLoraConfig,
    layers: LoRALinear[],
    added: Param[],
    biases: Param[] = [],
    saved: SavedModule[] = [],
    baseModel = "",
  ) {
    this.#model = model;
    this.#baseModel = baseModel;
    this.config = config;
    this.layers = layers;
    this.added = added;
    this.biases = biases;
    this.saved = saved;
  }

  /** A, B (and m) of every adapted layer, the biases `bias` trains, the `modules_to_save` copies. */
  trainable(): Param[] {
    return [
      ...this.added,
      ...this.biases,
      ...this.saved.flatMap((m) => m.params.map((p) => p.param)),
    ];
  }

  /** Makes this adapter the active one on its layers (and its `modules_to_save` copies). */
  activate(): void {
    for (const l of this.layers) l.active = this.config.adapter_name;
    this.#useCopies(true);
  }

  /**
   * Turns LoRA off on its layers (the base alone; `modules_to_save` back to the originals, as
   * PEFT's disabled adapter does; biases trained by `bias` stay as trained, as in PEFT).
   */
  disable(): void {
    for (const l of this.layers) l.active = null;
    this.#useCopies(false);
  }

  #useCopies(on: boolean): void {
    if (on === this.#savedActive) return;
    for (const m of this.saved) {
      for (const s of m.params) [s.param.value, s.original] = [s.original, s.param.value];
    }
    this.#savedActive = on;
  }

  /**
   * W += scaling·B·A on every adapted layer (scaling·(B·A)ᵀ for Conv1D's (in, out) weights); DoRA:
   * W ← (m/n)⊙(W + scaling·B·A). The adapter then adds nothing at run time.
   */
  merge(): Promise<MergeReport> {
    return this.#fold(+1);
  }

  /** Undoes {@linkcode merge}. */
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
      // A half base (baseDtype) would round W + s·B·A to its grid: refused, naming the weight.
      requireF32(
        l.base.weight,
        `${sign > 0 ? "merge" : "unmerge"} LoRA adapter "${name}" ${
          sign > 0 ? "into" : "from"
        } "${l.base.weight.name}"`,
      );
      const W = l.base.weight.value, alpha = sign * a.scaling, d = a.dora;
      const shape = { nOut: l.nOut, nIn: l.nIn, r: a.r, fanInFanOut: l.base.fanInFanOut };
      if (d && sign > 0) {
        d.kernels.dora.norm(
          batch,
          {
            W,
            A: a.A.value,
            B: a.B.value,
            m: d.magnitude.value,
            n: d.norm,
            g: d.scale,
            gm1: d.scaleMinus1,
          },
          a.scaling,
          shape,
        );
        batch.copy(d.scale, d.mergedScale);
      }
      if (d && sign < 0) d.kernels.dora.rescale(batch, W, d.mergedScale, shape, true);
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
      if (d && sign > 0) d.kernels.dora.rescale(batch, W, d.mergedScale, shape);
      if (sign > 0) l.merged.add(name);
      else l.merged.delete(name);
      merged.push(l.base.weight.name);
    }
    await batch.submit();
    return { merged };
  }

  /**
   * The adapter_config.json for this adapter: PEFT's long-standing keys (see `peftLoraJson`);
   * `base_model_name_or_path` is `baseModel`, else the context's at apply time.
   */
  adapterConfig(baseModel: string = this.#baseModel): Record<string, unknown> {
    return peftLoraJson(
      this.config,
      this.config.target_modules,
      this.layers[0].base.fanInFanOut,
      baseModel,
    );
  }

  /** Writes adapter_config.json + adapter_model.safetensors in Hugging Face PEFT's layout. */
  async save(dir: string, baseModel: string = this.#baseModel): Promise<void> {
    const keyed = this.#keyed();
    const data = await this.#model.gpu.read(keyed.map(([, p]) => p.value));
    await writeAdapterFiles(
      dir,
      this.adapterConfig(baseModel),
      keyed.map(([key, p], i) => [key, { shape: p.shape, data: data[i] }] as const),
    );
  }

  /**
   * Loads the adapter's tensors from a PEFT-layout folder (written here or by Python's PEFT).
   * Biases a `bias` setting trains but the file lacks keep the base model's values (PEFT before
   * the `base_layer.bias` fix wrote none for `lora_only`), with a warning; tensors of the file
   * that this adapter has no place for are named in a warning.
   */
  async load(dir: string, warn: (message: string) => void = console.warn): Promise<void> {
    const w = await readAdapterWeights(dir);
    const used = new Set<string>(), missing: string[] = [];
    const writes: [Param, Float32Array][] = [];
    for (const [key, p, alt] of this.#keyed(true)) {
      const keys = alt ? [key, alt] : [key];
      const found = keys.find((k) => w.names().includes(k));
      if (found === undefined && this.biases.includes(p)) {
        missing.push(key);
        continue;
      }
      writes.push([p, readInto(w, keys, p)]);
      used.add(found!);
    }
    for (const [p, data] of writes) p.value.write(data);
    if (missing.length > 0) {
      warn(
        `warning: ${w.file}: no ${missing.length} of the biases bias="${this.config.bias}" trains (e.g. "${
          missing[0]
        }"); they keep the base model's values`,
      );
    }
    const extra = w.names().filter((k) => !used.has(k));
    if (extra.length > 0) {
      warn(
        `warning: ${w.file}: ignoring ${extra.length} tensor${
          extra.length > 1 ? "s" : ""
        } this LoRA config has no place for: ${extra.slice(0, 4).map((k) => `"${k}"`).join(", ")}${
          extra.length > 4 ? ", …" : ""
        }`,
      );
    }
    await this.#model.gpu.sync();
  }

  /**
   * Every saved tensor with its PEFT file key (`get_peft_model_state_dict`'s names; the adapter
   * name is not in the key) and, with `alternatives`, a second accepted key (a bias of an
   * adapted layer under its plain module path).
   */
  #keyed(alternatives = false): [string, Param, string?][] {
    const name = this.config.adapter_name, model = this.#model;
    const out = new Map<string, [string, Param, string?]>();
    const put = (key: string, p: Param, alt?: string) => {
      if (!out.has(key)) out.set(key, alternatives && alt ? [key, p, alt] : [key, p]);
    };
    const adapted = new Map(this.layers.map((l) => [l.base.bias, l] as const));
    for (const l of this.layers) {
      const a = l.adapters.get(name)!, key = `base_model.model.${hfModulePath(model, l.path)}`;
      put(`${key}.lora_A.weight`, a.A);
      put(`${key}.lora_B.weight`, a.B);
      if (a.dora) put(`${key}.lora_magnitude_vector`, a.dora.magnitude);
    }
    for (const p of this.biases) {
      const l = adapted.get(p);
      const plain = `base_model.model.${hfModulePath(model, p.name)}`;
      if (l) put(`base_model.model.${hfModulePath(model, l.path)}.base_layer.bias`, p, plain);
      else put(plain, p);
    }
    for (const m of this.saved) {
      for (const { param } of m.params) {
        put(`base_model.model.${hfModulePath(model, param.name)}`, param);
      }
    }
    return [...out.values()];
  }

  /** e.g. `LoRA r=8 alpha=16 (scaling 2) on c_attn, 4 modules`. */
  describe(): string {
    const c = this.config;
    const s = this.layers[0]?.adapters.get(c.adapter_name)?.scaling ?? 0;
    const targets = typeof c.target_modules === "string"
      ? JSON.stringify(c.target_modules)
      : c.target_modules.join(", ");
    const extras = [
      c.use_dora ? "DoRA" : "",
      Object.keys(c.rank_pattern).length + Object.keys(c.alpha_pattern).length > 0
        ? "per-module r/alpha"
        : "",
      c.bias !== "none" ? `bias ${c.bias}` : "",
      this.saved.length > 0 ? `saving ${this.saved.map((m) => m.path).join(", ")}` : "",
    ].filter((e) => e !== "");
    return `${c.use_dora ? "DoRA" : "LoRA"} r=${c.r} alpha=${c.lora_alpha}${
      c.use_rslora ? " (rsLoRA)" : ""
    } (scaling ${+s.toFixed(4)}) on ${targets}, ${this.layers.length} modules${
      extras.length > (c.use_dora ? 1 : 0)
        ? ` (${extras.filter((e) => e !== "DoRA").join("; ")})`
        : ""
    }`;
  }
}

function readInto(w: AdapterWeights, keys: string[], p: Param): Float32Array {
  return w.tensor(keys, p.shape, "LoRA");
}

/** Options of {@linkcode readLoraConfig} and {@linkcode loadLora}. */
export interface LoraLoadOptions {
  /** Where warnings go (unknown fields, corrected `fan_in_fan_out`, missing biases). Default console.warn. */
  warn?: (message: string) => void;
}

/**
 * Reads a PEFT adapter_config.json into a validated {@linkcode LoraConfig}: refused fields and
 * bad settings are errors naming the file and the field, unknown fields a warning naming them.
 *
 * @example
 * ```ts
 * import { readLoraConfig } from "../mod.ts";
 * const dir = await Deno.makeTempDir();
 * const config = {
 *   peft_type: "LORA", r: 16, lora_alpha: 32, lora_dropout: 0.05,
 *   target_modules: ["c_attn", "c_proj"], fan_in_fan_out: true, use_dora: true,
 * };
 * await Deno.writeTextFile(`${dir}/adapter_config.json`, JSON.stringify(config));
 * const cfg = await readLoraConfig(dir);
 * if (cfg.r !== 16 || !cfg.use_dora || String(cfg.target_modules) !== "c_attn,c_proj") throw new Error();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function readLoraConfig(
  dir: string,
  options: LoraLoadOptions = {},
): Promise<LoraConfig> {
  const file = await readAdapterConfigFile(dir);
  return loraConfigFromFile(file, options.warn ?? console.warn).config;
}

/**
 * Applies the LoRA adapter of a PEFT-layout folder (its path, or its adapter_config.json already
 * read by peft/files.ts) to `model` and loads its tensors: the config is read and validated once;
 * `fan_in_fan_out` is corrected to the layers' layout with a warning, as PEFT does. The
 * registry's {@linkcode loadAdapter} calls this through `lora.load`.
 *
 * @example
 * ```ts
 * import { GPT, gptConfig, Gpu, loadLora, lora } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const model = await GPT.create(gpu, gptConfig("tiny"), { seed: 1 });
 * const dir = await Deno.makeTempDir();
 * await (await lora.apply(model, lora.validate({ r: 2, use_dora: true }), 0)).save(dir);
 * const other = await GPT.create(gpu, gptConfig("tiny"), { seed: 1 });
 * const inst = await loadLora(other, dir);
 * if (inst.describe() !== "DoRA r=2 alpha=8 (scaling 4) on c_attn, 2 modules") {
 *   throw new Error(inst.describe());
 * }
 * model.release();
 * other.release();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function loadLora(
  model: Decoder,
  dir: string | AdapterConfigFile,
  options: LoraLoadOptions & { baseModel?: string } = {},
): Promise<LoraInstance> {
  const warn = options.warn ?? console.warn;
  const file = dir instanceof AdapterConfigFile ? dir : await readAdapterConfigFile(dir);
  const { config, notes } = loraConfigFromFile(file, warn);
  const named = file.get("base_model_name_or_path");
  const baseModel = typeof named === "string" && named !== "" ? named : options.baseModel;
  const inst = await lora.apply(model, config, 0, { warn, baseModel });
  const layout = inst.layers[0].base.fanInFanOut;
  if (notes.fanInFanOut !== null && notes.fanInFanOut !== layout) {
    warn(
      `warning: ${file.file}: fan_in_fan_out is ${notes.fanInFanOut} but the target layers are ${
        layout ? "Conv1D (weights stored (in, out))" : "nn.Linear (weights stored (out, in))"
      }; using ${layout}, as PEFT does`,
    );
  }
  await inst.load(file.dir, warn);
  return inst;
}

/** Finds (or creates) the LoRA wrapper of every selected layer. */
function wrap(slots: ReturnType<typeof selectLoraSlots>): LoRALinear[] {
  return slots.map((slot) => {
    if (slot.current instanceof LoRALinear) return slot.current;
    const wrapper = new LoRALinear(slot.current as Linear, slot.path);
    slot.replace(wrapper);
    return wrapper;
  });
}

/**
 * The leaf modules `modules_to_save` names (PEFT: a module path ending with the name), as whet
 * parameter groups; refuses names that match nothing, a container, an adapted layer, or an
 * embedding / head tied to the other (a separate copy would untie them).
 */
function modulesToSave(
  model: Decoder,
  names: string[],
  adapted: Set<string>,
): Map<string, Param[]> {
  const groups = new Map<string, Param[]>();
  for (const p of model.params.values()) {
    const path = hfModulePath(model, p.name.slice(0, p.name.lastIndexOf(".")));
    groups.set(path, [...groups.get(path) ?? [], p]);
  }
  const containers = new Set<string>();
  for (const path of groups.keys()) {
    const parts = path.split(".");
    for (let i = 1; i < parts.length; i++) containers.add(parts.slice(0, i).join("."));
  }
  const tied = model.head.weight === model.wte;
  const out = new Map<string, Param[]>();
  for (const name of names) {
    // PEFT's _set_trainable: every module whose path ends with the name.
    const container = [...containers].find((path) => path.endsWith(name) && !groups.has(path));
    const leaves = [...groups.keys()].filter((path) => path.endsWith(name));
    const headOrEmbedding = name.endsWith("lm_head") ||
      leaves.some((path) => groups.get(path)!.includes(model.wte));
    if (tied && headOrEmbedding) {
      throw new RangeError(
        `Cannot apply LoRA: modules_to_save "${name}" is the embedding or head, which this model ties together; PEFT's separate copy would untie them, which whet's decoder does not do`,
      );
    }
    if (container !== undefined) {
      throw new RangeError(
        `Cannot apply LoRA: modules_to_save "${name}" matches ${container}, a container module; whet saves single layers (name them, e.g. ln_f, ln_1)`,
      );
    }
    if (leaves.length === 0) {
      throw new RangeError(
        `Cannot apply LoRA: modules_to_save "${name}" matches no module of the model`,
      );
    }
    for (const path of leaves) {
      if (adapted.has(path)) {
        throw new RangeError(
          `Cannot apply LoRA: modules_to_save "${name}" matches ${path}, which LoRA also adapts`,
        );
      }
      out.set(path, groups.get(path)!);
    }
  }
  return out;
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
  summary: "LoRA (and DoRA): low-rank updates scaling·B·A beside frozen linear layers; mergeable",
  defaults: LORA_DEFAULTS,
  peftType: "LORA",
  validate(c: Record<string, unknown>): LoraConfig {
    return validateLoraConfig(c);
  },
  load(
    model: Decoder,
    config: AdapterConfigFile,
    context: PeftContext = {},
  ): Promise<LoraInstance> {
    return loadLora(model, config, { warn: context.warn, baseModel: context.baseModel });
  },
  async apply(
    model: Decoder,
    config: LoraConfig,
    seed: number,
    context: PeftContext = {},
  ): Promise<LoraInstance> {
    const valid = isValidatedLoraConfig(config)
      ? config
      : validateLoraConfig(config as unknown as Record<string, unknown>);
    const targets = typeof valid.target_modules === "string"
      ? valid.target_modules
      : resolveTargets(model, "LoRA", valid.target_modules, DEFAULT_TARGETS);
    const cfg: AppliedLoraConfig = { ...valid, target_modules: targets };
    // Everything that can refuse runs before the model is touched.
    const slots = selectLoraSlots(
      model,
      targets,
      cfg.exclude_modules,
      cfg.layers_to_transform,
      cfg.layers_pattern,
    );
    for (const slot of slots) {
      if (!(slot.current instanceof LoRALinear) && !("weight" in slot.current)) {
        throw new TypeError(
          `Cannot apply LoRA to ${slot.path}: it is already wrapped by another method`,
        );
      }
      const cur = slot.current as LoRALinear | Linear;
      if (cur instanceof LoRALinear && cur.adapters.has(cfg.adapter_name)) {
        throw new RangeError(
          `Cannot apply LoRA: ${slot.path} already has an adapter named "${cfg.adapter_name}"`,
        );
      }
      const base = cur instanceof LoRALinear ? cur.base : cur;
      if (cfg.use_dora && base.weight.value.dtype !== "f32") {
        throw new RangeError(
          `Cannot apply DoRA to ${slot.path}: its weight is stored in ${base.weight.value.dtype}; DoRA's norm reads an f32 weight`,
        );
      }
    }
    const adaptedPaths = new Set(slots.map((s) => hfModulePath(model, s.path)));
    const saveGroups = modulesToSave(model, cfg.modules_to_save ?? [], adaptedPaths);
    const kernels = cfg.use_dora
      ? { dora: await DoraKernels.create(model.gpu), peft: await PeftKernels.create(model.gpu) }
      : null;

    freezeBase(model);
    const layers = wrap(slots);
    const rng = new Rng(seed);
    const added: Param[] = [];
    const gpu = model.gpu, batch = gpu.batch();
    for (const l of layers) {
      const hf = hfModulePath(model, l.path);
      const rk = loraPatternKey(cfg.rank_pattern, hf), ak = loraPatternKey(cfg.alpha_pattern, hf);
      const r = rk === undefined ? cfg.r : cfg.rank_pattern[rk];
      const alpha = ak === undefined ? cfg.lora_alpha : cfg.alpha_pattern[ak];
      const scaling = cfg.use_rslora ? alpha / Math.sqrt(r) : alpha / r;
      const [aInit, bInit] = initAB(cfg.init_lora_weights, rng, r, l.nIn, l.nOut);
      const A = model.addParam(`${l.path}.lora_A.${cfg.adapter_name}.weight`, [r, l.nIn], aInit);
      const B = model.addParam(`${l.path}.lora_B.${cfg.adapter_name}.weight`, [l.nOut, r], bInit);
      added.push(A, B);
      let dora: DoraState | null = null;
      if (kernels) {
        const N = l.nOut;
        const magnitude = model.addParam(
          `${l.path}.lora_magnitude_vector.${cfg.adapter_name}.weight`,
          [N],
          new Float32Array(N),
        );
        const vec = (what: string) => gpu.tensor([N], undefined, `${l.path}.dora.${what}`);
        dora = {
          magnitude,
          norm: vec("norm"),
          scale: vec("scale"),
          scaleMinus1: vec("scale_minus_1"),
          mergedScale: vec("merged_scale"),
          kernels,
        };
        // m starts as ‖W + s·B·A‖ per output (PEFT's update_layer), so g = 1 and DoRA starts as LoRA.
        magnitude.value.write(new Float32Array(N).fill(1));
        kernels.dora.norm(
          batch,
          {
            W: l.base.weight.value,
            A: A.value,
            B: B.value,
            m: magnitude.value,
            n: dora.norm,
            g: dora.scale,
            gm1: dora.scaleMinus1,
          },
          scaling,
          { nOut: N, nIn: l.nIn, r, fanInFanOut: l.base.fanInFanOut },
        );
        batch.copy(dora.norm, magnitude.value);
        added.push(magnitude);
      }
      l.adapters.set(cfg.adapter_name, {
        name: cfg.adapter_name,
        A,
        B,
        r,
        scaling,
        dropout: cfg.lora_dropout,
        dora,
      });
      l.active = cfg.adapter_name;
    }
    await batch.submit();
    const biases = trainBiases(model, cfg, layers);
    const saved: SavedModule[] = [];
    for (const [path, params] of saveGroups) {
      const copies = params.map((param) => {
        const original = gpu.tensor(param.shape, undefined, `${param.name}.original`);
        return { param, original };
      });
      const b = gpu.batch();
      for (const c of copies) b.copy(c.param.value, c.original);
      await b.submit();
      for (const { param } of copies) model.setTrainable(param, true);
      saved.push({ path, params: copies });
    }
    return new LoraInstance(model, cfg, layers, added, biases, saved, context.baseModel ?? "");
  },
};

/** A and B initial values per PEFT's `reset_lora_parameters`. */
function initAB(
  init: LoraConfig["init_lora_weights"],
  rng: Rng,
  r: number,
  nIn: number,
  nOut: number,
) {
  const A = new Float32Array(r * nIn), B = new Float32Array(nOut * r);
  if (init === "gaussian") {
    rng.fillNormal(A, 1 / r); // nn.init.normal_(A, std=1/r)
  } else {
    const bound = 1 / Math.sqrt(nIn); // kaiming_uniform_(a=√5) on (r, in): gain·√(3/in) = 1/√in
    rng.fillUniform(A, -bound, bound);
    // init_lora_weights=false leaves B as nn.Linear(r, out) initialises it: U(−1/√r, 1/√r).
    if (init === false) rng.fillUniform(B, -1 / Math.sqrt(r), 1 / Math.sqrt(r));
  }
  return [A, B] as const;
}

/** Makes the biases `bias` names trainable: every bias of the model ("all"), or the adapted layers' ("lora_only"). */
function trainBiases(model: Decoder, cfg: LoraConfig, layers: LoRALinear[]): Param[] {
  const out = cfg.bias === "all"
    // PEFT: every parameter with "bias" in its name.
    ? [...model.params.values()].filter((p) => p.name.includes("bias"))
    : cfg.bias === "lora_only"
    ? layers.flatMap((l) => l.base.bias ? [l.base.bias] : [])
    : [];
  for (const p of out) model.setTrainable(p, true);
  return out;
}
