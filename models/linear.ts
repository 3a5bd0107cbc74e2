/**
 * Linear layers: GPT-2's Conv1D (`y = x·W + b`, W stored (in, out)) and `nn.Linear` (`y = x·Wᵀ + b`,
 * W stored (out, in), bias optional) of the Llama family, one class with the layout as a field.
 *
 * @module
 */

import type { Tensor } from "../runtime/tensor.ts";
import type { Ctx } from "./context.ts";
import type { Param } from "./param.ts";

/**
 * What a block uses as a linear layer. {@linkcode Linear} is the base; PEFT methods (LoRA, IA³)
 * wrap one and take its place through the model's linear slots.
 */
export interface LinearLike {
  /** Input features. */
  readonly nIn: number;
  /** Output features. */
  readonly nOut: number;
  /** x (M,in) → y (M,out) `=`. */
  forward(ctx: Ctx, x: Tensor, y: Tensor, M: number): void;
  /** dy (M,out) → dx (M,in) `=` (skipped when null); parameter gradients `+=`. */
  backward(ctx: Ctx, x: Tensor, dy: Tensor, dx: Tensor | null, M: number): void;
}

/** A linear layer held in a module field, as PEFT methods find and replace it. */
export interface LinearField {
  /** Hugging Face module name relative to the block, e.g. `attn.c_attn` or `self_attn.q_proj`. */
  readonly name: string;
  /** The layer now in the field. */
  get(): LinearLike;
  /** Puts another layer in the field. */
  set(layer: LinearLike): void;
}

/**
 * A linear layer over existing parameters: GPT-2's Conv1D (`fanInFanOut`, W stored (in, out)) or
 * `nn.Linear` (W stored (out, in)); the bias may be absent (most Llama projections).
 *
 * @example
 * ```ts
 * import { GPT, gptConfig, Gpu, Linear } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const model = await GPT.create(gpu, gptConfig("tiny"), { seed: 1, trainable: false });
 * const acts = model.activations(1, 1);
 * const layer = model.blocks[0].attn.cAttn;
 * if (!(layer instanceof Linear) || layer.nIn !== 32 || layer.nOut !== 96) throw new Error();
 * // x = e₀, so y = x·W + b is row 0 of W plus b.
 * const x = gpu.tensor([1, 32], Float32Array.from({ length: 32 }, (_, i) => i === 0 ? 1 : 0));
 * const y = gpu.tensor([1, 96]);
 * const batch = gpu.batch();
 * layer.forward({ gpu, batch, k: model.kernels, training: false, seed: 0, acts }, x, y, 1);
 * await batch.submit();
 * const [out, w, b] = await gpu.read([y, layer.weight.value, layer.bias!.value]);
 * if (Math.abs(out[5] - (w[5] + b[5])) > 1e-6) throw new Error("y = x·W + b");
 * x.release();
 * y.release();
 * acts.release();
 * model.release();
 * ```
 */
export class Linear implements LinearLike {
  /** Weight: (in, out) when `fanInFanOut`, else (out, in). */
  readonly weight: Param;
  /** Bias (out), or null. */
  readonly bias: Param | null;
  /** True for Conv1D's (in, out) layout (GPT-2), false for `nn.Linear`'s (out, in) (PEFT's term). */
  readonly fanInFanOut: boolean;
  /** Input features. */
  readonly nIn: number;
  /** Output features. */
  readonly nOut: number;

  /** A layer over existing parameters; `fanInFanOut` defaults to true (Conv1D). */
  constructor(weight: Param, bias: Param | null, fanInFanOut = true) {
    this.weight = weight;
    this.bias = bias;
    this.fanInFanOut = fanInFanOut;
    const [rows, cols] = weight.shape as [number, number];
    [this.nIn, this.nOut] = fanInFanOut ? [rows, cols] : [cols, rows];
  }

  /** x (M,in) → y (M,out) `=`. */
  forward(ctx: Ctx, x: Tensor, y: Tensor, M: number): void {
    ctx.k.matmul.linearForward(
      ctx.batch,
      x,
      this.weight.value,
      this.bias?.value ?? null,
      y,
      M,
      this.nIn,
      this.nOut,
      !this.fanInFanOut,
    );
  }

  /** dy (M,out) → dx (M,in) `=` (skipped when null); dW, db `+=` when trainable. */
  backward(ctx: Ctx, x: Tensor, dy: Tensor, dx: Tensor | null, M: number): void {
    ctx.k.matmul.linearBackward(
      ctx.batch,
      {
        x,
        W: this.weight.value,
        outIn: !this.fanInFanOut,
        dy,
        dx,
        dW: this.weight.grad,
        dBias: this.bias?.grad ?? null,
      },
      M,
      this.nIn,
      this.nOut,
    );
  }
}
