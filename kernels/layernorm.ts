/**
 * LayerNorm over the last dimension, as GPT-2 uses it: `out = (x − mean)·rstd·weight + bias` with
 * the biased variance and `rstd = 1/√(var + eps)`. Forward saves mean and rstd for backward, as
 * llm.c's `layernorm_forward` does. Backward accumulates `dx +=` (it sums into the residual
 * stream's gradient) and `dweight +=`, `dbias +=` (skipped for a frozen parameter, passed `null`).
 *
 * @module
 */

import type { Batch, BindingKind, Gpu, Kernel } from "../runtime/mod.ts";
import type { Tensor } from "../runtime/tensor.ts";
import { checkLoops, grid, LOOP_CAP, needSize, Params } from "./common.ts";
import code from "./layernorm.wgsl" with { type: "text" };

const FILE = "kernels/layernorm.wgsl";
/** Invocations per row in forward/backward (WG in layernorm.wgsl). */
const ROW_GROUP = 64;
/** Invocations (columns) per workgroup in the dparams kernels. */
const COL_GROUP = 64;
/** dweight/dbias are summed in at most this many row chunks, then the chunks are summed. */
const MAX_CHUNKS = 256;
/** The fewest rows a chunk holds (fewer chunks for small N, so stage 2 stays short). */
const MIN_ROWS_PER_CHUNK = 64;
/** Invocations per workgroup of the rows variant (one row each). */
const ROWS_GROUP = 64;
/** Loop iterations the rows variant may spend on compiler-made loops besides its own. */
const ROWS_SLACK = 128;

/**
 * Which forward/backward kernels run:
 * - `"workgroup"`: a 64-wide workgroup per row, reducing through workgroup memory; any C.
 * - `"rows"`: one invocation per row with vec4 loads, no barriers (fastest on CPU adapters); needs
 *   C a multiple of 4 and 3·(C/4 + 1) + 128 ≤ 65,535 loop iterations (C ≤ 87,204).
 * - `"auto"` (default): rows on a software adapter where C allows, workgroup otherwise.
 */
export type LayerNormVariant = "auto" | "workgroup" | "rows";

/** Options for {@linkcode LayerNorm.create}. */
export interface LayerNormOptions {
  /** Which kernels run (default `"auto"`). */
  variant?: LayerNormVariant;
}

/**
 * The LayerNorm kernels.
 *
 * @example
 * ```ts
 * import { Gpu, LayerNorm } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const ln = await LayerNorm.create(gpu);
 * const x = gpu.tensor([2, 3], new Float32Array([1, 2, 3, 5, 5, 8]));
 * const weight = gpu.tensor([3], new Float32Array([1, 1, 1]));
 * const bias = gpu.tensor([3], new Float32Array([0, 0, 0]));
 * const out = gpu.tensor([2, 3]), mean = gpu.tensor([2]), rstd = gpu.tensor([2]);
 * const batch = gpu.batch();
 * ln.forward(batch, x, weight, bias, out, mean, rstd, 2, 3);
 * await batch.submit();
 * const [y, mu] = await gpu.read([out, mean]); // y[0..3] ≈ [-1.22, 0, 1.22], mu = [2, 6]
 * if (Math.abs(y[2] - 1.2247) > 1e-3 || mu[1] !== 6) throw new Error("layernorm failed");
 * for (const t of [x, weight, bias, out, mean, rstd]) t.release();
 * ln.release();
 * ```
 */
export class LayerNorm {
  readonly #gpu: Gpu;
  readonly #fwd: Kernel;
  readonly #bwd: Kernel;
  readonly #partial: Kernel;
  readonly #sum: Kernel;
  readonly #fwdRows: Kernel;
  readonly #bwdRows: Kernel;
  readonly #variant: LayerNormVariant;
  #scratch: Tensor | undefined;
  // Outgrown scratch tensors: a batch recorded earlier may still bind them, so they are only
  // returned to the pool by release().
  readonly #retired: Tensor[] = [];

