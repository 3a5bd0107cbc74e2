/**
 * GELU, the tanh approximation GPT-2 uses (`gelu_new`):
 * `gelu(x) = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`.
 * Forward writes `out = gelu(x)`; backward accumulates `dx += dout · gelu'(x)`, as llm.c's
 * `gelu_backward` does, so the caller zeroes `dx` (or lets it sum into an existing gradient).
 * Shapes: all tensors hold the same n elements (e.g. (B,T,4C) MLP activations).
 *
 * @module
 */

import type { Batch, Gpu, Kernel } from "../runtime/mod.ts";
import type { Tensor } from "../runtime/tensor.ts";
import { grid, Params, sameSize } from "./common.ts";
import code from "./gelu.wgsl" with { type: "text" };

const FILE = "kernels/gelu.wgsl";

/**
 * The GELU kernels (tanh form, numerically safe for any finite input).
 *
 * @example
 * ```ts
 * import { Gelu, Gpu } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const gelu = await Gelu.create(gpu);
 * const x = gpu.tensor([3], new Float32Array([-100, 0, 100]));
 * const out = gpu.tensor([3]);
 * const batch = gpu.batch();
 * gelu.forward(batch, x, out);
 * await batch.submit();
 * const y = await out.read(); // [0, 0, 100]
 * if (y[0] !== 0 || y[2] !== 100) throw new Error("gelu failed");
 * for (const t of [x, out]) t.release();
 * ```
 */
export class Gelu {
  readonly #fwd: Kernel;
  readonly #bwd: Kernel;

  private constructor(fwd: Kernel, bwd: Kernel) {
    this.#fwd = fwd;
    this.#bwd = bwd;
  }

  /** Compiles (or fetches from the cache) the kernels. */
  static async create(gpu: Gpu): Promise<Gelu> {
    const [fwd, bwd] = await Promise.all([
      gpu.kernel({
        name: "gelu.forward",
        file: FILE,
        code,
        entry: "forward",
        bindings: ["uniform", "read", "write"],
      }),
      gpu.kernel({
        name: "gelu.backward",
        file: FILE,
        code,
        entry: "backward",
        bindings: ["uniform", "read", null, "read", "write"],
      }),
    ]);
    return new Gelu(fwd, bwd);
  }

  /** x is (n), out is (n): `out = gelu(x)` (writes). */
  forward(batch: Batch, x: Tensor, out: Tensor): void {
    const n = sameSize("gelu.forward", x, out);
    batch.dispatch(this.#fwd, [x, out], new Params().u32(n).bytes, grid(n, 256));
  }

  /** x, dout and dx are (n): `dx += dout · gelu'(x)` (accumulates). */
  backward(batch: Batch, x: Tensor, dout: Tensor, dx: Tensor): void {
    const n = sameSize("gelu.backward", x, dout, dx);
    batch.dispatch(this.#bwd, [x, dout, dx], new Params().u32(n).bytes, grid(n, 256));
  }
}
