/**
 * Small kernels the PEFT methods need: IA³'s per-column (or per-row) scaling and the gradient of
 * its scaling vector, the virtual-token row writes of prompt and prefix tuning with their
 * gradient-and-zero, and the bottleneck adapters' activations (relu, swish, gelu_new, gelu).
 * Shapes are given on each method; every output is written `=` except parameter gradients, which
 * accumulate `+=`.
 *
 * @module
 */

import type { Batch, Gpu, Kernel } from "../runtime/mod.ts";
import type { Tensor } from "../runtime/tensor.ts";
import { checkLoops, grid, needSize, Params, sameSize } from "./common.ts";
import code from "./peft.wgsl" with { type: "text" };

const FILE = "kernels/peft.wgsl";
const LANES = 64;

/** Activations of the bottleneck adapters, by the names AdapterHub (transformers' ACT2FN) uses. */
export const ADAPTER_ACTIVATIONS = ["relu", "swish", "gelu_new", "gelu"] as const;

/**
 * An adapter activation: `relu`; `swish` (x·σ(x), also called silu); `gelu_new` (GPT-2's tanh
 * form); `gelu` (the exact erf form, erf within 1.5e−7).
 */
export type AdapterActivation = typeof ADAPTER_ACTIVATIONS[number];

/** Where virtual rows go and come from (see {@linkcode PeftKernels.setRows}). */
export interface RowsSpec {
  /** Sequences B. */
  B: number;
  /** Positions per sequence T (virtual plus real). */
  T: number;
  /** Virtual rows per sequence (rows 0..n−1 of each sequence). */
  n: number;
  /** Row length of the destination (e.g. C for the embedding output, 3C for qkv). */
  ldd: number;
  /** First destination column written (e.g. C for the key third of qkv). */
  doff: number;
  /** Columns written per row. */
  w: number;
  /** Row length of the source (e.g. C, or L·2C for a prefix tensor of all layers). */
  lds: number;
  /** First source column read. */
  soff: number;
}

/**
 * The PEFT kernels.
 *
 * @example
 * ```ts
 * import { Gpu, PeftKernels } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const k = await PeftKernels.create(gpu);
 * // out (2,3) = x (2,3) scaled per column by l (3)
 * const x = gpu.tensor([2, 3], new Float32Array([1, 2, 3, 4, 5, 6]));
 * const l = gpu.tensor([3], new Float32Array([1, 10, 100]));
 * const out = gpu.tensor([2, 3]);
 * const batch = gpu.batch();
 * k.scale(batch, x, l, out, 2, 3);
 * await batch.submit();
 * const y = await out.read(); // [1, 20, 300, 4, 50, 600]
 * if (y[5] !== 600) throw new Error("scale failed");
 * for (const t of [x, l, out]) t.release();
 * ```
 */
export class PeftKernels {
  readonly #scale: Kernel;
  readonly #scaleGrad: Kernel;
  readonly #rowsSet: Kernel;
  readonly #rowsGrad: Kernel;
  readonly #actFwd: Kernel;
  readonly #actBwd: Kernel;

