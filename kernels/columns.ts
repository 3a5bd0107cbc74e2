/**
 * Column blocks between row-major matrices (see kernels/columns.wgsl): `copy` writes
 * `dst[r, doff + c] = src[r, soff + c]`, `add` accumulates `+=`, for r < rows, c < w, with row
 * strides `lds` and `ldd`. The Llama family packs its q, k and v projections into the attention's
 * (BT,(H+2Hkv)·d) layout with it, splits the gradient back, and sums the input gradients of
 * projections that read the same input.
 *
 * @module
 */

import type { Batch, Gpu, Kernel } from "../runtime/mod.ts";
import type { Tensor } from "../runtime/tensor.ts";
import { grid, needSize, Params } from "./common.ts";
import code from "./columns.wgsl" with { type: "text" };

const FILE = "kernels/columns.wgsl";

/** Where a block of columns sits: `rows` rows of `w` columns, row strides and first columns. */
export interface ColumnBlock {
  /** Rows. */
  rows: number;
  /** Columns copied per row. */
  w: number;
  /** Row stride of the source (default w). */
  lds?: number;
  /** First source column (default 0). */
  soff?: number;
  /** Row stride of the destination (default w). */
  ldd?: number;
  /** First destination column (default 0). */
  doff?: number;
}

/**
 * The column-block kernels.
 *
 * @example
 * ```ts
 * import { Columns, Gpu } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const cols = await Columns.create(gpu);
 * // Two rows of k = (1, 2) and (3, 4) into columns 1..2 of a (2, 4) buffer.
 * const k = gpu.tensor([2, 2], new Float32Array([1, 2, 3, 4]));
 * const qkv = gpu.tensor([2, 4]);
 * const batch = gpu.batch();
 * cols.copy(batch, k, qkv, { rows: 2, w: 2, ldd: 4, doff: 1 });
 * await batch.submit();
 * const [y] = await gpu.read([qkv]);
 * if (y.join() !== "0,1,2,0,0,3,4,0") throw new Error(`${y}`);
 * for (const t of [k, qkv]) t.release();
 * ```
 */
export class Columns {
  readonly #copy: Kernel;
  readonly #add: Kernel;

  private constructor(copy: Kernel, add: Kernel) {
    this.#copy = copy;
    this.#add = add;
  }

  /** Compiles (or fetches from the cache) the kernels. */
  static async create(gpu: Gpu): Promise<Columns> {
    const k = (entry: string) =>
      gpu.kernel({
        name: `columns.${entry}`,
        file: FILE,
        code,
        entry,
        bindings: ["uniform", "read", "write"],
      });
    const [copy, add] = await Promise.all([k("copy"), k("add")]);
    return new Columns(copy, add);
  }

  /** `dst[r, doff + c] = src[r, soff + c]` (writes =). */
  copy(batch: Batch, src: Tensor, dst: Tensor, block: ColumnBlock): void {
    this.#run(this.#copy, batch, src, dst, block);
  }

  /** `dst[r, doff + c] += src[r, soff + c]` (accumulates +=). */
  add(batch: Batch, src: Tensor, dst: Tensor, block: ColumnBlock): void {
    this.#run(this.#add, batch, src, dst, block);
  }

  #run(kernel: Kernel, batch: Batch, src: Tensor, dst: Tensor, b: ColumnBlock): void {
    const { rows, w } = b, lds = b.lds ?? w, soff = b.soff ?? 0, ldd = b.ldd ?? w;
    const doff = b.doff ?? 0;
    for (const [key, v] of Object.entries({ rows, w, lds, soff, ldd, doff })) {
      if (!Number.isInteger(v) || v < 0) {
        throw new RangeError(
          `Cannot run kernel "${kernel.name}": ${key}=${v} must be an integer ≥ 0`,
        );
      }
    }
    if (soff + w > lds || doff + w > ldd) {
      throw new RangeError(
        `Cannot run kernel "${kernel.name}": columns ${soff}..${
          soff + w
        } of rows of ${lds} (source) or ${doff}..${
          doff + w
        } of rows of ${ldd} (destination) fall outside their rows`,
      );
    }
    if (rows === 0 || w === 0) return;
    needSize(kernel.name, src, (rows - 1) * lds + soff + w, `src (${rows},${lds})`);
    needSize(kernel.name, dst, (rows - 1) * ldd + doff + w, `dst (${rows},${ldd})`);
    const n = rows * w;
    const params = new Params().u32(n).u32(w).u32(lds).u32(soff).u32(ldd).u32(doff).bytes;
    batch.dispatch(kernel, [src, dst], params, grid(n, 256));
  }
}
