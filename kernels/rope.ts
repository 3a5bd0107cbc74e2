/**
 * Rotary position embedding as Hugging Face Llama applies it (`apply_rotary_pos_emb`):
 * `q' = q·cos + rotate_half(q)·sin` with `rotate_half(x) = cat(−x[d/2:], x[:d/2])`, so channel i
 * pairs with channel i + d/2 (halves, not interleaved pairs), and both use angle
 * `pos·inv_freq[i]`, `inv_freq[i] = 1/θ^(2i/d)`. The same for k; v is not rotated.
 * Shapes: qkv is (B,T,(H + 2·Hkv)·d), q heads first, then k heads, then v heads; row (b,t) is at
 * position offset + t. Forward rotates the q and k parts in place (writes `=`); backward rotates
 * the dq and dk parts of dqkv back by the same angles in place (writes `=`; the transpose).
 * The cos/sin table is built on the CPU ({@linkcode Rotary.table}), so large angles do not depend
 * on a GPU's sin/cos precision.
 *
 * @module
 */

import type { Batch, Gpu, Kernel } from "../runtime/mod.ts";
import type { Tensor } from "../runtime/tensor.ts";
import { grid, needSize, Params } from "./common.ts";
import code from "./rope.wgsl" with { type: "text" };

const FILE = "kernels/rope.wgsl";
/** Invocations per workgroup (workgroup_size in rope.wgsl). */
const GROUP = 256;

/** Per-row first positions: a (B) u32 tensor and the same values on the CPU (to check the table). */
export interface RowStarts {
  /** (B) u32 first position of each row. */
  starts: Tensor;
  /** The same positions on the CPU. */
  host: ArrayLike<number>;
}

/**
 * The rotary position embedding kernels. One variant: each invocation rotates one pair with no
 * loops, so any shape runs under Mesa's loop cap; RoPE is a small share of a step next to the
 * matmuls around it.
 *
 * @example
 * ```ts
 * import { Gpu, Rotary } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const rope = await Rotary.create(gpu);
 * // B = T = 1 at position offset 1; H = Hkv = 1, d = 2: qkv holds q (2), k (2), v (2).
 * const table = gpu.tensor([2, 1, 2], Rotary.table(10000, 2, 2));
 * const qkv = gpu.tensor([1, 1, 6], new Float32Array([1, 0, 0, 1, 5, 6]));
 * const batch = gpu.batch();
 * rope.forward(batch, qkv, table, 1, 1, 1, 1, 2, 1);
 * await batch.submit();
 * const y = await qkv.read(); // [cos 1, sin 1, −sin 1, cos 1, 5, 6]: q, k turned by 1 radian
 * if (Math.abs(y[0] - Math.cos(1)) > 1e-6 || Math.abs(y[2] + Math.sin(1)) > 1e-6 || y[4] !== 5) {
 *   throw new Error("rope failed");
 * }
 * for (const t of [table, qkv]) t.release();
 * ```
 */
export class Rotary {
  readonly #fwd: Kernel;
  readonly #bwd: Kernel;

  private constructor(fwd: Kernel, bwd: Kernel) {
    this.#fwd = fwd;
    this.#bwd = bwd;
  }

  /** Compiles (or fetches from the cache) the kernels. */
  static async create(gpu: Gpu): Promise<Rotary> {
    const [fwd, bwd] = await Promise.all(
      ["forward", "backward"].map((entry) =>
        gpu.kernel({
          name: `rope.${entry}`,
          file: FILE,
          code,
          entry,
          bindings: ["uniform", "read", "write", "read"],
        })
      ),
    );
    return new Rotary(fwd, bwd);
  }

  /**
   * The cos/sin table of positions 0..positions−1 for head_dim `headDim`, laid out
   * (positions, d/2, 2): element `2·(pos·d/2 + i)` is cos and the next one sin of angle(pos, i).
   * Computed as Hugging Face does in f32: `inv_freq[i] = 1/θ^(2i/d)` rounded to f32 (each step in
   * f32), `angle = fround(pos · inv_freq[i])`, then cos and sin of that angle rounded to f32.
   *
   * @example
   * ```ts
   * import { Rotary } from "../mod.ts";
   * const t = Rotary.table(10000, 4, 3); // 3 positions × 2 frequencies × (cos, sin)
   * // Position 2: angles 2·1 and 2·10000^(−1/2) = 0.02.
   * if (t.length !== 12 || t[8] !== Math.fround(Math.cos(2))) throw new Error("bad table");
   * if (Math.abs(t[11] - Math.sin(0.02)) > 1e-8) throw new Error("bad table");
   * ```
   */
  static table(theta: number, headDim: number, positions: number): Float32Array {
    const what = "Cannot build the rotary table";
    if (!(theta > 0 && theta < Infinity)) {
      throw new RangeError(`${what}: theta must be finite and > 0, got ${theta}`);
    }
    if (!Number.isInteger(headDim) || headDim < 2 || headDim % 2 !== 0) {
      throw new RangeError(`${what}: headDim must be an even integer ≥ 2, got ${headDim}`);
    }
    if (!Number.isInteger(positions) || positions < 0) {
      throw new RangeError(`${what}: positions must be an integer ≥ 0, got ${positions}`);
    }
    const half = headDim / 2;
    // HF: 1.0 / (base ** (torch.arange(0, d, 2).float() / d)), every operation in f32.
    const thetaF32 = Math.fround(theta);
    const invFreq = Array.from(
      { length: half },
      (_, i) => Math.fround(1 / Math.fround(thetaF32 ** Math.fround((2 * i) / headDim))),
    );
    const out = new Float32Array(positions * headDim);
    for (let pos = 0; pos < positions; pos++) {
      // HF multiplies f32 position ids by inv_freq in an f32 matmul of one term.
      const posF32 = Math.fround(pos);
      for (let i = 0; i < half; i++) {
        const angle = Math.fround(posF32 * invFreq[i]);
        const at = 2 * (pos * half + i);
        out[at] = Math.cos(angle);
        out[at + 1] = Math.sin(angle);
      }
    }
    return out;
  }

