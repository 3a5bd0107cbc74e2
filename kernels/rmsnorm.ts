/**
 * RMSNorm over the last dimension, as Hugging Face's `LlamaRMSNorm` computes it in f32:
 * `out = weight·(x·rstd)` with `rstd = 1/√(mean(x²) + eps)`, no bias and no mean subtraction.
 * Forward saves rstd for backward. Backward accumulates `dx +=` (it sums into the residual
 * stream's gradient) and `dweight +=` (skipped for a frozen weight, passed `null`).
 *
 * @module
 */

import type { Batch, BindingKind, Gpu, Kernel } from "../runtime/mod.ts";
import type { Tensor } from "../runtime/tensor.ts";
import { checkLoops, grid, LOOP_CAP, needSize, Params } from "./common.ts";
import code from "./rmsnorm.wgsl" with { type: "text" };

const FILE = "kernels/rmsnorm.wgsl";
/** Invocations per row in forward/backward (WG in rmsnorm.wgsl). */
const ROW_GROUP = 64;
/** Invocations (columns) per workgroup in the dweight kernels. */
const COL_GROUP = 64;
/** dweight is summed in at most this many row chunks, then the chunks are summed. */
const MAX_CHUNKS = 256;
/** The fewest rows a chunk holds (fewer chunks for small N, so stage 2 stays short). */
const MIN_ROWS_PER_CHUNK = 64;
/** Invocations per workgroup of the rows variant (one row each). */
const ROWS_GROUP = 64;
/** Loop iterations the rows variant may spend on compiler-made loops besides its own. */
const ROWS_SLACK = 128;
/** Passes over a row in each of forward and backward (both variants). */
const PASSES = 2;

/**
 * Which forward/backward kernels run:
 * - `"workgroup"`: a 64-wide workgroup per row, reducing through workgroup memory; any C.
 * - `"rows"`: one invocation per row with vec4 loads, no barriers (fastest on CPU adapters); needs
 *   C a multiple of 4 and 2·(C/4 + 1) + 128 ≤ 65,535 loop iterations (C ≤ 130,808).
 * - `"auto"` (default): rows on a software adapter where C allows, workgroup otherwise.
 */
export type RMSNormVariant = "auto" | "workgroup" | "rows";

/** Options for {@linkcode RMSNorm.create}. */
export interface RMSNormOptions {
  /** Which kernels run (default `"auto"`). */
  variant?: RMSNormVariant;
}

/**
 * The RMSNorm kernels (Llama, SmolLM2, Qwen2).
 *
 * @example
 * ```ts
 * import { Gpu, RMSNorm } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const rms = await RMSNorm.create(gpu);
 * const x = gpu.tensor([2, 2], new Float32Array([3, 4, 1, -1]));
 * const weight = gpu.tensor([2], new Float32Array([1, 2]));
 * const out = gpu.tensor([2, 2]), rstd = gpu.tensor([2]);
 * const batch = gpu.batch();
 * rms.forward(batch, x, weight, out, rstd, 2, 2, 0);
 * await batch.submit();
 * // Row 0: mean(x²) = 12.5, so rstd = 1/√12.5 and out = [3, 8]/√12.5; row 1: out = [1, -2].
 * const [y, r] = await gpu.read([out, rstd]);
 * if (Math.abs(y[1] - 8 / Math.sqrt(12.5)) > 1e-5 || Math.abs(y[3] + 2) > 1e-5 || r[1] !== 1) {
 *   throw new Error("rmsnorm failed");
 * }
 * for (const t of [x, weight, out, rstd]) t.release();
 * rms.release();
 * ```
 */
export class RMSNorm {
  readonly #gpu: Gpu;
  readonly #fwd: Kernel;
  readonly #bwd: Kernel;
  readonly #partial: Kernel;
  readonly #sum: Kernel;
  readonly #fwdRows: Kernel;
  readonly #bwdRows: Kernel;
  readonly #variant: RMSNormVariant;
  #scratch: Tensor | undefined;
  // Outgrown scratch tensors: a batch recorded earlier may still bind them, so they are only
  // returned to the pool by release().
  readonly #retired: Tensor[] = [];