  private constructor(gpu: Gpu, kernels: Kernel[], variant: LayerNormVariant) {
    this.#gpu = gpu;
    [this.#fwd, this.#bwd, this.#partial, this.#sum, this.#fwdRows, this.#bwdRows] = kernels;
    this.#variant = variant;
  }

  /**
   * Compiles (or fetches from the cache) the kernels. `options.variant` forces one variant (tests
   * use it to check both); the default picks per adapter and shape.
   */
  static async create(gpu: Gpu, options: LayerNormOptions = {}): Promise<LayerNorm> {
    const spec = (entry: string, read: number[], write: number[]) =>
      gpu.kernel({
        name: `layernorm.${entry}`,
        file: FILE,
        code,
        entry,
        bindings: layout(read, write),
      });
    // Binding numbers as declared in layernorm.wgsl.
    const kernels = await Promise.all([
      spec("forward", [1, 2, 3], [4, 5, 6]),
      spec("backward", [1, 2, 7, 8, 9], [10]),
      spec("dparams_partial", [1, 7, 8, 9], [11]),
      spec("dparams_sum", [12], [13]),
      spec("forward_rows", [14, 15, 16], [5, 6, 17]),
      spec("backward_rows", [8, 9, 14, 15, 18], [19]),
    ]);
    const variant = options.variant ?? "auto";
    return new LayerNorm(
      gpu,
      kernels,
      variant === "auto" && !gpu.isSoftware ? "workgroup" : variant,
    );
  }

  /**
   * x is (N,C), weight and bias (C): writes out (N,C) `= (x − mean)·rstd·weight + bias`, and
   * mean (N), rstd (N) for backward. `eps` is added to the biased variance (GPT-2: 1e-5).
   */
  forward(
    batch: Batch,
    x: Tensor,
    weight: Tensor,
    bias: Tensor,
    out: Tensor,
    mean: Tensor,
    rstd: Tensor,
    N: number,
    C: number,
    eps = 1e-5,
  ): void {
    const name = "layernorm.forward";
    checkShape(name, N, C);
    if (!(eps >= 0 && eps < Infinity)) {
      throw new RangeError(`Cannot run kernel "${name}": eps must be finite and ≥ 0, got ${eps}`);
    }
    const rows = this.#useRows(name, C, 3);
    if (!rows) checkLoops(name, rowLoops(C, 3, 2), `a row of C=${C}`);
    needSize(name, x, N * C, "x (N,C)");
    needSize(name, weight, C, "weight (C)");
    needSize(name, bias, C, "bias (C)");
    needSize(name, out, N * C, "out (N,C)");
    needSize(name, mean, N, "mean (N)");
    needSize(name, rstd, N, "rstd (N)");
    if (rows) {
      batch.dispatch(
        this.#fwdRows,
        [mean, rstd, x, weight, bias, out],
        params(N, C, eps),
        grid(N, ROWS_GROUP),
      );
    } else {
      batch.dispatch(this.#fwd, [x, weight, bias, out, mean, rstd], params(N, C, eps), grid(N, 1));
    }
  }

  /**
   * dout, x are (N,C), weight (C), mean and rstd (N) from forward: accumulates dx (N,C) `+=`, and
   * dweight (C) `+= Σ_rows dout·norm` and dbias (C) `+= Σ_rows dout` unless passed `null` (frozen).
   */
  backward(
    batch: Batch,
    dout: Tensor,
    x: Tensor,
    weight: Tensor,
    mean: Tensor,
    rstd: Tensor,
    dx: Tensor,
    dweight: Tensor | null,
    dbias: Tensor | null,
    N: number,
    C: number,
  ): void {
    const name = "layernorm.backward";
    checkShape(name, N, C);
    const rows = this.#useRows(name, C, 2);
    if (!rows) checkLoops(name, rowLoops(C, 2, 1), `a row of C=${C}`);
    const rowsPerChunk = Math.max(MIN_ROWS_PER_CHUNK, Math.ceil(N / MAX_CHUNKS));
    const chunks = Math.ceil(N / rowsPerChunk);
    if (dweight || dbias) {
      checkLoops(name, rowsPerChunk + 1, `summing dweight/dbias over N=${N} rows`);
    }
    needSize(name, dout, N * C, "dout (N,C)");
    needSize(name, x, N * C, "x (N,C)");
    needSize(name, weight, C, "weight (C)");
    needSize(name, mean, N, "mean (N)");
    needSize(name, rstd, N, "rstd (N)");
    needSize(name, dx, N * C, "dx (N,C)");
    if (dweight) needSize(name, dweight, C, "dweight (C)");
    if (dbias) needSize(name, dbias, C, "dbias (C)");

    if (rows) {
      batch.dispatch(
        this.#bwdRows,
        [mean, rstd, x, weight, dout, dx],
        params(N, C),
        grid(N, ROWS_GROUP),
      );
    } else {
      batch.dispatch(this.#bwd, [x, weight, dout, mean, rstd, dx], params(N, C), grid(N, 1));
    }
    if (!dweight && !dbias) return;
    const scratch = this.#scratchFor(2 * chunks * C, 2 * MAX_CHUNKS * C);
    const columnGroups = Math.ceil(C / COL_GROUP);
    batch.dispatch(
      this.#partial,
      [x, dout, mean, rstd, scratch],
      params(N, C, 0, chunks, rowsPerChunk),
      [
        columnGroups,
        chunks,
      ],
    );
    if (dweight) {
      batch.dispatch(
        this.#sum,
        [scratch, dweight],
        params(N, C, 0, chunks, rowsPerChunk, 0),
        columnGroups,
      );
    }
    if (dbias) {
      batch.dispatch(
        this.#sum,
        [scratch, dbias],
        params(N, C, 0, chunks, rowsPerChunk, chunks * C),
        columnGroups,
      );
    }
  }

  /** The variant that runs rows of C (`"rows"` or `"workgroup"`). */
  variantFor(C: number): "workgroup" | "rows" {
    return this.#useRows("layernorm", C, 3) ? "rows" : "workgroup";
  }

  /**
   * Whether the rows variant runs rows of C (`passes` passes over the row); throws when it is
   * forced on a C it cannot run.
   */
  #useRows(kernel: string, C: number, passes: number): boolean {
    if (this.#variant === "workgroup") return false;
    const loops = passes * (C / 4 + 1) + ROWS_SLACK;
    if (this.#variant === "auto") return C % 4 === 0 && loops <= LOOP_CAP;
    if (C % 4 !== 0) {
      throw new RangeError(
        `Cannot run kernel "${kernel} (rows variant)": C=${C} is not a multiple of 4`,
      );
    }
    checkLoops(`${kernel} (rows variant)`, loops, `a row of C=${C}`);
    return true;
  }

  /** Returns the scratch memory of backward (dweight/dbias partial sums) to the pool. */
  release(): void {
    for (const t of this.#retired.splice(0)) t.release();
    this.#scratch?.release();
    this.#scratch = undefined;
  }

  /**
   * A scratch tensor of at least `size` elements. It grows at least twofold (up to `most`, the
   * largest size this C can need), so a few calls reach the steady size.
   */
  #scratchFor(size: number, most: number): Tensor {
    const old = this.#scratch;
    if (old && old.size >= size) return old;
    if (old) this.#retired.push(old);
    const grown = Math.max(size, Math.min(2 * (old?.size ?? 0), most));
    this.#scratch = this.#gpu.tensor([grown], undefined, "layernorm.scratch");
    return this.#scratch;
  }
}

/** The uniform block of layernorm.wgsl; every entry point gets all seven fields (its struct size). */
function params(
  N: number,
  C: number,
  eps = 0,
  chunks = 0,
  rowsPerChunk = 0,
  base = 0,
): ArrayBuffer {
  const fields = new Params().u32(N).u32(C).f32(eps);
  return fields.u32(chunks).u32(rowsPerChunk).u32(base).f32(1 / C).bytes;
}

function checkShape(kernel: string, N: number, C: number): void {
  if (!Number.isInteger(N) || !Number.isInteger(C) || N < 1 || C < 1) {
    throw new RangeError(
      `Cannot run kernel "${kernel}": N and C must be positive integers, got N=${N}, C=${C}`,
    );
  }
}

/**
 * Loop iterations of one row invocation: `passes` strided passes over C and `reductions` 6-step
 * workgroup sums, each loop also spending one iteration on its exit test (as Mesa counts them).
 */
function rowLoops(C: number, passes: number, reductions: number): number {
  return passes * (Math.ceil(C / ROW_GROUP) + 1) + reductions * (Math.log2(ROW_GROUP) + 1);
}

/** Binding kinds by binding number: 0 is the uniform block, `read` and `write` the storage ones. */
function layout(read: number[], write: number[]): (BindingKind | null)[] {
  const kinds: (BindingKind | null)[] = new Array(Math.max(...read, ...write) + 1).fill(null);
  kinds[0] = "uniform";
  for (const b of read) kinds[b] = "read";
  for (const b of write) kinds[b] = "write";
  return kinds;
}