  private constructor(k: Kernel[]) {
    [this.#scale, this.#scaleGrad, this.#rowsSet, this.#rowsGrad, this.#actFwd, this.#actBwd] = k;
  }

  /** Compiles (or fetches from the cache) the kernels. */
  static async create(gpu: Gpu): Promise<PeftKernels> {
    const spec = (entry: string, bindings: ("uniform" | "read" | "write" | null)[]) =>
      gpu.kernel({ name: `peft.${entry}`, file: FILE, code, entry, bindings });
    const u = "uniform", r = "read", w = "write";
    return new PeftKernels(
      await Promise.all([
        spec("scale", [u, r, r, w]),
        spec("scale_grad", [u, r, null, null, r, w]),
        spec("rows_set", [u, null, null, null, null, null, r, r, w]),
        spec("rows_grad", [u, null, null, null, null, null, null, null, null, w, w]),
        spec("act_forward", [u, r, null, w]),
        spec("act_backward", [u, r, null, w, r]),
      ]),
    );
  }

  /**
   * `out (M,N) = x (M,N) · l` (writes =), l (N) per column, or l (M) per row with `byRow`;
   * `divide` divides by l instead (IA³ unmerge). `out` must not be `x`.
   */
  scale(
    batch: Batch,
    x: Tensor,
    l: Tensor,
    out: Tensor,
    M: number,
    N: number,
    options: { byRow?: boolean; divide?: boolean } = {},
  ): void {
    const name = this.#scale.name;
    positive(name, { M, N });
    exact(name, x, M * N, `x (${M},${N})`);
    exact(name, out, M * N, `out (${M},${N})`);
    exact(name, l, options.byRow ? M : N, `l (${options.byRow ? M : N})`);
    const params = fields(M, N, options.byRow ? 1 : 0, options.divide ? 1 : 0);
    batch.dispatch(this.#scale, [x, l, out], params, grid(M * N, 256));
  }

  /** `dl (N) += Σ_m dy[m,n] · x[m,n]` (accumulates +=), dy and x (M,N). Deterministic. */
  scaleGrad(batch: Batch, dy: Tensor, x: Tensor, dl: Tensor, M: number, N: number): void {
    const name = this.#scaleGrad.name;
    positive(name, { M, N });
    exact(name, dy, M * N, `dy (${M},${N})`);
    exact(name, x, M * N, `x (${M},${N})`);
    exact(name, dl, N, `dl (${N})`);
    // Each lane's loop over rows (+ its exit test) and the 6-step tree (+ exit test).
    checkLoops(name, Math.ceil(M / LANES) + 1 + 7, `summing ${M} rows`);
    const params = fields(M, N);
    batch.dispatch(this.#scaleGrad, [x, dy, dl], params, grid(N, 1));
  }

  /**
   * Writes the virtual rows: for b < B, j < n, c < w,
   * `dst[b, j, doff + c] = src[j, soff + c] (+ add[j, c])` (writes =), dst (B,T,ldd), src
   * (n, lds), add (n, w) when given (prompt tuning adds the position embeddings wpe[0..n−1]).
   */
  setRows(batch: Batch, src: Tensor, add: Tensor | null, dst: Tensor, s: RowsSpec): void {
    const name = this.#rowsSet.name;
    checkRows(name, s);
    needSize(name, dst, s.B * s.T * s.ldd, `dst (${s.B},${s.T},${s.ldd})`);
    needSize(name, src, s.n * s.lds, `src (${s.n},${s.lds})`);
    if (add) needSize(name, add, s.n * s.w, `add (${s.n},${s.w})`);
    batch.dispatch(
      this.#rowsSet,
      [src, add ?? src, dst],
      rowsParams(s, add !== null),
      grid(s.B * s.n * s.w, 256),
    );
  }

  /**
   * The backward of {@linkcode setRows}: `dsrc[j, soff + c] += Σ_b grad[b, j, doff + c]`
   * (accumulates +=), then zeroes rows 0..n−1 of every sequence of `grad` (B,T,ldd) over their
   * whole width (writes = 0), so nothing flows on through the rows that were overwritten.
   */
  rowsGrad(batch: Batch, grad: Tensor, dsrc: Tensor, s: RowsSpec): void {
    const name = this.#rowsGrad.name;
    checkRows(name, s);
    needSize(name, grad, s.B * s.T * s.ldd, `grad (${s.B},${s.T},${s.ldd})`);
    needSize(name, dsrc, s.n * s.lds, `dsrc (${s.n},${s.lds})`);
    checkLoops(name, s.B + 1, `summing ${s.B} sequences`);
    batch.dispatch(this.#rowsGrad, [grad, dsrc], rowsParams(s, false), grid(s.n * s.ldd, 256));
  }

  /** `out = act(x)` elementwise (writes =). */
  actForward(batch: Batch, act: AdapterActivation, x: Tensor, out: Tensor): void {
    const n = sameSize(this.#actFwd.name, x, out);
    const params = fields(0, n, mode(act));
    batch.dispatch(this.#actFwd, [x, out], params, grid(n, 256));
  }

  /** `dx = dy · act'(x)` elementwise (writes =). */
  actBackward(batch: Batch, act: AdapterActivation, x: Tensor, dy: Tensor, dx: Tensor): void {
    const n = sameSize(this.#actBwd.name, x, dy, dx);
    const params = fields(0, n, mode(act));
    batch.dispatch(this.#actBwd, [x, dx, dy], params, grid(n, 256));
  }
}

/** The 12 u32 fields of the WGSL `Params` struct (m, n, mode, flag, nb, t, nv, ldd, doff, w, lds, soff), unused ones 0. */
function fields(...values: number[]): ArrayBuffer {
  const p = new Params(12);
  for (let i = 0; i < 12; i++) p.u32(values[i] ?? 0);
  return p.bytes;
}

function mode(act: AdapterActivation): number {
  const i = ADAPTER_ACTIVATIONS.indexOf(act);
  if (i < 0) {
    throw new RangeError(
      `Cannot run kernel "peft.act": unknown activation "${act}" (known: ${
        ADAPTER_ACTIVATIONS.join(", ")
      })`,
    );
  }
  return i;
}

function rowsParams(s: RowsSpec, add: boolean): ArrayBuffer {
  return fields(0, 0, 0, add ? 1 : 0, s.B, s.T, s.n, s.ldd, s.doff, s.w, s.lds, s.soff);
}

function checkRows(name: string, s: RowsSpec): void {
  positive(name, { B: s.B, T: s.T, n: s.n, ldd: s.ldd, w: s.w, lds: s.lds });
  if (s.n > s.T) {
    throw new RangeError(`Cannot run kernel "${name}": n=${s.n} virtual rows exceed T=${s.T}`);
  }
  if (!(Number.isInteger(s.doff) && s.doff >= 0 && s.doff + s.w <= s.ldd)) {
    throw new RangeError(
      `Cannot run kernel "${name}": columns ${s.doff}..${
        s.doff + s.w
      } exceed the destination row of ${s.ldd}`,
    );
  }
  if (!(Number.isInteger(s.soff) && s.soff >= 0 && s.soff + s.w <= s.lds)) {
    throw new RangeError(
      `Cannot run kernel "${name}": columns ${s.soff}..${
        s.soff + s.w
      } exceed the source row of ${s.lds}`,
    );
  }
}

function positive(name: string, dims: Record<string, number>): void {
  for (const [k, v] of Object.entries(dims)) {
    if (!(Number.isInteger(v) && v > 0)) {
      throw new RangeError(`Cannot run kernel "${name}": ${k}=${v} must be a positive integer`);
    }
  }
}

function exact(name: string, t: Tensor, n: number, what: string): void {
  if (t.size !== n) {
    throw new RangeError(
      `Cannot run kernel "${name}": tensor "${t.label}" (${what}) has ${t.size} elements, expected ${n}`,
    );
  }
}
