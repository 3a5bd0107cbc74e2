/**
 * AdamW over a model's trainable parameters, with global gradient-norm clipping computed on the GPU
 * (no readback per step). State (m, v) exists only for trainable parameters.
 *
 * @module
 */

import { AdamW as AdamWKernel } from "../kernels/adamw.ts";
import { GradNorm } from "../kernels/gradnorm.ts";
import type { Param } from "../models/param.ts";
import type { Batch, Gpu } from "../runtime/gpu.ts";
import type { Tensor } from "../runtime/tensor.ts";

/** AdamW hyperparameters (torch.optim.AdamW's names and defaults, except weight decay). */
export interface AdamWConfig {
  /** β1 (default 0.9). */
  beta1: number;
  /** β2 (default 0.999). */
  beta2: number;
  /** ε (default 1e-8). */
  eps: number;
  /** Decoupled weight decay on parameters with `decay` (default 0.01). */
  weightDecay: number;
  /** Clip the global gradient L2 norm to this (default 1.0; 0 or Infinity: no clipping). */
  gradClip: number;
}

/** Defaults: torch's β and ε, weight decay 0.01, clipping at 1.0. */
export const ADAMW_DEFAULTS: Readonly<AdamWConfig> = Object.freeze({
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  weightDecay: 0.01,
  gradClip: 1.0,
});

interface Slot {
  param: Param;
  m: Tensor;
  v: Tensor;
}

/**
 * AdamW with decoupled weight decay (none on biases, LayerNorm and embeddings: `param.decay`),
 * per-element gradient masks, and global-norm clipping.
 *
 * @example
 * ```ts
 * import { ADAMW_DEFAULTS, GPT, gptConfig, Gpu, Optimizer } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const model = await GPT.create(gpu, gptConfig("tiny"), { seed: 1 });
 * const opt = await Optimizer.create(gpu, model.parameters(), ADAMW_DEFAULTS);
 * const acts = model.activations(1, 8);
 * const ids = [1, 2, 3, 4, 5, 6, 7, 8];
 * const batch = gpu.batch();
 * model.zeroGrad(batch);
 * model.forward(batch, acts, { ids, labels: ids }, { training: true });
 * model.backward(batch, acts);
 * opt.step(batch, 1e-3);
 * await batch.submit();
 * acts.release();
 * opt.release();
 * model.release();
 * ```
 */
export class Optimizer {
  /** Hyperparameters. */
  readonly config: AdamWConfig;
  #steps = 0;
  readonly #gpu: Gpu;
  readonly #kernel: AdamWKernel;
  readonly #gradNorm: GradNorm;
  readonly #slots: Slot[];
  /** [norm, clipScale] of the last step, on the GPU. */
  readonly normOut: Tensor;

  private constructor(
    gpu: Gpu,
    kernel: AdamWKernel,
    gradNorm: GradNorm,
    params: Param[],
    config: AdamWConfig,
  ) {
    this.#gpu = gpu;
    this.#kernel = kernel;
    this.#gradNorm = gradNorm;
    this.config = config;
    this.#slots = params.filter((p) => p.grad).map((param) => {
      const zeros = new Float32Array(param.value.size);
      return {
        param,
        m: gpu.tensor(param.shape, zeros, param.name + ".exp_avg"),
        v: gpu.tensor(param.shape, zeros, param.name + ".exp_avg_sq"),
      };
    });
    if (this.#slots.length === 0) {
      throw new RangeError("Cannot create the optimizer: no parameter is trainable");
    }
    this.normOut = gpu.tensor([2], new Float32Array(2), "grad_norm");
  }

  /** An optimizer over the trainable ones of `params` (those with a gradient buffer). */
  static async create(
    gpu: Gpu,
    params: Param[],
    config: Partial<AdamWConfig> = {},
  ): Promise<Optimizer> {
    const [kernel, gradNorm] = await Promise.all([AdamWKernel.create(gpu), GradNorm.create(gpu)]);
    return new Optimizer(gpu, kernel, gradNorm, params, { ...ADAMW_DEFAULTS, ...config });
  }

  /** Optimizer steps taken (AdamW's t). */
  get steps(): number {
    return this.#steps;
  }

  /** Trainable parameters, in order. */
  get params(): Param[] {
    return this.#slots.map((s) => s.param);
  }

  /** Records one optimizer step with learning rate `lr` (clipping first when configured). */
  step(batch: Batch, lr: number): void {
    this.#steps++;
    const c = this.config;
    this.#gradNorm.compute(
      batch,
      this.#slots.map((s) => ({ grad: s.param.grad!, mask: s.param.gradMask })),
      this.normOut,
      c.gradClip > 0 ? c.gradClip : Infinity,
    );
    for (const s of this.#slots) {
      this.#kernel.step(batch, {
        param: s.param.value,
        grad: s.param.grad!,
        m: s.m,
        v: s.v,
        gradMask: s.param.gradMask,
      }, {
        lr,
        beta1: c.beta1,
        beta2: c.beta2,
        eps: c.eps,
        weightDecay: s.param.decay ? c.weightDecay : 0,
        step: this.#steps,
      }, this.normOut);
    }
  }

  /** Reads the moments back (one wait): `<name>.exp_avg` and `<name>.exp_avg_sq`. */
  async exportState(): Promise<Map<string, { shape: readonly number[]; data: Float32Array }>> {
    const tensors = this.#slots.flatMap((s) => [s.m, s.v]);
    const data = await this.#gpu.read(tensors);
    return new Map(tensors.map((t, i) => [t.label, { shape: t.shape, data: data[i] }]));
  }

  /** Restores moments from {@linkcode exportState} and the step count. */
  importState(state: ReadonlyMap<string, { data: Float32Array }>, step: number): void {
    for (const s of this.#slots) {
      for (const t of [s.m, s.v]) {
        const got = state.get(t.label);
        if (!got) throw new Error(`Cannot restore the optimizer: tensor "${t.label}" is missing`);
        if (got.data.length !== t.size) {
          throw new Error(
            `Cannot restore the optimizer: tensor "${t.label}" has ${got.data.length} elements, expected ${t.size}`,
          );
        }
        t.write(got.data);
      }
    }
    this.#steps = step;
  }

  /** Bytes of optimizer state on the GPU. */
  get stateBytes(): number {
    return this.#slots.reduce((a, s) => a + s.m.byteLength + s.v.byteLength, 0);
  }

  /** Releases the moments and scratch. */
  release(): void {
    for (const s of this.#slots) {
      s.m.release();
      s.v.release();
    }
    this.normOut.release();
    this.#gradNorm.release();
  }
}
