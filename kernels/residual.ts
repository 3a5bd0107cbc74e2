/**
 * Residual add: `out = a + b` forward; `da += dout, db += dout` backward.
 * Shapes: all tensors hold the same n elements (e.g. (B,T,C) activations).
 *
 * @module
 */

import type { Batch, Gpu, Kernel } from "../runtime/mod.ts";
import type { Tensor } from "../runtime/tensor.ts";
import { grid, Params, sameSize } from "./common.ts";
import code from "./residual.wgsl" with { type: "text" };

const FILE = "kernels/residual.wgsl";

/**
 * The residual-add kernels.
 *
 * @example
 * ```ts
 * import { Gpu, Residual } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const res = await Residual.create(gpu);
 * const a = gpu.tensor([3], new Float32Array([1, 2, 3]));
 * const b = gpu.tensor([3], new Float32Array([10, 20, 30]));
 * const out = gpu.tensor([3]);
 * const batch = gpu.batch();
 * res.forward(batch, a, b, out);
 * await batch.submit();
 * const y = await out.read(); // [11, 22, 33]
 * if (y[2] !== 33) throw new Error("residual add failed");
 * for (const t of [a, b, out]) t.release();
 * ```
 */
export class Residual {
  readonly #fwd: Kernel;
  readonly #bwd: Kernel;

  private constructor(fwd: Kernel, bwd: Kernel) {
    this.#fwd = fwd;
    this.#bwd = bwd;
  }

  /** Compiles (or fetches from the cache) the kernels. */
  static async create(gpu: Gpu): Promise<Residual> {
    const [fwd, bwd] = await Promise.all([
      gpu.kernel({
        name: "residual.forward",
        file: FILE,
        code,
        entry: "forward",
        bindings: ["uniform", "read", "read", "write"],
      }),
      gpu.kernel({
        name: "residual.backward",
        file: FILE,
        code,
        entry: "backward",
        bindings: ["uniform", null, null, null, "read", "write", "write"],
      }),
    ]);
    return new Residual(fwd, bwd);
  }

  /** `out = a + b` (writes). */
  forward(batch: Batch, a: Tensor, b: Tensor, out: Tensor): void {
    const n = sameSize("residual.forward", a, b, out);
    batch.dispatch(this.#fwd, [a, b, out], new Params().u32(n).bytes, grid(n, 256));
  }

  /** `da += dout; db += dout` (accumulates). */
  backward(batch: Batch, dout: Tensor, da: Tensor, db: Tensor): void {
    const n = sameSize("residual.backward", dout, da, db);
    batch.dispatch(this.#bwd, [dout, da, db], new Params().u32(n).bytes, grid(n, 256));
  }
}
