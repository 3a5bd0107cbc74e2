/**
 * Normalisation modules over the last dimension, with the statistics their backward needs saved
 * by the forward: GPT-2's LayerNorm and the Llama family's RMSNorm.
 *
 * @module
 */

import type { Tensor } from "../runtime/tensor.ts";
import type { Ctx } from "./context.ts";
import type { Param } from "./param.ts";

/**
 * What a block uses as a normalisation. `mean` is written by LayerNorm and left alone by RMSNorm
 * (which has none); `rstd` is written by both.
 */
export interface Norm {
  /** Scale (C). */
  readonly weight: Param;
  /** x (N,C) → out (N,C) `=`, statistics (N) `=`. */
  forward(ctx: Ctx, x: Tensor, out: Tensor, mean: Tensor, rstd: Tensor, N: number): void;
  /** dout (N,C) → dx (N,C) `+=`; parameter gradients `+=` when trainable. */
  backward(
    ctx: Ctx,
    dout: Tensor,
    x: Tensor,
    mean: Tensor,
    rstd: Tensor,
    dx: Tensor,
    N: number,
  ): void;
}

/**
 * LayerNorm over the last dimension, with saved statistics.
 *
 * @example
 * ```ts
 * import { GPT, gptConfig, Gpu } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const model = await GPT.create(gpu, gptConfig("tiny"), { seed: 1, trainable: false });
 * const acts = model.activations(1, 1);
 * const ln = model.lnF; // weight 1, bias 0 at initialisation
 * const x = gpu.tensor([1, 32], Float32Array.from({ length: 32 }, (_, i) => i));
 * const [out, mean, rstd] = [gpu.tensor([1, 32]), gpu.tensor([1]), gpu.tensor([1])];
 * const batch = gpu.batch();
 * const ctx = { gpu, batch, k: model.kernels, training: false, seed: 0, acts };
 * ln.forward(ctx, x, out, mean, rstd, 1);
 * await batch.submit();
 * const [y, m] = await gpu.read([out, mean]);
 * if (m[0] !== 15.5 || Math.abs(y.reduce((a, b) => a + b) / 32) > 1e-5) throw new Error("mean 0");
 * for (const t of [x, out, mean, rstd]) t.release();
 * acts.release();
 * model.release();
 * ```
 */
export class LayerNormModule implements Norm {
  /** Scale (C). */
  readonly weight: Param;
  /** Shift (C). */
  readonly bias: Param;
  /** Epsilon added to the variance. */
  readonly eps: number;

  /** A LayerNorm over existing parameters. */
  constructor(weight: Param, bias: Param, eps: number) {
    this.weight = weight;
    this.bias = bias;
    this.eps = eps;
  }

  /** x (N,C) → out (N,C) `=`, mean and rstd (N) `=`. */
  forward(ctx: Ctx, x: Tensor, out: Tensor, mean: Tensor, rstd: Tensor, N: number): void {
    const C = this.weight.shape[0];
    ctx.k.layernorm.forward(
      ctx.batch,
      x,
      this.weight.value,
      this.bias.value,
      out,
      mean,
      rstd,
      N,
      C,
      this.eps,
    );
  }

  /** dout (N,C) → dx (N,C) `+=`; dweight, dbias `+=` when trainable. */
  backward(
    ctx: Ctx,
    dout: Tensor,
    x: Tensor,
    mean: Tensor,
    rstd: Tensor,
    dx: Tensor,
    N: number,
  ): void {
    const C = this.weight.shape[0];
    ctx.k.layernorm.backward(
      ctx.batch,
      dout,
      x,
      this.weight.value,
      mean,
      rstd,
      dx,
      this.weight.grad,
      this.bias.grad,
      N,
      C,
    );
  }
}

/**
 * RMSNorm as the Llama family computes it (in f32): `weight · x / √(mean(x²) + eps)`, no bias, no
 * mean subtraction; the reciprocal RMS is saved for backward.
 *
 * @example
 * ```ts
 * import { Gpu, Kernels, RMSNormModule } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const k = await Kernels.create(gpu);
 * const weight = { name: "w", shape: [2], value: gpu.tensor([2], new Float32Array([1, 2])), grad: null, decay: false, gradMask: null };
 * const norm = new RMSNormModule(weight, 0);
 * const x = gpu.tensor([1, 2], new Float32Array([3, 4]));
 * const [out, mean, rstd] = [gpu.tensor([1, 2]), gpu.tensor([1]), gpu.tensor([1])];
 * const batch = gpu.batch();
 * // deno-lint-ignore no-explicit-any
 * norm.forward({ gpu, batch, k, training: false, seed: 0, acts: null as any }, x, out, mean, rstd, 1);
 * await batch.submit();
 * const [y] = await gpu.read([out]);
 * // rms = √((9 + 16)/2) = √12.5; y = (1·3, 2·4)/rms
 * if (Math.abs(y[1] - 8 / Math.sqrt(12.5)) > 1e-5) throw new Error(`${y}`);
 * for (const t of [x, out, mean, rstd, weight.value]) t.release();
 * ```
 */
export class RMSNormModule implements Norm {
  /** Scale (C). */
  readonly weight: Param;
  /** Epsilon added to the mean square. */
  readonly eps: number;

  /** An RMSNorm over an existing weight. */
  constructor(weight: Param, eps: number) {
    this.weight = weight;
    this.eps = eps;
  }

  /** x (N,C) → out (N,C) `=`, rstd (N) `=` (`mean` is not used). */
  forward(ctx: Ctx, x: Tensor, out: Tensor, _mean: Tensor, rstd: Tensor, N: number): void {
    const C = this.weight.shape[0];
    ctx.k.rmsnorm.forward(ctx.batch, x, this.weight.value, out, rstd, N, C, this.eps);
  }

  /** dout (N,C) → dx (N,C) `+=`; dweight `+=` when trainable. */
  backward(
    ctx: Ctx,
    dout: Tensor,
    x: Tensor,
    _mean: Tensor,
    rstd: Tensor,
    dx: Tensor,
    N: number,
  ): void {
    const C = this.weight.shape[0];
    ctx.k.rmsnorm.backward(
      ctx.batch,
      dout,
      x,
      this.weight.value,
      rstd,
      dx,
      this.weight.grad,
      N,
      C,
    );
  }
}
