/**
 * Global gradient-norm clipping on the GPU: the L2 norm over a list of gradient tensors (each
 * optionally masked) and `clipScale = min(1, maxNorm / (norm + 1e-6))`
 * (torch.nn.utils.clip_grad_norm_), written to a small tensor that {@linkcode AdamW.step} reads,
 * so a training step needs no readback to clip. Gradients larger than one storage binding are
 * summed chunk by chunk, with the same partial sums.
 *
 * @module
 */

import type { Batch, Gpu, Kernel } from "../runtime/mod.ts";
import type { Tensor } from "../runtime/tensor.ts";
import { checkLoops, grid, Params, sameSize } from "./common.ts";
import code from "./gradnorm.wgsl" with { type: "text" };

const FILE = "kernels/gradnorm.wgsl";
/** Elements one `partial_sums` workgroup reduces (256 invocations × 32). */
const CHUNK = 256 * 32;

/** A gradient and an optional per-element 0/1 mask (masked-out elements do not count). */
export interface MaskedGrad {
  /** The gradient tensor. */
  grad: Tensor;
  /** Same size as `grad`, or null/absent for all ones. */
  mask?: Tensor | null;
}

/**
 * The global gradient-norm kernels. The instance owns a scratch tensor of per-workgroup partial
 * sums, allocated on first use and kept; if a later call needs more, a larger one replaces it and
 * the old one is kept until {@linkcode GradNorm.release} (a batch not yet submitted may still use
 * it). Use one instance per parameter set.
 *
 * @example
 * ```ts
 * import { GradNorm, Gpu } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const gn = await GradNorm.create(gpu);
 * const a = gpu.tensor([2], new Float32Array([3, 0]), "a");
 * const b = gpu.tensor([1], new Float32Array([4]), "b");
 * const out = gpu.tensor([2], undefined, "norm_scale");
 * const batch = gpu.batch();
 * gn.compute(batch, [a, { grad: b }], out, 1); // norm 5, so clipScale ≈ 1/5
 * await batch.submit();
 * const [[norm, scale]] = await gpu.read([out]);
 * if (norm !== 5 || Math.abs(scale - 0.2) > 1e-6) throw new Error("grad norm failed");
 * gn.release();
 * for (const t of [a, b, out]) t.release();
 * ```
 */
export class GradNorm {
  readonly #gpu: Gpu;
  readonly #partials: Kernel;
  readonly #finish: Kernel;
  #scratch: Tensor | undefined;
  readonly #retired: Tensor[] = [];

  private constructor(gpu: Gpu, partials: Kernel, finish: Kernel) {
    this.#gpu = gpu;
    this.#partials = partials;
    this.#finish = finish;
  }

  /** Compiles (or fetches from the cache) the kernels. */
  static async create(gpu: Gpu): Promise<GradNorm> {
    const [partials, finish] = await Promise.all([
      gpu.kernel({
        name: "gradnorm.partial_sums",
        file: FILE,
        code,
        entry: "partial_sums",
        bindings: ["uniform", "read", "read", "write"],
      }),
      gpu.kernel({
        name: "gradnorm.finish",
        file: FILE,
        code,
        entry: "finish",
        bindings: ["uniform", null, null, "write", "write"],
      }),
    ]);
    return new GradNorm(gpu, partials, finish);
  }

  /**
   * Writes `out (2) = [norm, clipScale]` (=): `norm = √Σ (grad·mask)²` over every element of
   * every tensor in `grads`, `clipScale = min(1, maxNorm / (norm + 1e-6))`, or 1 when `maxNorm` is
   * ≤ 0 or not finite (no clipping). The sum is reduced in a fixed order (deterministic).
   */
  compute(
    batch: Batch,
    grads: readonly (Tensor | MaskedGrad)[],
    out: Tensor,
    maxNorm: number,
  ): void {
    const name = "gradnorm.compute";
    if (out.size !== 2) {
      throw new RangeError(
        `Cannot run kernel "${name}": tensor "${out.label}" (out) has ${out.size} elements, expected 2 ([norm, scale])`,
      );
    }
    if (Number.isNaN(maxNorm)) throw new RangeError(`Cannot run kernel "${name}": maxNorm is NaN`);
    const list = grads.map((g) => "grad" in g ? g : { grad: g, mask: null });
    for (const { grad, mask } of list) if (mask) sameSize(name, grad, mask);
    // A tensor over one storage binding is summed chunk by chunk (views). Chunks of whole
    // workgroups' elements give each workgroup the same elements as without chunks, so the same
    // partial sums; only a binding limit under CHUNK·4 bytes (32 KiB) splits a workgroup's share.
    const multiple = this.#gpu.maxBindingBytes >= CHUNK * 4 ? CHUNK : 1;
    const parts = list.flatMap(({ grad, mask }) =>
      this.#gpu.rowChunks(grad.size, 1, { multiple }).map(({ start, count }) =>
        count === grad.size ? { grad, mask } : {
          grad: grad.view(start, [count]),
          mask: mask ? mask.view(start, [count]) : null,
        }
      )
    );
    const slots = parts.reduce((s, { grad }) => s + Math.ceil(grad.size / CHUNK), 0);
    checkLoops("gradnorm.finish", Math.ceil(slots / 256) + 10, `${slots} partial sums`);
    const scratch = this.#scratchFor(Math.max(slots, 1));
    let offset = 0;
    for (const { grad, mask } of parts) {
      const groups = Math.ceil(grad.size / CHUNK);
      if (groups === 0) continue;
      const params =
        new Params().u32(grad.size).u32(offset).u32(groups).u32(mask ? 1 : 0).u32(0).f32(0).bytes;
      batch.dispatch(this.#partials, [grad, mask ?? grad, scratch], params, grid(groups, 1));
      offset += groups;
    }
    const clip = maxNorm > 0 && Number.isFinite(maxNorm);
    const params =
      new Params().u32(slots).u32(0).u32(0).u32(0).u32(clip ? 1 : 0).f32(clip ? maxNorm : 0).bytes;
    batch.dispatch(this.#finish, [scratch, out], params, 1);
  }

  /** Returns the scratch tensors to the pool; call after the batches that use them are submitted. */
  release(): void {
    this.#scratch?.release();
    for (const t of this.#retired.splice(0)) t.release();
    this.#scratch = undefined;
  }

  #scratchFor(slots: number): Tensor {
    if (this.#scratch && this.#scratch.size >= slots) return this.#scratch;
    if (this.#scratch) this.#retired.push(this.#scratch);
    this.#scratch = this.#gpu.tensor([slots], undefined, "gradnorm.partials");
    return this.#scratch;
  }
}
