/**
 * The DoRA kernels (see kernels/dora.wgsl): the per-output norm of the LoRA-updated weight and the
 * magnitude's scale, the forward's combination of the base result with the LoRA branch, and the
 * in-place row (or column) scaling that merges and unmerges. The backward needs no kernel of its
 * own: it is composed from matmuls and {@linkcode PeftKernels}' per-column scale and column sums
 * (peft/lora.ts).
 *
 * @module
 */

import type { Batch, Gpu, Kernel } from "../runtime/mod.ts";
import type { Tensor } from "../runtime/tensor.ts";
import { checkLoops, grid, needSize, Params } from "./common.ts";
import code from "./dora.wgsl" with { type: "text" };

const FILE = "kernels/dora.wgsl";
const LANES = 64;

/** A DoRA layer's shapes: N outputs, K inputs, rank r, and W's layout. */
export interface DoraShape {
  /** Output features N. */
  nOut: number;
  /** Input features K. */
  nIn: number;
  /** Rank r. */
  r: number;
  /** W stored (K,N) (GPT-2's Conv1D, PEFT's `fan_in_fan_out`); false: (N,K) (`nn.Linear`). */
  fanInFanOut: boolean;
}

/**
 * The DoRA kernels.
 *
 * @example
 * ```ts
 * import { DoraKernels, Gpu } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const k = await DoraKernels.create(gpu);
 * // W (2 outputs, 2 inputs) stored (out, in); B = 0, so the norm is W's row norm.
 * const W = gpu.tensor([2, 2], new Float32Array([3, 4, 0, 2]));
 * const A = gpu.tensor([1, 2], new Float32Array([1, 1]));
 * const B = gpu.tensor([2, 1], new Float32Array([0, 0]));
 * const m = gpu.tensor([2], new Float32Array([10, 1]));
 * const [n, g, gm1] = [gpu.tensor([2]), gpu.tensor([2]), gpu.tensor([2])];
 * const batch = gpu.batch();
 * k.norm(batch, { W, A, B, m, n, g, gm1 }, 1, { nOut: 2, nIn: 2, r: 1, fanInFanOut: false });
 * await batch.submit();
 * const [nv, gv] = await gpu.read([n, g]);
 * if (nv.join() !== "5,2" || gv.join() !== "2,0.5") throw new Error(`${nv} ${gv}`);
 * for (const t of [W, A, B, m, n, g, gm1]) t.release();
 * ```
 */
export class DoraKernels {
  readonly #norm: Kernel;
  readonly #combine: Kernel;
  readonly #rescale: Kernel;