  private constructor(gpu: Gpu, kernels: Kernel[], variant: RMSNormVariant) {
    this.#gpu = gpu;
    [this.#fwd, this.#bwd, this.#partial, this.#sum, this.#fwdRows, this.#bwdRows] = kernels;
    this.#variant = variant;
  }

  /**
   * Compiles (or fetches from the cache) the kernels. `options.variant` forces one variant (tests
   * use it to check both); the default picks per adapter and shape.
   */
  static async create(gpu: Gpu, options: RMSNormOptions = {}): Promise<RMSNorm> {
    const spec = (entry: string, read: number[], write: number[]) =>
      gpu.kernel({
        name: `rmsnorm.${entry}`,
        file: FILE,
        code,
        entry,
        bindings: layout(read, write),
      });
    // Binding numbers as declared in rmsnorm.wgsl.
    const kernels = await Promise.all([
      spec("forward", [1, 2], [3, 4]),
      spec("backward", [1, 2, 5, 6], [7]),
      spec("dweight_partial", [1, 5, 6], [8]),
      spec("dweight_sum", [9], [10]),
      spec("forward_rows", [11, 12], [4, 13]),
      spec("backward_rows", [6, 11, 12, 14], [15]),
    ]);
    const variant = options.variant ?? "auto";
    return new RMSNorm(
      gpu,
      kernels,
      variant === "auto" && !gpu.isSoftware ? "workgroup" : variant,
    );
  }

  /**
   * x is (N,C), weight (C): writes out (N,C) `= weight·(x·rstd)` and rstd (N)
   * `= 1/√(mean(x²) + eps)` for backward. `eps` is the config's `rms_norm_eps` (Llama: 1e-6 or 1e-5).
   */
  forward(
    batch: Batch,
    x: Tensor,
    weight: Tensor,
    out: Tensor,
    rstd: Tensor,
    N: number,
    C: number,
    eps: number,
  ): void {
    const name = "rmsnorm.forward";
    checkShape(name, N, C);
    if (!(eps >= 0 && eps < Infinity)) {
      throw new RangeError(`Cannot run kernel "${name}": eps must be finite and ≥ 0, got ${eps}`);
    }
    const rows = this.#useRows(name, C);
    if (!rows) checkLoops(name, rowLoops(C), `a row of C=${C}`);
    needSize(name, x, N * C, "x (N,C)");
    needSize(name, weight, C, "weight (C)");
    needSize(name, out, N * C, "out (N,C)");
    needSize(name, rstd, N, "rstd (N)");
    if (rows) {
      batch.dispatch(this.#fwdRows, [rstd, x, weight, out], params(N, C, eps), grid(N, ROWS_GROUP));
    } else {
      batch.dispatch(this.#fwd, [x, weight, out, rstd], params(N, C, eps), grid(N, 1));
    }
  }

  /**
   * dout, x are (N,C), weight (C), rstd (N) from forward: accumulates dx (N,C) `+=`, and
   * dweight (C) `+= Σ_rows dout·x·rstd` unless passed `null` (frozen).
   */
  backward(
    batch: Batch,
    dout: Tensor,
    x: Tensor,
    weight: Tensor,
    rstd: Tensor,
    dx: Tensor,
    dweight: Tensor | null,
    N: number,
    C: number,
  ): void {
    const name = "rmsnorm.backward";
    checkShape(name, N, C);
    const rows = this.#useRows(name, C);
    if (!rows) checkLoops(name, rowLoops(C), `a row of C=${C}`);
    const rowsPerChunk = Math.max(MIN_ROWS_PER_CHUNK, Math.ceil(N / MAX_CHUNKS));
    const chunks = Math.ceil(N / rowsPerChunk);
    if (dweight) checkLoops(name, rowsPerChunk + 1, `summing dweight over N=${N} rows`);
    needSize(name, dout, N * C, "dout (N,C)");
    needSize(name, x, N * C, "x (N,C)");
    needSize(name, weight, C, "weight (C)");
    needSize(name, rstd, N, "rstd (N)");
    needSize(name, dx, N * C, "dx (N,C)");
    if (dweight) needSize(name, dweight, C, "dweight (C)");

    if (rows) {
      batch.dispatch(this.#bwdRows, [rstd, x, weight, dout, dx], params(N, C), grid(N, ROWS_GROUP));
    } else {
      batch.dispatch(this.#bwd, [x, weight, dout, rstd, dx], params(N, C), grid(N, 1));
    }
    if (!dweight) return;
    const scratch = this.#scratchFor(chunks * C, MAX_CHUNKS * C);
    const columnGroups = Math.ceil(C / COL_GROUP);
    const sums = params(N, C, 0, chunks, rowsPerChunk);
    batch.dispatch(this.#partial, [x, dout, rstd, scratch], sums, [columnGroups, chunks]);
    batch.dispatch(this.#sum, [scratch, dweight], sums, columnGroups);
  }

  /** The variant that runs rows of C (`"rows"` or `"workgroup"`). */
  variantFor(C: number): "workgroup" | "rows" {
    return this.#useRows("rmsnorm", C) ? "rows" : "workgroup";
  }

  /** Whether the rows variant runs rows of C; throws when it is forced on a C it cannot run. */
  #useRows(kernel: string, C: number): boolean {
    if (this.#variant === "workgroup") return false;
    const loops = PASSES * (C / 4 + 1) + ROWS_SLACK;
    if (this.#variant === "auto") return C % 4 === 0 && loops <= LOOP_CAP;
    if (C % 4 !== 0) {
      throw new RangeError(
        `Cannot run kernel "${kernel} (rows variant)": C=${C} is not a multiple of 4`,
      );
    }
    checkLoops(`${kernel} (rows variant)`, loops, `a row of C=${C}`);
    return true;
  }

  /** Returns the scratch memory of backward (dweight partial sums) to the pool. */
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
    this.#scratch = this.#gpu.tensor([grown], undefined, "rmsnorm.scratch");
    return this.#scratch;
  }
}

/** The uniform block of rmsnorm.wgsl; every entry point gets all six fields (its struct size). */
function params(N: number, C: number, eps = 0, chunks = 0, rowsPerChunk = 0): ArrayBuffer {
  const fields = new Params().u32(N).u32(C).f32(eps);
  return fields.u32(chunks).u32(rowsPerChunk).f32(1 / C).bytes;
}

function checkShape(kernel: string, N: number, C: number): void {
  if (!Number.isInteger(N) || !Number.isInteger(C) || N < 1 || C < 1) {
    throw new RangeError(
      `Cannot run kernel "${kernel}": N and C must be positive integers, got N=${N}, C=${C}`,
    );
  }
}

/**
 * Loop iterations of one workgroup-variant row invocation: two strided passes over C and one
 * 6-step workgroup sum, each loop also spending one iteration on its exit test (as Mesa counts them).
 */
function rowLoops(C: number): number {
  return PASSES * (Math.ceil(C / ROW_GROUP) + 1) + (Math.log2(ROW_GROUP) + 1);
}

/** Binding kinds by binding number: 0 is the uniform block, `read` and `write` the storage ones. */
function layout(read: number[], write: number[]): (BindingKind | null)[] {
  const kinds: (BindingKind | null)[] = new Array(Math.max(...read, ...write) + 1).fill(null);
  kinds[0] = "uniform";
  for (const b of read) kinds[b] = "read";
  for (const b of write) kinds[b] = "write";
  return kinds;
}
