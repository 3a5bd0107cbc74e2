/**
 * Dropout with a counter-based mask: element i is kept when
 * `counterHash(seed, offset + i) >= round(p·2³²)` and kept values are scaled by `1/(1 − p)`.
 * The mask is a pure function of `(seed, offset + i)`, so backward recomputes it instead of
 * storing it, and {@linkcode counterHash} in runtime/rng.ts gives the same bits on the CPU.
 * Forward writes `out = x·mask·scale` (in place when `out` is `x`); backward accumulates `dx += dout·mask·scale` (like every
 * backward here, so the gradient can sum into an existing one; zero `dx` first otherwise).
 * Shapes: all tensors hold the same n elements.
 *
 * @module
 */

import type { Batch, Gpu, Kernel } from "../runtime/mod.ts";
import type { Tensor } from "../runtime/tensor.ts";
import { grid, Params, sameSize } from "./common.ts";
import code from "./dropout.wgsl" with { type: "text" };

const FILE = "kernels/dropout.wgsl";
const TWO_32 = 2 ** 32;

/**
 * The dropout kernels.
 *
 * @example
 * ```ts
 * import { Dropout, Gpu } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const dropout = await Dropout.create(gpu);
 * const x = gpu.tensor([1000], new Float32Array(1000).fill(1));
 * const out = gpu.tensor([1000]);
 * const batch = gpu.batch();
 * dropout.forward(batch, x, out, 0.5, 1234);
 * await batch.submit();
 * const y = await out.read(); // each element is 0 or 2
 * if (!y.every((v) => v === 0 || v === 2)) throw new Error("dropout failed");
 * for (const t of [x, out]) t.release();
 * ```
 */
export class Dropout {
  readonly #fwd: Kernel;
  readonly #fwdInPlace: Kernel;
  readonly #bwd: Kernel;

  private constructor(fwd: Kernel, fwdInPlace: Kernel, bwd: Kernel) {
    this.#fwd = fwd;
    this.#fwdInPlace = fwdInPlace;
    this.#bwd = bwd;
  }

  /** Compiles (or fetches from the cache) the kernels. */
  static async create(gpu: Gpu): Promise<Dropout> {
    const [fwd, fwdInPlace, bwd] = await Promise.all([
      gpu.kernel({
        name: "dropout.forward",
        file: FILE,
        code,
        entry: "forward",
        bindings: ["uniform", "read", "write"],
      }),
      gpu.kernel({
        name: "dropout.forward_inplace",
        file: FILE,
        code,
        entry: "forward_inplace",
        bindings: ["uniform", null, null, null, null, "write"],
      }),
      gpu.kernel({
        name: "dropout.backward",
        file: FILE,
        code,
        entry: "backward",
        bindings: ["uniform", null, null, "read", "write"],
      }),
    ]);
    return new Dropout(fwd, fwdInPlace, bwd);
  }

  /**
   * x and out are (n): `out = x·mask·scale` (writes; `out` may be `x`, in place). `p` is the
   * drop probability in [0, 1) (0 is the identity), `seed` a u32 naming the mask, `offset` the
   * mask index of element 0.
   */
  forward(batch: Batch, x: Tensor, out: Tensor, p: number, seed: number, offset = 0): void {
    const n = sameSize("dropout.forward", x, out);
    const u = params("dropout.forward", n, p, seed, offset);
    if (x.buffer === out.buffer) batch.dispatch(this.#fwdInPlace, [out], u, grid(n, 256));
    else batch.dispatch(this.#fwd, [x, out], u, grid(n, 256));
  }

  /**
   * dout and dx are (n): `dx += dout·mask·scale` (accumulates), with the mask of the forward call
   * that had the same `p`, `seed` and `offset`.
   */
  backward(batch: Batch, dout: Tensor, dx: Tensor, p: number, seed: number, offset = 0): void {
    const n = sameSize("dropout.backward", dout, dx);
    const u = params("dropout.backward", n, p, seed, offset);
    notAliased("dropout.backward", dout, dx);
    batch.dispatch(this.#bwd, [dout, dx], u, grid(n, 256));
  }
}

/** Throws when a read tensor and a written one share a buffer (WebGPU rejects that binding). */
function notAliased(kernel: string, read: Tensor, written: Tensor): void {
  if (read.buffer === written.buffer) {
    throw new RangeError(
      `Cannot run kernel "${kernel}": tensors "${read.label}" and "${written.label}" are the same buffer; ` +
        `the output must be a different tensor`,
    );
  }
}

function params(kernel: string, n: number, p: number, seed: number, offset: number): ArrayBuffer {
  if (!(p >= 0 && p < 1)) {
    throw new RangeError(
      `Cannot run kernel "${kernel}": the drop probability p must be in [0, 1), got ${p}`,
    );
  }
  for (const [name, v] of [["seed", seed], ["offset", offset]] as const) {
    if (!Number.isInteger(v) || v < 0 || v >= TWO_32) {
      throw new RangeError(
        `Cannot run kernel "${kernel}": ${name} must be an integer in [0, 2^32), got ${v}`,
      );
    }
  }
  const threshold = Math.min(Math.round(p * TWO_32), TWO_32 - 1);
  return new Params().u32(n).u32(seed).u32(offset).u32(threshold).f32(1 / (1 - p)).bytes;
}