  private constructor(k: Kernel[]) {
    [this.#norm, this.#combine, this.#rescale] = k;
  }

  /** Compiles (or fetches from the cache) the kernels. */
  static async create(gpu: Gpu): Promise<DoraKernels> {
    const spec = (entry: string, bindings: ("uniform" | "read" | "write" | null)[]) =>
      gpu.kernel({ name: `dora.${entry}`, file: FILE, code, entry, bindings });
    const u = "uniform", r = "read", w = "write", _ = null;
    return new DoraKernels(
      await Promise.all([
        spec("dora_norm", [u, r, r, r, r, w, w, w]),
        spec("dora_combine", [u, _, _, _, _, _, _, _, w, r, r, r, r, r, w]),
        spec("dora_rescale", [u, _, _, _, _, _, _, _, _, _, _, _, r, _, _, w]),
      ]),
    );
  }

  /**
   * PEFT's `get_weight_norm` and the magnitude's scale, for every output o (all written =):
   * `n[o] = ‖V[o,:] + s·(B·A)[o,:]‖₂` with V the weight W read as (out, in), `g[o] = m[o] / n[o]`,
   * `gm1[o] = g[o] − 1`. W (in,out) or (out,in) per `shape.fanInFanOut`, A (r,in), B (out,r),
   * m, n, g, gm1 (out).
   */
  norm(
    batch: Batch,
    t: { W: Tensor; A: Tensor; B: Tensor; m: Tensor; n: Tensor; g: Tensor; gm1: Tensor },
    s: number,
    shape: DoraShape,
  ): void {
    const name = this.#norm.name, { nOut: N, nIn: K, r } = shape;
    positive(name, { N, K, r });
    needSize(name, t.W, N * K, shape.fanInFanOut ? `W (${K},${N})` : `W (${N},${K})`);
    needSize(name, t.A, r * K, `A (${r},${K})`);
    needSize(name, t.B, N * r, `B (${N},${r})`);
    for (const [k, v] of [["m", t.m], ["n", t.n], ["g", t.g], ["gm1", t.gm1]] as const) {
      needSize(name, v, N, `${k} (${N})`);
    }
    // Each lane's loop over inputs (+ exit test), each with an r-long dot product (+ exit test),
    // then the 6-step tree (+ exit test).
    checkLoops(name, Math.ceil(K / LANES) * (r + 2) + 1 + 7, `K=${K} inputs at rank ${r}`);
    batch.dispatch(
      this.#norm,
      [t.W, t.A, t.B, t.m, t.n, t.g, t.gm1],
      params(0, N, K, r, shape.fanInFanOut ? 1 : 0, 0, 0, s),
      grid(N, 1),
    );
  }

  /**
   * The DoRA forward's combination, for y (M,N): with z the base result without bias,
   * `y += (g − 1)·z + g·ls` (accumulates +=) and `h = (z + ls) / n` (writes =, what the
   * magnitude's gradient needs). `zin` null: z = y − bias (PEFT reuses the base layer's result
   * when there is no dropout); else z = zin (recomputed on the dropped-out input, no bias). ls
   * (M,N) is the scaled LoRA branch s·x·Aᵀ·Bᵀ; g, n (N) from {@linkcode norm}.
   */
  combine(
    batch: Batch,
    t: {
      y: Tensor;
      zin: Tensor | null;
      bias: Tensor | null;
      ls: Tensor;
      g: Tensor;
      n: Tensor;
      h: Tensor;
    },
    M: number,
    N: number,
  ): void {
    const name = this.#combine.name;
    positive(name, { M, N });
    for (const [k, v] of [["y", t.y], ["ls", t.ls], ["h", t.h]] as const) {
      needSize(name, v, M * N, `${k} (${M},${N})`);
    }
    if (t.zin) needSize(name, t.zin, M * N, `zin (${M},${N})`);
    if (t.bias) needSize(name, t.bias, N, `bias (${N})`);
    needSize(name, t.g, N, `g (${N})`);
    needSize(name, t.n, N, `n (${N})`);
    const mode = t.zin ? 1 : 0, flag = t.bias && !t.zin ? 1 : 0;
    // Unused bindings are bound to a tensor the kernel only reads (never to y or h).
    batch.dispatch(
      this.#combine,
      [t.y, t.zin ?? t.ls, t.bias ?? t.g, t.ls, t.g, t.n, t.h],
      params(M, N, 0, 0, 0, mode, flag, 0),
      grid(M * N, 256),
    );
  }

  /**
   * Scales W in place by g per output (written =): `W ← g ⊙ W` (merge) or `W ← W ⊘ g` with
   * `divide` (unmerge); the output is W's column (in,out) or row (out,in) per the layout.
   */
  rescale(batch: Batch, W: Tensor, g: Tensor, shape: DoraShape, divide = false): void {
    const name = this.#rescale.name, { nOut: N, nIn: K } = shape;
    positive(name, { N, K });
    needSize(name, W, N * K, shape.fanInFanOut ? `W (${K},${N})` : `W (${N},${K})`);
    needSize(name, g, N, `g (${N})`);
    batch.dispatch(
      this.#rescale,
      [g, W],
      params(0, N, K, 0, shape.fanInFanOut ? 1 : 0, divide ? 1 : 0, 0, 0),
      grid(N * K, 256),
    );
  }
}

/** The WGSL `Params` struct: m, n, k, r, fifo (W stored (in,out)), mode, flag (u32) and s (f32). */
function params(
  m: number,
  n: number,
  k: number,
  r: number,
  layout: number,
  mode: number,
  flag: number,
  s: number,
): ArrayBuffer {
  return new Params(8).u32(m).u32(n).u32(k).u32(r).u32(layout).u32(mode).u32(flag).f32(s).bytes;
}

function positive(name: string, dims: Record<string, number>): void {
  for (const [k, v] of Object.entries(dims)) {
    if (!(Number.isInteger(v) && v > 0)) {
      throw new RangeError(`Cannot run kernel "${name}": ${k}=${v} must be a positive integer`);
    }
  }
}
