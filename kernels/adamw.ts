/**
 * AdamW with decoupled weight decay, in torch.optim.AdamW's operation order, with per-element
 * gradient and weight-decay masks and a gradient-clipping scale read from the GPU. A parameter
 * larger than one storage binding (a GPT-2 token table on lavapipe or in a browser) is updated
 * chunk by chunk, with the same result.
 *
 * @module
 */

import type { Batch, Gpu, Kernel } from "../runtime/mod.ts";
import type { Tensor } from "../runtime/tensor.ts";
import { grid, Params, sameSize } from "./common.ts";
import code from "./adamw.wgsl" with { type: "text" };

const FILE = "kernels/adamw.wgsl";

/** AdamW hyperparameters of one step (torch.optim.AdamW's names in camelCase). */
export interface AdamWHyper {
  /** Learning rate of this step. */
  lr: number;
  /** First-moment decay, e.g. 0.9. */
  beta1: number;
  /** Second-moment decay, e.g. 0.999. */
  beta2: number;
  /** Added to the bias-corrected √v, e.g. 1e-8. */
  eps: number;
  /** Decoupled weight decay, e.g. 0.01 (torch's AdamW default); 0 for none. */
  weightDecay: number;
  /** Step number t, counted from 1, for the bias corrections 1 − βᵗ. */
  step: number;
}

/** The tensors of one parameter that {@linkcode AdamW.step} updates, all with the same n elements. */
export interface AdamWTensors {
  /** The parameter, updated in place. */
  param: Tensor;
  /** Its gradient (read). */
  grad: Tensor;
  /** First moment, updated in place (zeros before the first step). */
  m: Tensor;
  /** Second moment, updated in place (zeros before the first step). */
  v: Tensor;
  /** Per-element 0/1 trainable mask, or null/absent for all ones. Elements with 0 stay unchanged (param, m and v). */
  gradMask?: Tensor | null;
  /** Per-element 0/1 weight-decay mask, or null/absent for all ones (e.g. 0 for biases and LayerNorm). */
  wdMask?: Tensor | null;
}

/**
 * The AdamW update kernel. Per element, in torch's order:
 * `g = grad·gradMask·clipScale; p *= 1 − lr·wd·wdMask; m = lerp(m, g, 1 − β1);
 * v = β2·v + (1 − β2)·g²; p −= (lr / (1 − β1ᵗ)) · m / (√v / √(1 − β2ᵗ) + eps)`.
 *
 * @example
 * ```ts
 * import { AdamW, Gpu } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const adamw = await AdamW.create(gpu);
 * const param = gpu.tensor([2], new Float32Array([1, 1]), "param");
 * const grad = gpu.tensor([2], new Float32Array([0.5, -0.5]), "grad");
 * const m = gpu.tensor([2], new Float32Array(2), "m"), v = gpu.tensor([2], new Float32Array(2), "v");
 * const batch = gpu.batch();
 * adamw.step(batch, { param, grad, m, v }, { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, step: 1 });
 * await batch.submit();
 * const [p] = await gpu.read([param]); // the first step moves each element by lr against its gradient's sign
 * if (Math.abs(p[0] - 0.9) > 1e-6 || Math.abs(p[1] - 1.1) > 1e-6) throw new Error("AdamW failed");
 * for (const t of [param, grad, m, v]) t.release();
 * ```
 */
export class AdamW {
  readonly #gpu: Gpu;
  readonly #kernel: Kernel;

  private constructor(gpu: Gpu, kernel: Kernel) {
    this.#gpu = gpu;
    this.#kernel = kernel;
  }

  /** Compiles (or fetches from the cache) the kernel. */
  static async create(gpu: Gpu): Promise<AdamW> {
    const kernel = await gpu.kernel({
      name: "adamw.step",
      file: FILE,
      code,
      entry: "step",
      bindings: ["uniform", "read", "read", "read", "read", "write", "write", "write"],
    });
    return new AdamW(gpu, kernel);
  }

  /**
   * One AdamW step of one parameter (`param`, `m`, `v` updated in place). `clip` is the
   * gradient-clipping scale on the GPU: the `[norm, scale]` tensor {@linkcode GradNorm.compute}
   * writes (its element 1 is read) or a 1-element `[scale]` tensor; null means no clipping.
   */
  step(batch: Batch, t: AdamWTensors, h: AdamWHyper, clip: Tensor | null = null): void {
    const name = "adamw.step";
    const n = sameSize(
      name,
      t.param,
      t.grad,
      t.m,
      t.v,
      ...(t.gradMask ? [t.gradMask] : []),
      ...(t.wdMask ? [t.wdMask] : []),
    );
    if (clip && clip.size !== 1 && clip.size !== 2) {
      throw new RangeError(
        `Cannot run kernel "${name}": tensor "${clip.label}" (clip) has ${clip.size} elements, expected [scale] or [norm, scale]`,
      );
    }
    const bad = (what: string) => new RangeError(`Cannot run kernel "${name}": ${what}`);
    if (!(Number.isInteger(h.step) && h.step >= 1)) {
      throw bad(`step ${h.step} is not an integer ≥ 1`);
    }
    if (!(h.beta1 >= 0 && h.beta1 < 1)) throw bad(`beta1 ${h.beta1} is outside [0, 1)`);
    if (!(h.beta2 >= 0 && h.beta2 < 1)) throw bad(`beta2 ${h.beta2} is outside [0, 1)`);
    if (!(h.lr >= 0 && Number.isFinite(h.lr))) throw bad(`lr ${h.lr} is not a finite number ≥ 0`);
    if (!(h.eps >= 0 && Number.isFinite(h.eps))) {
      throw bad(`eps ${h.eps} is not a finite number ≥ 0`);
    }
    if (!(h.weightDecay >= 0 && Number.isFinite(h.weightDecay))) {
      throw bad(`weightDecay ${h.weightDecay} is not a finite number ≥ 0`);
    }
    // Scalars in float64, as torch computes them in Python, then rounded to f32 once.
    const params = new Params()
      .u32(n)
      .f32(h.lr * h.weightDecay)
      .f32(1 - h.beta1)
      .f32(h.beta2)
      .f32(1 - h.beta2)
      .f32(h.eps)
      .f32(h.lr / (1 - h.beta1 ** h.step))
      .f32(Math.sqrt(1 - h.beta2 ** h.step))
      .u32(t.gradMask ? 1 : 0)
      .u32(t.wdMask ? 1 : 0)
      .u32(clip ? 1 : 0)
      .u32(clip ? clip.size - 1 : 0)
      .bytes;
    // A tensor over one storage binding is updated chunk by chunk (views of the same elements
    // of each tensor): element-wise, so the result is the same.
    for (const { start, count } of this.#gpu.rowChunks(n, 1)) {
      const part = (x: Tensor) => count === n ? x : x.view(start, [count]);
      const grad = part(t.grad);
      // An absent mask or clip binds grad in its place (flagged off): a binding cannot be empty.
      const bindings = [
        grad,
        t.gradMask ? part(t.gradMask) : grad,
        t.wdMask ? part(t.wdMask) : grad,
        clip ?? grad,
        part(t.param),
        part(t.m),
        part(t.v),
      ];
      const chunkParams = new Uint32Array(params.slice(0));
      chunkParams[0] = count;
      batch.dispatch(this.#kernel, bindings, chunkParams, grid(count, 256));
    }
  }
}