  /**
   * qkv is (B,T,(H + 2·Hkv)·d) and table (positions, d/2, 2) from {@linkcode Rotary.table} with
   * positions ≥ offset + T: rotates the q and k parts in place for positions offset..offset+T−1
   * (writes `=`); the v part is untouched. With {@linkcode RowStarts} instead of a number, row b's
   * positions start at its own `starts[b]` (generation with a KV cache, prompts of different
   * lengths).
   */
  forward(
    batch: Batch,
    qkv: Tensor,
    table: Tensor,
    B: number,
    T: number,
    H: number,
    Hkv: number,
    d: number,
    offset: number | RowStarts,
  ): void {
    this.#run(batch, "rope.forward", this.#fwd, "qkv", qkv, table, B, T, H, Hkv, d, offset);
  }

  /**
   * dqkv is (B,T,(H + 2·Hkv)·d), the gradient with respect to forward's output: rotates the dq and
   * dk parts back by the same angles in place (writes `=`, the transpose of forward), so they
   * become the gradients with respect to the unrotated q and k; dv is untouched.
   */
  backward(
    batch: Batch,
    dqkv: Tensor,
    table: Tensor,
    B: number,
    T: number,
    H: number,
    Hkv: number,
    d: number,
    offset: number | RowStarts,
  ): void {
    this.#run(batch, "rope.backward", this.#bwd, "dqkv", dqkv, table, B, T, H, Hkv, d, offset);
  }

  #run(
    batch: Batch,
    name: string,
    kernel: Kernel,
    xName: string,
    x: Tensor,
    table: Tensor,
    B: number,
    T: number,
    H: number,
    Hkv: number,
    d: number,
    offset: number | RowStarts,
  ): void {
    const sizes = { B, T, H, Hkv, d };
    for (const [key, v] of Object.entries(sizes)) {
      if (!Number.isInteger(v) || v < 1) {
        throw new RangeError(
          `Cannot run kernel "${name}": ${key} must be a positive integer, got ${key}=${v}`,
        );
      }
    }
    const starts = typeof offset === "number" ? null : offset;
    const first = starts ? Array.from(starts.host) : [offset as number];
    if (starts && (starts.host.length !== B || starts.starts.size < B)) {
      throw new RangeError(
        `Cannot run kernel "${name}": row starts hold ${starts.host.length} positions (tensor "${starts.starts.label}": ${starts.starts.size}), expected B=${B}`,
      );
    }
    for (const o of first) {
      if (!Number.isInteger(o) || o < 0) {
        throw new RangeError(
          `Cannot run kernel "${name}": offset must be an integer ≥ 0, got offset=${o}`,
        );
      }
    }
    if (d % 2 !== 0) {
      throw new RangeError(`Cannot run kernel "${name}": head_dim d must be even, got d=${d}`);
    }
    if (H % Hkv !== 0) {
      throw new RangeError(
        `Cannot run kernel "${name}": H=${H} query heads is not a multiple of Hkv=${Hkv} key/value heads`,
      );
    }
    const rowLen = (H + 2 * Hkv) * d;
    needSize(name, x, B * T * rowLen, `${xName} (B,T,(H+2·Hkv)·d)`);
    const positions = Math.max(...first) + T;
    if (table.size < positions * d) {
      throw new RangeError(
        `Cannot run kernel "${name}": tensor "${table.label}" (table (positions,d/2,2)) holds ${
          Math.floor(table.size / d)
        } positions of d=${d}, needs offset + T = ${positions}`,
      );
    }
    const half = d / 2;
    const n = B * T * (H + Hkv) * half;
    const params = new Params().u32(n).u32(T).u32(half).u32(H + Hkv).u32(rowLen)
      .u32(starts ? 0 : first[0]).u32(starts ? 1 : 0);
    // Without row starts the table is bound again in their slot (never read there).
    batch.dispatch(kernel, [table, x, starts?.starts ?? table], params.bytes, grid(n, GROUP));
  }
}
