/**
 * Strided, batched GEMM `C = alpha · op(A) · op(B) (+ bias) (+ beta · C)` and the products a
 * linear layer needs, in two kernel variants behind one wrapper:
 *
 * - `"software"` (CPU adapters: Mesa's lavapipe/llvmpipe): WGSL generated here from a template.
 *   Each invocation owns a TM×TN register tile of C and reads A and B straight from storage with
 *   vec4 loads along each operand's contiguous dimension (scalar loads where the offset, row stride
 *   or batch strides are not multiples of 4); no workgroup memory, no barriers. On a CPU driver every
 *   buffer load is a per-lane gather and a barrier is a coroutine switch, so what pays is the
 *   number of loads per multiply-add: (TM + TN) vec4 loads feed 4·TM·TN multiply-adds.
 * - `"hardware"` (real GPUs): `gemm_shared` in matmul.wgsl, 64×64 blocks staged through workgroup
 *   memory in K-tiles of 16, a 4×4 register tile per invocation.
 * - `"texture"` (CPU adapters, the default there): the same register-tiled kernel reading both operands with
 *   `textureLoad` from `rgba32float` textures. Each GEMM first repacks op(A)'s and op(B)'s stored
 *   matrices into scratch textures (one small "pack" dispatch each: rows and columns zero-padded to
 *   multiples of 4, batch entries stacked vertically), so any offset, row stride or batch stride
 *   works. A GEMM whose packed operand would exceed `maxTextureDimension2D` runs the `"software"`
 *   kernels instead.
 *
 * Precision `"f16-storage"` (opt-in, needs `shader-f16`, register-tiled variants only): the same
 * repacking writes the operands as f16 into scratch storage buffers, read as `vec4<f16>` and
 * accumulated in f32. It halves the bytes read, at f16's rounding of every operand (unit roundoff
 * 2⁻¹¹; magnitudes over 65,504 become infinite). On lavapipe it is slower than f32 (the f16 → f32
 * conversions cost more than the halved loads save): see bench/RESULTS.md for speed and accuracy.
 *
 * A B operand stored as packed halves (a frozen base weight in f16 or bf16, two per u32 word:
 * runtime/tensor.ts; `halfB` at create) is widened exactly to f32 where each variant reads B: by the
 * operand loads of the software and hardware kernels, by the pack step of the texture and
 * f16-storage paths (never a buffer-to-texture copy). Accumulation stays f32, so the result is the
 * f32 GEMM of the rounded weights. A, C and the bias are always f32.
 *
 * Shapes: op(A) is (M,K), op(B) is (K,N), C is (M,N), bias is (N). Linear layers store W as
 * (in, out) like Hugging Face GPT-2's Conv1D: `y = x·W + b`.
 *
 * @module
 */

import type { Batch, Binding, Gpu, Kernel, TextureCopy } from "../runtime/mod.ts";
import type { HalfDtype, Tensor } from "../runtime/tensor.ts";
import { checkLoops, grid, LOOP_CAP, needSize, Params } from "./common.ts";
import { GemmTiled } from "./gemm_tiled.ts";
import code from "./matmul.wgsl" with { type: "text" };

const FILE = "kernels/matmul.wgsl";
const GEN_FILE = "kernels/matmul.ts (generated)";

/** Which kernel family a {@linkcode Matmul} runs. */
export type MatmulVariant = "software" | "hardware" | "texture";

/**
 * The register tile when none is given: 16×16, except on SwiftShader (the CPU WebGPU of Chrome
 * without a GPU), whose JIT takes tens of seconds to compile each 256-accumulator kernel: in
 * headless Chromium on this 2-vCPU machine, under load, `Matmul.create` took 197 s with 16×16
 * and 21 s with 8×8 (web/ start-up), so a page would sit for minutes before its first step.
 */
function defaultTile(gpu: Gpu): readonly [number, number] {
  return gpu.adapter.info?.architecture === "swiftshader" ? [8, 8] : [16, 16];
}

/** Options for {@linkcode Matmul.create}. */
export interface MatmulOptions {
  /**
   * Kernel family; default `"texture"` on CPU adapters (`gpu.isSoftware`: model A trains 7–9%
   * faster per CPU second than with `"software"`, model B 17–23%; bench/RESULTS.md), else
   * `"hardware"`.
   */
  variant?: MatmulVariant;
  /**
   * Register tile `[TM, TN]` of the software and texture variants, both multiples of 4 (default
   * `[16, 16]`, the fastest measured here once each accumulator takes its four multiply-adds in a
   * row; see bench/RESULTS.md; `[8, 8]` on SwiftShader, whose JIT is slow on large tiles). For
   * benchmarks; ignored by the hardware variant.
   */
  tile?: readonly [number, number];
  /**
   * Operand precision: `"f32"` (default) or `"f16-storage"`: every GEMM first converts op(A) and
   * op(B) to f16 scratch buffers, read as `vec4<f16>`, with f32 accumulation, bias and output.
   * Needs `gpu.hasF16` and the `"software"` or `"texture"` variant (it replaces the textures).
   */
  precision?: "f32" | "f16-storage";
  /**
   * Compile kernels whose B operand is a tensor of packed halves of these dtypes (frozen base
   * weights stored in f16 or bf16: the linear layers' W, the head's W); default none. Such a B is
   * widened to f32 as it is read (by the pack step of the texture and f16-storage paths, by the
   * operand loads of the others), with f32 accumulation. A half A, C or bias is refused.
   */
  halfB?: readonly HalfDtype[];
}

/**
 * One strided, batched GEMM: `C = alpha · op(A) · op(B) (+ bias) (+ C when accumulate)`.
 * Leading dimensions are row strides in elements of the matrices as stored (A is stored (M,K), or
 * (K,M) when `transA`; B is stored (K,N), or (N,K) when `transB`); they default to packed rows.
 */
export interface GemmSpec {
  /** Left operand. */
  a: Tensor;
  /** Right operand. */
  b: Tensor;
  /** Output. */
  c: Tensor;
  /** Bias (N) added to every row of C, or none. */
  bias?: Tensor | null;
  /** Rows of op(A) and C. */
  m: number;
  /** Columns of op(B) and C. */
  n: number;
  /** Columns of op(A), rows of op(B). */
  k: number;
  /** op(A) = Aᵀ with A stored (K,M). */
  transA?: boolean;
  /** op(B) = Bᵀ with B stored (N,K). */
  transB?: boolean;
  /** Scale of the product (default 1; not applied to the bias). */
  alpha?: number;
  /** Add to C (`+=`, beta 1) instead of overwriting it (`=`, beta 0; C is never read). Default false. */
  accumulate?: boolean;
  /** Element offsets of the first matrix in each tensor (default 0). */
  offsetA?: number;
  /** Element offset into `b`. */
  offsetB?: number;
  /** Element offset into `c`. */
  offsetC?: number;
  /** Element offset into `bias`. */
  offsetBias?: number;
  /** Row stride of A as stored (default its column count: K, or M when transA). */
  lda?: number;
  /** Row stride of B as stored (default N, or K when transB). */
  ldb?: number;
  /** Row stride of C (default N). */
  ldc?: number;
  /**
   * Batch count: a number (one level) or `[outer, inner]` (two levels, batch index
   * `o·inner + i`, e.g. `[B, H]` for attention heads). Default 1.
   */
  batch?: number | readonly [number, number];
  /** Batch strides of A in elements: one per level, `[outer, inner]` (or a number for one level). */
  strideA?: number | readonly [number, number];
  /** Batch strides of B. */
  strideB?: number | readonly [number, number];
  /** Batch strides of C. */
  strideC?: number | readonly [number, number];
  /**
   * A hint that op(A) is triangular in each batch entry: `"lower"` promises op(A)[m][k] = 0 for
   * k > m (causal attention probabilities as A), `"upper"` promises 0 for k < m (their
   * transpose). The register-tiled kernels over packed operands then skip those zero K steps;
   * the result is the same (only exact-zero products are left out). Default none.
   */
  triangularA?: "lower" | "upper";
  /**
   * Only C's lower triangle (n ≤ m, per batch entry) is wanted: register tiles entirely above the
   * diagonal may be skipped and those elements left unwritten (causal attention scores, which
   * the softmax overwrites). Default false.
   */
  lowerC?: boolean;
}

/** Tensors of {@linkcode Matmul.linearBackward}; a null gradient is not computed at all. */
export interface LinearGrads {
  /** Layer input (M,K). */
  x: Tensor;
  /** Weight (K,N) stored (in, out), or (N,K) stored (out, in) with `outIn`. */
  W: Tensor;
  /** W is stored (out, in), as `nn.Linear` stores it (default false: (in, out), as Conv1D). */
  outIn?: boolean;
  /** Gradient of the output (M,N). */
  dy: Tensor;
  /** Input gradient (M,K): written `=` (or `+=` with `accumulateDx`), or null to skip. */
  dx: Tensor | null;
  /** Weight gradient in W's layout, accumulated `+=`, or null (frozen weight). */
  dW: Tensor | null;
  /** Bias gradient (N), accumulated `+=`, or null (no or frozen bias). */
  dBias?: Tensor | null;
  /** Accumulate into dx instead of overwriting it (default false). */
  accumulateDx?: boolean;
}

/** Tensors of {@linkcode Matmul.tiedBackward}; a null gradient is not computed at all. */
export interface TiedGrads {
  /** Input (M,C). */
  x: Tensor;
  /** Tied embedding (V,C). */
  wte: Tensor;
  /** Gradient of the logits (M,V). */
  dlogits: Tensor;
  /** Input gradient (M,C): written `=` (or `+=` with `accumulateDx`), or null to skip. */
  dx: Tensor | null;
  /** Embedding gradient (V,C), accumulated `+=`, or null (frozen). */
  dWte: Tensor | null;
  /** Accumulate into dx instead of overwriting it (default false). */
  accumulateDx?: boolean;
}

const PARAM_FIELDS = 24;
const SW_GROUP = 64;
const HW_BLOCK = 64;
const HW_KTILE = 16;
const BIAS_COLS = 8;
const BIAS_LANES = 32;

/**
 * The GEMM kernels and the linear-layer products built on them.
 *
 * @example
 * ```ts
 * import { Gpu, Matmul } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const mm = await Matmul.create(gpu);
 * // y (2,3) = x (2,2) · W (2,3) + b (3)
 * const x = gpu.tensor([2, 2], new Float32Array([1, 2, 3, 4]), "x");
 * const W = gpu.tensor([2, 3], new Float32Array([1, 0, 1, 0, 1, 1]), "W");
 * const b = gpu.tensor([3], new Float32Array([10, 20, 30]), "b");
 * const y = gpu.tensor([2, 3], undefined, "y");
 * const batch = gpu.batch();
 * mm.linearForward(batch, x, W, b, y, 2, 2, 3);
 * await batch.submit();
 * const out = await y.read(); // [11, 22, 33, 13, 24, 37]
 * if (out[5] !== 37) throw new Error("matmul failed");
 * for (const t of [x, W, b, y]) t.release();
 * ```
 */
export class Matmul {
  /** The kernel family this instance runs. */
  readonly variant: MatmulVariant;
  /** Operand precision (see {@linkcode MatmulOptions.precision}). */
  readonly precision: "f32" | "f16-storage";
  /** Dtypes of packed-half B operands this instance reads (see {@linkcode MatmulOptions.halfB}). */
  readonly halfB: readonly HalfDtype[];
  readonly #gpu: Gpu;
  readonly #gemm: Map<string, Kernel>;
  /** The bias gradient's workgroup tree (any M). */
  readonly #dbias: Kernel;
  /** Software adapters: one invocation per column (M below the loop cap); null on GPUs. */
  readonly #dbiasColumns: Kernel | null;
  /** The tiled GEMM of real GPUs (hardware variant, f32 B), or null. */
  #tiled: GemmTiled | null = null;
  readonly #tm: number;
  readonly #tn: number;
  /** Scratch textures of the texture variant by `slot:width×height`, reused GEMM after GEMM. */
  readonly #textures = new Map<string, { texture: GPUTexture; view: GPUTextureView }>();
  /**
   * Texture variant: fill the operand textures with buffer-to-texture copies where the operand's
   * layout allows it (no zero padding needed, rows 256-byte aligned), instead of the pack kernel.
   * On lavapipe a copy moves 14–43 GB/s, the pack kernel's texel stores ~1 GB/s. On by default;
   * tests switch it off to exercise the pack kernel on the same shapes.
   */
  packByCopy = true;
  /** Scratch f16 buffers of the f16-storage precision, likewise. */
  readonly #scratch = new Map<string, Tensor>();
  #dummy: Tensor | undefined;

  private constructor(
    gpu: Gpu,
    variant: MatmulVariant,
    precision: "f32" | "f16-storage",
    gemm: Map<string, Kernel>,
    dbias: Kernel,
    dbiasColumns: Kernel | null,
    tm: number,
    tn: number,
    halfB: readonly HalfDtype[],
  ) {
    this.#gpu = gpu;
    this.variant = variant;
    this.precision = precision;
    this.halfB = halfB;
    this.#gemm = gemm;
    this.#dbias = dbias;
    this.#dbiasColumns = dbiasColumns;
    this.#tm = tm;
    this.#tn = tn;
  }

  /**
   * Bytes of the scratch operands this instance keeps for reuse: the texture variant's textures
   * (outside `gpu.memory`'s accounting) and the f16 buffers (pooled, so also counted there).
   */
  get scratchBytes(): number {
    let n = 0;
    for (const t of this.#scratch.values()) n += t.byteLength;
    for (const [key] of this.#textures) {
      const [w, h] = key.split(":")[1].split("x").map(Number);
      n += w * h * 16;
    }
    return n;
  }

  /**
   * Compiles (or fetches from the cache) the kernels of the variant picked from `gpu.isSoftware`
   * unless `opts.variant` says which.
   */
  static async create(gpu: Gpu, opts: MatmulOptions = {}): Promise<Matmul> {
    const variant = opts.variant ?? (gpu.isSoftware ? "texture" : "hardware");
    const precision = opts.precision ?? "f32";
    if (precision === "f16-storage" && (variant === "hardware" || !gpu.hasF16)) {
      throw new RangeError(
        `Cannot create Matmul: precision "f16-storage" needs ${
          gpu.hasF16 ? "the software or texture variant" : "a device with shader-f16"
        }`,
      );
    }
    const [tm, tn] = opts.tile ?? defaultTile(gpu);
    if (!(tm > 0 && tn > 0 && tm % 4 === 0 && tn % 4 === 0 && tm * tn <= 256)) {
      throw new RangeError(
        `Cannot create Matmul: tile [${tm}, ${tn}] must be multiples of 4 with at most 256 outputs`,
      );
    }
    const gemmBindings = ["uniform", "read", "read", "read", "write"] as const;
    const specs: [string, Promise<Kernel>][] = [];
    const halves = [...new Set(opts.halfB ?? [])];
    for (const half of halves) {
      if (half !== "f16" && half !== "bf16") {
        throw new RangeError(`Cannot create Matmul: halfB "${half}" is not "f16" or "bf16"`);
      }
    }
    for (const bType of [undefined, ...halves]) {
      const suffix = bType ? `.${bType}B` : "";
      const packed = bType ? { 1: bType } : undefined;
      for (const transA of [false, true]) {
        for (const transB of [false, true]) {
          if (variant === "hardware") {
            const key = layoutKey(transA, transB, false, false);
            specs.push([
              gemmKey(key, bType),
              gpu.kernel({
                name: `matmul.gemm_shared.${key}${suffix}`,
                file: FILE,
                code,
                entry: "gemm_shared",
                bindings: gemmBindings,
                constants: {
                  TRANS_A: Number(transA),
                  TRANS_B: Number(transB),
                  B_DTYPE: bType ? HALF_CODE[bType] : 0,
                },
                packed,
              }),
            ]);
            continue;
          }
          // The texture variant needs these only as a fallback for operands too large for a
          // texture: the scalar-load kernels, which take any alignment, are enough (fewer
          // pipelines to compile at create).
          const vecs = variant === "software" ? [false, true] : [false];
          for (const vecA of vecs) {
            for (const vecB of vecs) {
              const key = layoutKey(transA, transB, vecA, vecB);
              specs.push([
                gemmKey(key, bType),
                gpu.kernel({
                  name: `matmul.gemm_registers.${key}.${tm}x${tn}${suffix}`,
                  file: GEN_FILE,
                  code: softwareGemm({ tm, tn, transA, transB, vecA, vecB, halfB: bType }),
                  entry: "gemm_registers",
                  bindings: gemmBindings,
                  packed,
                }),
              ]);
            }
          }
        }
      }
    }
    const packed = precision === "f16-storage" ? "f16" : variant === "texture" ? "texture" : null;
    if (packed) {
      const src = packed === "f16" ? "f16" : "texture";
      const opBinding = packed === "f16" ? "read" : "texture";
      for (const transA of [false, true]) {
        for (const transB of [false, true]) {
          const layout = layoutKey(transA, transB, true, true);
          const code = softwareGemm({ tm, tn, transA, transB, vecA: true, vecB: true, src });
          // One pipeline per epilogue (bias or not, accumulate or not), fixed at creation.
          for (const epi of EPILOGUES) {
            specs.push([
              `${packed}:${layout}:${epi}`,
              gpu.kernel({
                name: `matmul.gemm_${packed}.${layout}.${tm}x${tn}${epi ? `.${epi}` : ""}`,
                file: GEN_FILE,
                code,
                entry: "gemm_registers",
                bindings: ["uniform", opBinding, opBinding, "read", "write"],
                constants: {
                  STATIC_EPILOGUE: 1,
                  HAS_BIAS: Number(epi.includes("bias")),
                  ACCUMULATE: Number(epi.includes("acc")),
                },
              }),
            ]);
          }
        }
      }
      for (const half of [undefined, ...halves]) {
        for (const vec of [false, true]) {
          const key = gemmKey(`pack:${packed}:${vec ? 4 : 1}`, half);
          specs.push([
            key,
            gpu.kernel({
              name: `matmul.pack_${packed}${vec ? ".vec4" : ""}${half ? `.from_${half}` : ""}`,
              file: GEN_FILE,
              code: packKernel(packed, vec, half),
              entry: "pack",
              bindings: ["uniform", "read", packed === "f16" ? "write" : "storage-texture"],
              packed: half ? { 0: half } : undefined,
            }),
          ]);
        }
      }
    }
    // Software adapters sum each bias column in one invocation (no barriers); GPUs use the
    // workgroup tree. biasBackward falls back to the tree past the loop cap.
    const biasKernel = (entry: "dbias" | "dbias_columns") =>
      gpu.kernel({
        name: `matmul.${entry}`,
        file: FILE,
        code,
        entry,
        bindings: ["uniform", "read", "write"],
      });
    const dbias = biasKernel("dbias");
    const dbiasColumns = variant === "hardware" ? null : biasKernel("dbias_columns");
    const kernels = await Promise.all(specs.map(([, k]) => k));
    const matmul = new Matmul(
      gpu,
      variant,
      precision,
      new Map(specs.map(([key], i) => [key, kernels[i]])),
      await dbias,
      await dbiasColumns,
      tm,
      tn,
      halves,
    );
    // Real GPUs run f32 GEMMs with kernels/gemm_tiled.ts (gemm_shared stays for packed-half B,
    // and for the hardware variant forced on a CPU adapter).
    if (variant === "hardware" && !gpu.isSoftware) matmul.#tiled = await GemmTiled.create(gpu);
    return matmul;
  }

  /**
   * Linear forward `y = x·W (+ bias)` (writes =). x is (M,K), W is (K,N) stored (in, out) like
   * Hugging Face's Conv1D, or (N,K) stored (out, in) like `nn.Linear` with `outIn` (then
   * `y = x·Wᵀ`); bias is (N) or null, y is (M,N).
   */
  linearForward(
    batch: Batch,
    x: Tensor,
    W: Tensor,
    bias: Tensor | null,
    y: Tensor,
    M: number,
    K: number,
    N: number,
    outIn = false,
  ): void {
    const name = "matmul.linearForward";
    exact(name, x, M * K, `x (${M},${K})`);
    exact(name, W, K * N, outIn ? `W (${N},${K})` : `W (${K},${N})`);
    if (bias) exact(name, bias, N, `bias (${N})`);
    exact(name, y, M * N, `y (${M},${N})`);
    this.gemm(batch, { a: x, b: W, c: y, bias, m: M, n: N, k: K, transB: outIn });
  }

  /**
   * Linear backward. x is (M,K), W is (K,N) (or (N,K) with `outIn`), dy is (M,N). Computes only
   * the gradients asked for: `dx (M,K) = dy·Wᵀ` (written =, or += with `accumulateDx`),
   * `dW (K,N) += xᵀ·dy` (with `outIn`: `dW (N,K) += dyᵀ·x`),
   * `dBias (N) += column sums of dy` (both accumulated +=).
   */
  linearBackward(batch: Batch, t: LinearGrads, M: number, K: number, N: number): void {
    const name = "matmul.linearBackward";
    exact(name, t.x, M * K, `x (${M},${K})`);
    exact(name, t.W, K * N, `W (${K},${N})`);
    exact(name, t.dy, M * N, `dy (${M},${N})`);
    if (t.dx) exact(name, t.dx, M * K, `dx (${M},${K})`);
    if (t.dW) exact(name, t.dW, K * N, `dW (${K},${N})`);
    if (t.dBias) exact(name, t.dBias, N, `dBias (${N})`);
    const outIn = t.outIn ?? false;
    if (t.dx) {
      this.gemm(batch, {
        a: t.dy,
        b: t.W,
        c: t.dx,
        m: M,
        n: K,
        k: N,
        transB: !outIn,
        accumulate: t.accumulateDx,
      });
    }
    if (t.dW) {
      // (in, out): dW = xᵀ·dy; (out, in): dW = dyᵀ·x.
      this.gemm(batch, {
        a: outIn ? t.dy : t.x,
        b: outIn ? t.x : t.dy,
        c: t.dW,
        m: outIn ? N : K,
        n: outIn ? K : N,
        k: M,
        transA: true,
        accumulate: true,
      });
    }
    if (t.dBias) this.biasBackward(batch, t.dy, t.dBias, M, N);
  }

  /**
   * Tied lm_head forward `logits = x·wteᵀ` (writes =). x is (M,C), wte is (V,C), logits is (M,V).
   */
  tiedForward(
    batch: Batch,
    x: Tensor,
    wte: Tensor,
    logits: Tensor,
    M: number,
    C: number,
    V: number,
  ): void {
    const name = "matmul.tiedForward";
    exact(name, x, M * C, `x (${M},${C})`);
    exact(name, wte, V * C, `wte (${V},${C})`);
    exact(name, logits, M * V, `logits (${M},${V})`);
    this.gemm(batch, { a: x, b: wte, c: logits, m: M, n: V, k: C, transB: true });
  }

  /**
   * Tied lm_head backward. x is (M,C), wte is (V,C), dlogits is (M,V). Computes
   * `dx (M,C) = dlogits·wte` (written =, or += with `accumulateDx`) and `dWte (V,C) += dlogitsᵀ·x`,
   * each only when not null.
   */
  tiedBackward(batch: Batch, t: TiedGrads, M: number, C: number, V: number): void {
    const name = "matmul.tiedBackward";
    exact(name, t.x, M * C, `x (${M},${C})`);
    exact(name, t.wte, V * C, `wte (${V},${C})`);
    exact(name, t.dlogits, M * V, `dlogits (${M},${V})`);
    if (t.dx) exact(name, t.dx, M * C, `dx (${M},${C})`);
    if (t.dWte) exact(name, t.dWte, V * C, `dWte (${V},${C})`);
    if (t.dx) {
      this.gemm(batch, {
        a: t.dlogits,
        b: t.wte,
        c: t.dx,
        m: M,
        n: C,
        k: V,
        accumulate: t.accumulateDx,
      });
    }
    if (t.dWte) {
      this.gemm(batch, {
        a: t.dlogits,
        b: t.x,
        c: t.dWte,
        m: V,
        n: C,
        k: M,
        transA: true,
        accumulate: true,
      });
    }
  }

  /**
   * Bias gradient `dBias (N) += Σ_m dy[m, n]` (accumulates +=), dy (M,N) with row stride `ld`
   * (default N) starting at element `offset`. Deterministic: fixed-order sums, no atomics.
   */
  biasBackward(
    batch: Batch,
    dy: Tensor,
    dBias: Tensor,
    M: number,
    N: number,
    ld = N,
    offset = 0,
  ): void {
    // One invocation per column below the loop cap on CPU adapters, else the workgroup tree.
    const columns = this.#dbiasColumns && M + 5 <= LOOP_CAP ? this.#dbiasColumns : null;
    const kernel = columns ?? this.#dbias;
    const name = kernel.name;
    positive(name, { M, N });
    if (ld < N) {
      throw new RangeError(
        `Cannot run kernel "${name}": row stride ${ld} of "${dy.label}" is below N=${N}`,
      );
    }
    needSize(name, dy, offset + (M - 1) * ld + N, `dy (${M},${N})`);
    needSize(name, dBias, N, `dBias (${N})`);
    const params = new Params(8).u32(M).u32(N).u32(ld).u32(offset).u32(0).bytes;
    if (columns) {
      batch.dispatch(columns, [dy, dBias], params, grid(N, SW_GROUP));
    } else {
      checkLoops(name, Math.ceil(M / BIAS_LANES) + 5, `summing ${M} rows`);
      batch.dispatch(kernel, [dy, dBias], params, Math.ceil(N / BIAS_COLS));
    }
  }

  /**
   * The general strided, batched GEMM (see {@linkcode GemmSpec}):
   * `C (M,N) = alpha · op(A) (M,K) · op(B) (K,N) (+ bias) (+ C when accumulate)`.
   * Throws a RangeError naming the tensor when an operand is too small for its shape, offset and
   * strides.
   */
  gemm(batch: Batch, s: GemmSpec): void {
    const { m, n, k } = s;
    const transA = s.transA ?? false, transB = s.transB ?? false;
    const name = `matmul.gemm(${transA ? "T" : "N"}${transB ? "T" : "N"})`;
    const {
      count,
      inner,
      sAo,
      sAi,
      sBo,
      sBi,
      sCo,
      sCi,
      offA,
      offB,
      offC,
      offBias,
      aRows,
      aCols,
      bRows,
      bCols,
      lda,
      ldb,
      ldc,
    } = checkGemmLayout(name, s);
    // Packed halves are frozen weights, which are only ever read, and only as B.
    for (const [t, label] of [[s.a, "A"], [s.c, "C"], [s.bias, "bias"]] as const) {
      if (t && t.dtype !== "f32") {
        throw new RangeError(
          `Cannot run kernel "${name}": ${label} "${t.label}" is stored in ${t.dtype}; only B may be packed halves`,
        );
      }
    }
    const bType = s.b.dtype === "f32" ? undefined : s.b.dtype;
    if (bType && !this.halfB.includes(bType)) {
      throw new RangeError(
        `Cannot run kernel "${name}": B "${s.b.label}" is stored in ${bType}, and this Matmul was created without halfB ["${bType}"]`,
      );
    }

    const packed = this.precision === "f16-storage"
      ? "f16"
      : this.variant === "texture"
      ? "texture"
      : null;
    if (packed) {
      const pa = packShape(aRows, aCols, count), pb = packShape(bRows, bCols, count);
      const limits = this.#gpu.device.limits;
      const fits = (q: PackShape) =>
        packed === "texture"
          ? q.w4 <= limits.maxTextureDimension2D && q.height <= limits.maxTextureDimension2D
          : q.height * q.w4 * 8 <= this.#gpu.maxBindingBytes;
      if (fits(pa) && fits(pb)) {
        const epi = `${s.bias ? "bias" : ""}${s.bias && s.accumulate ? "+" : ""}${
          s.accumulate ? "acc" : ""
        }`;
        const kernel = this.#gemm.get(`${packed}:${layoutKey(transA, transB, true, true)}:${epi}`)!;
        checkLoops(kernel.name, Math.ceil(k / 4), `K=${k}`);
        const opA = this.#pack(batch, packed, "A", s.a, pa, offA, lda, sAo, sAi, inner);
        const opB = this.#pack(batch, packed, "B", s.b, pb, offB, ldb, sBo, sBi, inner, bType);
        const tilesN = Math.ceil(n / this.#tn);
        const params = new Params(PARAM_FIELDS)
          .u32(m).u32(n).u32(k).u32(tilesN)
          .u32(pa.w4).u32(pb.w4).u32(ldc).u32(inner)
          .u32(0).u32(0).u32(offC).u32(offBias)
          .u32(inner * pa.rowsP).u32(pa.rowsP).u32(inner * pb.rowsP).u32(pb.rowsP)
          .u32(sCo).u32(sCi).f32(s.alpha ?? 1).f32(s.accumulate ? 1 : 0)
          .u32(s.bias ? 1 : 0).u32(TRIANGULAR[s.triangularA ?? "none"]).u32(s.lowerC ? 1 : 0)
          .bytes;
        this.#dummy ??= this.#gpu.tensor([4], new Float32Array(4), "matmul.noBias");
        const [x, y] = grid(Math.ceil(m / this.#tm) * tilesN, SW_GROUP);
        batch.dispatch(kernel, [opA, opB, s.bias ?? this.#dummy, s.c], params, [x, y, count]);
        return;
      }
    }

    if (this.#tiled && !bType) {
      this.#tiled.gemm(batch, s);
      return;
    }
    const software = this.variant !== "hardware";
    const aligned = (...v: number[]) => this.variant === "software" && v.every((x) => x % 4 === 0);
    const vecA = aligned(offA, lda, sAo, sAi), vecB = aligned(offB, ldb, sBo, sBi);
    const kernel = this.#gemm.get(gemmKey(layoutKey(transA, transB, vecA, vecB), bType))!;
    const tilesN = software ? Math.ceil(n / this.#tn) : Math.ceil(n / HW_BLOCK);
    if (software) checkLoops(kernel.name, Math.floor(k / 4) + 3, `K=${k}`);
    else checkLoops(kernel.name, Math.ceil(k / HW_KTILE) + 40, `K=${k}`); // + the 4×4 init and store loops

    const params = new Params(PARAM_FIELDS)
      .u32(m).u32(n).u32(k).u32(tilesN)
      .u32(lda).u32(ldb).u32(ldc).u32(inner)
      .u32(offA).u32(offB).u32(offC).u32(offBias)
      .u32(sAo).u32(sAi).u32(sBo).u32(sBi)
      .u32(sCo).u32(sCi).f32(s.alpha ?? 1).f32(s.accumulate ? 1 : 0)
      .u32(s.bias ? 1 : 0).u32(0).u32(software && s.lowerC ? 1 : 0).bytes;
    // Without a bias, A stands in for the unused binding (both read-only: no usage conflict).
    const bindings: Binding[] = [vec4Range(s.a, vecA), vec4Range(s.b, vecB), s.bias ?? s.a, s.c];
    let groups: [number, number, number];
    if (software) {
      const [x, y] = grid(Math.ceil(m / this.#tm) * tilesN, SW_GROUP);
      groups = [x, y, count];
    } else {
      groups = [tilesN, Math.ceil(m / HW_BLOCK), count];
    }
    batch.dispatch(kernel, bindings, params, groups);
  }

  /**
   * Records the repacking of one stored operand (rows × cols with row stride `ld`, batch entries
   * at `off + bo·so + bi·si`) into the scratch texture or f16 buffer of `slot`, and returns that
   * binding. Scratch is cached per slot and size: GEMMs of one batch reuse it one after another.
   */
  #pack(
    batch: Batch,
    packed: "texture" | "f16",
    slot: "A" | "B",
    t: Tensor,
    q: PackShape,
    off: number,
    ld: number,
    so: number,
    si: number,
    inner: number,
    half?: HalfDtype,
  ): Binding {
    const vec = [off, ld, so, si].every((v) => v % 4 === 0);
    const kernel = this.#gemm.get(gemmKey(`pack:${packed}:${vec ? 4 : 1}`, half))!;
    const key = `${slot}:${q.w4}x${q.height}`;
    let dst: Binding;
    if (packed === "texture") {
      let tex = this.#textures.get(key);
      if (!tex) {
        const texture = this.#gpu.device.createTexture({
          label: `matmul.${slot}.${key}`,
          size: [q.w4, q.height],
          format: "rgba32float",
          usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.STORAGE_BINDING |
            GPUTextureUsage.COPY_DST,
        });
        tex = { texture, view: texture.createView() };
        this.#textures.set(key, tex);
      }
      dst = { texture: tex.view };
      // Packed halves must be widened, so they always take the pack kernel.
      const copies = this.packByCopy && !half ? copyRects(q, off, ld, so, si, inner) : null;
      if (copies) {
        batch.copyToTexture(t, tex.texture, copies);
        return dst;
      }
    } else {
      let buf = this.#scratch.get(key);
      if (!buf) {
        buf = this.#gpu.tensor([q.height * q.w4 * 2], undefined, `matmul.f16${slot}`);
        this.#scratch.set(key, buf);
      }
      dst = buf;
    }
    const total = q.height * q.w4;
    const params = new Params(12)
      .u32(q.rows).u32(q.cols).u32(ld).u32(off)
      .u32(so).u32(si).u32(inner).u32(q.rowsP)
      .u32(q.w4).u32(total).bytes;
    batch.dispatch(kernel, [vec4Range(t, vec), dst], params, grid(total, SW_GROUP));
    return dst;
  }
}

/**
 * The copy rectangles that fill a packed operand texture straight from the stored matrix, or null
 * when that is not possible: the packed texture must need no zero padding (columns and rows per
 * batch entry multiples of 4), rows must start on a texel (offsets multiples of 4 floats) and be
 * 256 bytes apart (row stride a multiple of 64 floats, WebGPU's `bytesPerRow` alignment). Batch
 * entries whose rows follow one another in memory become one rectangle; otherwise one rectangle
 * per entry, up to 256 of them.
 */
function copyRects(
  q: PackShape,
  off: number,
  ld: number,
  so: number,
  si: number,
  inner: number,
): TextureCopy[] | null {
  if (q.cols % 4 !== 0 || q.rows % 4 !== 0 || off % 4 !== 0 || (ld * 4) % 256 !== 0) return null;
  const count = q.height / q.rowsP, outer = count / inner;
  const bytesPerRow = ld * 4;
  // Entries stacked back to back: entry z starts where entry z−1's rows end.
  const contiguous = (inner === 1 || si === q.rows * ld) &&
    (outer === 1 || so === inner * q.rows * ld);
  if (contiguous) {
    return [{ offset: off * 4, bytesPerRow, width: q.w4, height: q.height, y: 0 }];
  }
  if (count > 256 || so % 4 !== 0 || si % 4 !== 0) return null;
  const rects: TextureCopy[] = [];
  for (let bo = 0; bo < outer; bo++) {
    for (let bi = 0; bi < inner; bi++) {
      rects.push({
        offset: (off + bo * so + bi * si) * 4,
        bytesPerRow,
        width: q.w4,
        height: q.rows,
        y: (bo * inner + bi) * q.rowsP,
      });
    }
  }
  return rects;
}

/** `B_DTYPE` of matmul.wgsl for each packed-half dtype. */
const HALF_CODE = { f16: 1, bf16: 2 } as const;

/** A kernel's key with the dtype of its packed-half operand, if any. */
function gemmKey(key: string, half: HalfDtype | undefined): string {
  return half ? `${key}:${half}` : key;
}

/** Epilogues of the packed GEMM pipelines: plain, `+ bias`, `+= C`, both. */
const EPILOGUES = ["", "bias", "acc", "bias+acc"] as const;

/** `triangularA` as the kernels' `tri` parameter. */
const TRIANGULAR = { none: 0, lower: 1, upper: 2 } as const;

const X4 = "xyzw";

/** Emits the 4·TM·TN multiply-adds of one K step of 4: `c{i}_{j} += a(i, kk) · b(kk, j)`. */
function emitMultiplyAdds(
  o: (s: string) => void,
  tm: number,
  tn: number,
  a: (i: number, kk: number) => string,
  b: (kk: number, j: number) => string,
): void {
  // Loads first, then each accumulator takes its four multiply-adds in a row (k order, as a
  // plain loop would): on lavapipe the accumulators live in stack memory (TM·TN·8 lanes is far
  // more than the vector registers), so touching each once per K step instead of four times
  // saves three loads and stores of it; +9–23% per layout measured here.
  for (let kk = 0; kk < 4; kk++) {
    for (let j = 0; j < tn / 4; j++) o(`    let bv${kk}_${j} = ${b(kk, j)};`);
  }
  for (let i = 0; i < tm; i++) {
    for (let j = 0; j < tn / 4; j++) {
      for (let kk = 0; kk < 4; kk++) o(`    c${i}_${j} += ${a(i, kk)} * bv${kk}_${j};`);
    }
  }
}

/** Emits the bounds-checked stores of the TM×TN accumulators through `store()`. */
function emitStores(o: (s: string) => void, tm: number, tn: number): void {
  for (let i = 0; i < tm; i++) {
    o(`  if (m0 + ${i}u < p.M) {`);
    o(`    let rc = baseC + (m0 + ${i}u) * p.ldc + n0;`);
    for (let col = 0; col < tn; col++) {
      o(`    if (n0 + ${col}u < p.N) { store(rc + ${col}u, n0 + ${col}u, c${i}_${col >> 2}.${
        X4[col & 3]
      }); }`);
    }
    o(`  }`);
  }
}

/**
 * The shell every register-tiled GEMM shares: the parameter block, the operand bindings, the
 * `store` epilogue (`C = alpha·acc (+ bias) (+ beta·C)`), and the entry point's tile and batch
 * bookkeeping, around `body`. `elementOffsets` adds `offA`/`offB` to the operand bases (packed
 * operands start at 0).
 */
function gemmShader(
  comment: string,
  operandA: string,
  operandB: string,
  tm: number,
  tn: number,
  elementOffsets: boolean,
  body: string[],
): string {
  const off = (op: "A" | "B") => elementOffsets ? `p.off${op} + ` : "";
  return `${comment}
struct Params {
  M: u32, N: u32, K: u32, tilesN: u32,
  lda: u32, ldb: u32, ldc: u32, inner: u32,
  offA: u32, offB: u32, offC: u32, offBias: u32,
  sAo: u32, sAi: u32, sBo: u32, sBi: u32,
  sCo: u32, sCi: u32, alpha: f32, beta: f32,
  hasBias: u32, tri: u32, lowerC: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) ${operandA}
@group(0) @binding(2) ${operandB}
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> C: array<f32>;

// With STATIC_EPILOGUE (a pipeline constant) the bias and accumulate branches are fixed at
// pipeline creation, so no per-element branch remains: on lavapipe each branch makes every
// store of the tile a masked one (scores GEMM 5.9 → 4.3 ms, a rank-8 LoRA product 2.9 → 1.7).
override STATIC_EPILOGUE: bool = false;
override HAS_BIAS: bool = false;
override ACCUMULATE: bool = false;

fn store(ci: u32, n: u32, acc: f32) {
  var v = p.alpha * acc;
  if (STATIC_EPILOGUE) {
    if (HAS_BIAS) { v = v + bias[p.offBias + n]; }
    if (ACCUMULATE) { v = v + C[ci]; } // beta is 1 when accumulating
  } else {
    if (p.hasBias != 0u) { v = v + bias[p.offBias + n]; }
    if (p.beta != 0.0) { v = v + p.beta * C[ci]; }
  }
  C[ci] = v;
}

@compute @workgroup_size(${SW_GROUP})
fn gemm_registers(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nw: vec3u,
  @builtin(local_invocation_index) li: u32,
) {
  let t = (wid.x + wid.y * nw.x) * ${SW_GROUP}u + li;
  let tmi = t / p.tilesN;
  let m0 = tmi * ${tm}u;
  if (m0 >= p.M) { return; }
  let n0 = (t - tmi * p.tilesN) * ${tn}u;
  // lowerC: a tile wholly above the diagonal (every column past every row) is not wanted.
  if (p.lowerC != 0u && n0 > m0 + ${tm - 1}u) { return; }
  let bo = wid.z / p.inner;
  let bi = wid.z - bo * p.inner;
  let baseA = ${off("A")}bo * p.sAo + bi * p.sAi;
  let baseB = ${off("B")}bo * p.sBo + bi * p.sBi;
  let baseC = p.offC + bo * p.sCo + bi * p.sCi;
  let mMax = p.M - 1u;
  let nMax = p.N - 1u;
${body.join("\n")}
}
`;
}

/**
 * WGSL of the register-tiled GEMM over packed operands (entry `gemm_registers`): the same tile
 * and multiply-adds as {@linkcode softwareGemm}, but A and B are the packed copies made by the pack
 * kernel, addressed by (texel column, row): `p.lda`/`p.ldb` are texels per row, `offA`/`offB` are
 * 0 and the batch strides count rows. Rows and columns are zero-padded to multiples of 4, so the K
 * loop runs ceil(K/4) full steps with no remainder loop; it is the only loop.
 */
function packedGemm(g: SoftwareGemm, src: "texture" | "f16"): string {
  const { tm, tn, transA, transB } = g;
  const I = [...Array(tm).keys()], J = [...Array(tn / 4).keys()], KK = [0, 1, 2, 3], X = "xyzw";
  const N4 = [...Array(tn).keys()], M4 = [...Array(tm / 4).keys()];
  const v4 = (parts: string[]) => `vec4f(${parts.join(", ")})`;
  // vec4 at texel column `qc`, packed row `r` of operand A or B.
  const ld = (op: "A" | "B", qc: string, r: string) =>
    src === "texture"
      ? `textureLoad(${op}, vec2u(${qc}, ${r}), 0)`
      : `vec4f(${op}[(${r}) * p.ld${op.toLowerCase()} + ${qc}])`;
  const L: string[] = [];
  const o = (s: string) => L.push(s);
  if (!transA) { for (const i of I) o(`  let ra${i} = baseA + min(m0 + ${i}u, mMax);`); }
  else for (const q of M4) o(`  let qa${q} = min((m0 >> 2u) + ${q}u, mMax >> 2u);`);
  if (transB) { for (const c of N4) o(`  let rb${c} = baseB + min(n0 + ${c}u, nMax);`); }
  else for (const j of J) o(`  let qb${j} = min((n0 >> 2u) + ${j}u, nMax >> 2u);`);
  for (const i of I) for (const j of J) o(`  var c${i}_${j} = vec4f(0.0);`);
  o(`  let k4 = (p.K + 3u) >> 2u;`);
  // Triangular op(A): the K steps where this tile's rows of op(A) are all zero are skipped.
  o(`  var kLo = 0u;`);
  o(`  var kHi = k4;`);
  o(`  if (p.tri == 1u) { kHi = min(k4, (m0 + ${tm + 3}u) >> 2u); }`);
  o(`  if (p.tri == 2u) { kLo = m0 >> 2u; }`);
  o(`  for (var kc = kLo; kc < kHi; kc++) {`);
  o(`    let k = kc << 2u;`);
  let a: (i: number, kk: number) => string;
  if (!transA) {
    for (const i of I) o(`    let a${i} = ${ld("A", "kc", `ra${i}`)};`);
    a = (i, kk) => `a${i}.${X[kk]}`;
  } else {
    for (const kk of KK) {
      for (const q of M4) o(`    let a${kk}_${q} = ${ld("A", `qa${q}`, `baseA + k + ${kk}u`)};`);
    }
    a = (i, kk) => `a${kk}_${i >> 2}.${X[i & 3]}`;
  }
  let b: (kk: number, j: number) => string;
  if (!transB) {
    for (const kk of KK) {
      for (const j of J) o(`    let b${kk}_${j} = ${ld("B", `qb${j}`, `baseB + k + ${kk}u`)};`);
    }
    b = (kk, j) => `b${kk}_${j}`;
  } else {
    for (const c of N4) o(`    let bt${c} = ${ld("B", "kc", `rb${c}`)};`);
    b = (kk, j) => v4(KK.map((c) => `bt${j * 4 + c}.${X[kk]}`));
  }
  emitMultiplyAdds(o, tm, tn, a, b);
  o(`  }`);
  emitStores(o, tm, tn);
  const operand = (op: "A" | "B") =>
    src === "texture"
      ? `var ${op}: texture_2d<f32>;`
      : `var<storage, read> ${op}: array<vec4<f16>>;`;
  const comment = `${
    src === "f16" ? "enable f16;\n" : ""
  }// Generated by kernels/matmul.ts: register-tiled GEMM over packed ${src} operands, tile ${tm}×${tn}, op(A)=${
    transA ? "Aᵀ" : "A"
  }, op(B)=${transB ? "Bᵀ" : "B"}.`;
  return gemmShader(comment, operand("A"), operand("B"), tm, tn, false, L);
}

/** A stored operand repacked: rows and columns padded to multiples of 4, batch entries stacked. */
interface PackShape {
  rows: number;
  cols: number;
  /** Rows per batch entry, padded to a multiple of 4. */
  rowsP: number;
  /** vec4 texels per row. */
  w4: number;
  /** Rows of the packed matrix: batch count × rowsP. */
  height: number;
}

function packShape(rows: number, cols: number, count: number): PackShape {
  const rowsP = Math.ceil(rows / 4) * 4;
  return { rows, cols, rowsP, w4: Math.ceil(cols / 4), height: count * rowsP };
}

/**
 * WGSL of the pack kernel (entry `pack`): one invocation per vec4 texel of the packed operand,
 * zero outside the stored matrix; writes an `rgba32float` texture or f16 pairs (`vec4<f16>` as
 * two `pack2x16float` words, so the kernel itself needs no `shader-f16`). With `vec` (offset, row
 * stride and batch strides multiples of 4) the source is read as vec4s. No loops.
 */
function packKernel(packed: "texture" | "f16", vec: boolean, half?: HalfDtype): string {
  // A source of packed halves: a vec4 is a vec2u, an element half of a u32 (see unpackHalfWgsl).
  const at = (i: string) => half ? `half1(S[(${i}) >> 1u], (${i}) & 1u)` : `S[${i}]`;
  const load = vec
    ? `let v = ${half ? "half4(S[src >> 2u])" : "S[src >> 2u]"};
  let e = vec4u(c, c + 1u, c + 2u, c + 3u) < vec4u(q.cols);
  return select(vec4f(0.0), v, e);`
    : `var v = vec4f(0.0);
  if (c < q.cols) { v.x = ${at("src")}; }
  if (c + 1u < q.cols) { v.y = ${at("src + 1u")}; }
  if (c + 2u < q.cols) { v.z = ${at("src + 2u")}; }
  if (c + 3u < q.cols) { v.w = ${at("src + 3u")}; }
  return v;`;
  const source = half ? (vec ? "vec2u" : "u32") : (vec ? "vec4f" : "f32");
  const out = packed === "texture"
    ? `@group(0) @binding(2) var O: texture_storage_2d<rgba32float, write>;`
    : `@group(0) @binding(2) var<storage, read_write> O: array<vec2u>;`;
  const store = packed === "texture"
    ? `textureStore(O, vec2u(qc, z * q.rowsP + r), v);`
    : `O[t] = vec2u(pack2x16float(v.xy), pack2x16float(v.zw));`;
  return `// Generated by kernels/matmul.ts: repack a stored GEMM operand (${packed}${
    vec ? ", vec4 loads" : ""
  }${half ? `, from packed ${half}` : ""}).
struct PackParams {
  rows: u32, cols: u32, ld: u32, off: u32,
  so: u32, si: u32, inner: u32, rowsP: u32,
  w4: u32, total: u32,
}
@group(0) @binding(0) var<uniform> q: PackParams;
@group(0) @binding(1) var<storage, read> S: array<${source}>;
${out}
${half ? unpackHalfWgsl(half) : ""}
fn fetch(src: u32, c: u32) -> vec4f {
  ${load}
}

@compute @workgroup_size(${SW_GROUP})
fn pack(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nw: vec3u,
  @builtin(local_invocation_index) li: u32,
) {
  let t = (wid.x + wid.y * nw.x) * ${SW_GROUP}u + li;
  if (t >= q.total) { return; }
  let qc = t % q.w4;
  let rr = t / q.w4;
  let z = rr / q.rowsP;
  let r = rr - z * q.rowsP;
  let bo = z / q.inner;
  let bi = z - bo * q.inner;
  let c = qc * 4u;
  var v = vec4f(0.0);
  if (r < q.rows) {
    v = fetch(q.off + bo * q.so + bi * q.si + r * q.ld + c, c);
  }
  ${store}
}
`;
}

/**
 * WGSL that widens packed halves (two per u32, element 2i in the low 16 bits) to f32, exactly:
 * `half1(word, odd)` one element, `half4(vec2u)` four. f16 through `unpack2x16float` (core WGSL,
 * no `shader-f16`); bf16 is the top half of an f32, so a shift.
 */
export function unpackHalfWgsl(dtype: HalfDtype): string {
  const two = dtype === "f16"
    ? "unpack2x16float(w)"
    : "vec2f(bitcast<f32>(w << 16u), bitcast<f32>(w & 0xffff0000u))";
  return `fn half2(w: u32) -> vec2f { return ${two}; }
fn half1(w: u32, odd: u32) -> f32 { return half2(w)[odd]; }
fn half4(v: vec2u) -> vec4f { return vec4f(half2(v.x), half2(v.y)); }
`;
}

function layoutKey(transA: boolean, transB: boolean, vecA: boolean, vecB: boolean): string {
  return `${transA ? "T" : "N"}${transB ? "T" : "N"}${vecA ? "4" : "1"}${vecB ? "4" : "1"}`;
}

/**
 * A tensor bound as `array<vec4f>` covers its bytes rounded up to 16 (pool buffers are 256-byte
 * granules, so the range exists; a view's extra bytes are its owner's next elements). The extra lanes of a partial last vec4 only ever feed outputs
 * past the matrix edge, which are not stored; along K the kernel never reads past K.
 */
function vec4Range(t: Tensor, vec: boolean): Binding {
  if (!vec) return t;
  const size = Math.ceil(t.byteLength / 16) * 16;
  return t.byteOffset + size <= t.buffer.size
    ? { buffer: t.buffer, offset: t.byteOffset, size }
    : t;
}

function exact(kernel: string, t: Tensor, n: number, what: string): void {
  if (t.size !== n) {
    throw new RangeError(
      `Cannot run kernel "${kernel}": tensor "${t.label}" has ${t.size} elements, expected ${what} = ${n}`,
    );
  }
}

/** A {@linkcode GemmSpec}'s layout with its defaults filled in (see {@linkcode checkGemmLayout}). */
export interface GemmLayout {
  outer: number;
  inner: number;
  count: number;
  sAo: number;
  sAi: number;
  sBo: number;
  sBi: number;
  sCo: number;
  sCi: number;
  offA: number;
  offB: number;
  offC: number;
  offBias: number;
  aRows: number;
  aCols: number;
  bRows: number;
  bCols: number;
  lda: number;
  ldb: number;
  ldc: number;
}

/**
 * The one check of a GEMM's shapes, batch counts, offsets, strides and operand sizes (and that C
 * aliases no input), shared by every GEMM kernel: throws a RangeError naming kernel `name` and the
 * tensor; returns the layout with its defaults filled in.
 */
export function checkGemmLayout(name: string, s: GemmSpec): GemmLayout {
  const { m, n, k } = s;
  const transA = s.transA ?? false, transB = s.transB ?? false;
  positive(name, { M: m, N: n, K: k });
  const [outer, inner] = typeof s.batch === "number" ? [s.batch, 1] : s.batch ?? [1, 1];
  positive(name, { "batch count": outer, "inner batch count": inner });
  const count = outer * inner;
  if (count > 65535) {
    throw new RangeError(`Cannot run kernel "${name}": batch count ${count} exceeds 65535`);
  }
  const strides = (v: GemmSpec["strideA"]): [number, number] =>
    typeof v === "number" ? [v, 0] : v ? [v[0], v[1]] : [0, 0];
  const [sAo, sAi] = strides(s.strideA),
    [sBo, sBi] = strides(s.strideB),
    [sCo, sCi] = strides(s.strideC);
  const offA = s.offsetA ?? 0,
    offB = s.offsetB ?? 0,
    offC = s.offsetC ?? 0,
    offBias = s.offsetBias ?? 0;
  // A stored (rows × cols) = (M,K), or (K,M) when transposed; likewise B.
  const [aRows, aCols] = transA ? [k, m] : [m, k];
  const [bRows, bCols] = transB ? [n, k] : [k, n];
  const lda = s.lda ?? aCols, ldb = s.ldb ?? bCols, ldc = s.ldc ?? n;
  const span = (
    off: number,
    so: number,
    si: number,
    rows: number,
    cols: number,
    ld: number,
    t: Tensor,
    what: string,
  ) => {
    for (
      const [v, label] of [[off, "offset"], [so, "outer batch stride"], [
        si,
        "inner batch stride",
      ]] as const
    ) {
      if (!Number.isInteger(v) || v < 0) {
        throw new RangeError(
          `Cannot run kernel "${name}": ${label} ${v} of "${t.label}" is not a non-negative integer`,
        );
      }
    }
    if (!Number.isInteger(ld) || ld < cols) {
      throw new RangeError(
        `Cannot run kernel "${name}": row stride ${ld} of "${t.label}" (${what}) is below its ${cols} columns`,
      );
    }
    needSize(
      name,
      t,
      off + (outer - 1) * so + (inner - 1) * si + (rows - 1) * ld + cols,
      `${what} ${rows}×${cols}`,
    );
  };
  span(offA, sAo, sAi, aRows, aCols, lda, s.a, transA ? "A stored (K,M)" : "A (M,K)");
  span(offB, sBo, sBi, bRows, bCols, ldb, s.b, transB ? "B stored (N,K)" : "B (K,N)");
  span(offC, sCo, sCi, m, n, ldc, s.c, "C (M,N)");
  if (s.bias) needSize(name, s.bias, offBias + n, `bias (${n})`);
  for (const [t, label] of [[s.a, "A"], [s.b, "B"], [s.bias, "bias"]] as const) {
    if (t && t.buffer === s.c.buffer) {
      throw new RangeError(`Cannot run kernel "${name}": C "${s.c.label}" is also ${label}`);
    }
  }
  return {
    outer,
    inner,
    count,
    sAo,
    sAi,
    sBo,
    sBi,
    sCo,
    sCi,
    offA,
    offB,
    offC,
    offBias,
    aRows,
    aCols,
    bRows,
    bCols,
    lda,
    ldb,
    ldc,
  };
}

function positive(kernel: string, dims: Record<string, number>): void {
  for (const [k, v] of Object.entries(dims)) {
    if (!Number.isInteger(v) || v < 1) {
      throw new RangeError(
        `Cannot run kernel "${kernel}": ${k} must be a positive integer, got ${v}`,
      );
    }
  }
}

/** What {@linkcode softwareGemm} generates. */
interface SoftwareGemm {
  tm: number;
  tn: number;
  transA: boolean;
  transB: boolean;
  vecA: boolean;
  vecB: boolean;
  /**
   * Where the operands come from: the tensors themselves (`"buffer"`, default), or their packed
   * copies (see {@linkcode packShape}) in `rgba32float` textures or `vec4<f16>` buffers.
   */
  src?: "buffer" | "texture" | "f16";
  /**
   * B (a frozen weight) stored as packed halves (`"f16"`/`"bf16"`, two per u32 word), unpacked
   * to f32 as it is read; default f32. Only with `src` `"buffer"`.
   */
  halfB?: HalfDtype;
}

/**
 * WGSL of the register-tiled GEMM for CPU adapters (entry `gemm_registers`, same Params and
 * bindings as `gemm_shared` in matmul.wgsl).
 *
 * C is (M,N), K is walked 4 at a time. Invocation t owns rows m0..m0+TM and columns n0..n0+TN
 * (accumulators `c{i}_{j}`: row i, columns 4j..4j+3 as a vec4). Per K step of 4 it loads a 4×TM
 * slab of op(A) and a 4×TN slab of op(B) as TM + TN vec4s along each operand's contiguous
 * dimension, then does 4·TM·TN multiply-adds. Everything is unrolled here, so the only loops are
 * the K loop (K/4 iterations) and the K remainder (< 4): the wrapper checks the loop cap.
 * Edges: row and column indices are clamped into the matrix for loads and the stores are bounds
 * checked, so loads never branch. With `vecA`/`vecB` false (offset, row stride or batch strides
 * not multiples of 4) the same vec4s are built from scalar loads.
 */
function softwareGemm(g: SoftwareGemm): string {
  if (g.src && g.src !== "buffer") return packedGemm(g, g.src);
  const { tm, tn, transA, transB, vecA, vecB, halfB } = g;
  const I = [...Array(tm).keys()], J = [...Array(tn / 4).keys()], KK = [0, 1, 2, 3], X = "xyzw";
  const N4 = [...Array(tn).keys()], M4 = [...Array(tm / 4).keys()];
  // A scalar element read: index in elements.
  const sa = (idx: string) => vecA ? `A[(${idx}) >> 2u][(${idx}) & 3u]` : `A[${idx}]`;
  // B read as a scalar (element index) or as the vec4 at vec4 index `q` (vecB only); packed
  // halves hold a vec4 in a vec2u (four halves), an element in half of a u32.
  const sb = (idx: string) =>
    !halfB
      ? (vecB ? `B[(${idx}) >> 2u][(${idx}) & 3u]` : `B[${idx}]`)
      : vecB
      ? `half1(B[(${idx}) >> 2u][((${idx}) >> 1u) & 1u], (${idx}) & 1u)`
      : `half1(B[(${idx}) >> 1u], (${idx}) & 1u)`;
  const bq = (q: string) => halfB ? `half4(B[${q}])` : `B[${q}]`;
  const v4 = (parts: string[]) => `vec4f(${parts.join(", ")})`;
  const L: string[] = [];
  const o = (s: string) => L.push(s);

  // Per-invocation row/column bases, clamped into the matrix.
  if (!transA) { for (const i of I) o(`  let ra${i} = baseA + min(m0 + ${i}u, mMax) * p.lda;`); }
  else for (const i of I) o(`  let ma${i} = min(m0 + ${i}u, mMax);`);
  if (transB) { for (const c of N4) o(`  let rb${c} = baseB + min(n0 + ${c}u, nMax) * p.ldb;`); }
  else for (const c of N4) o(`  let nb${c} = min(n0 + ${c}u, nMax);`);
  if (transA && vecA) {
    for (const q of M4) {
      o(`  let qa${q} = min((m0 >> 2u) + ${q}u, mMax >> 2u);`);
    }
  }
  if (!transB && vecB) {
    for (const j of J) {
      o(`  let qb${j} = min((n0 >> 2u) + ${j}u, nMax >> 2u);`);
    }
  }
  for (const i of I) for (const j of J) o(`  var c${i}_${j} = vec4f(0.0);`);

  // Main K loop, 4 at a time.
  o(`  let k4 = p.K >> 2u;`);
  o(`  for (var kc = 0u; kc < k4; kc++) {`);
  o(`    let k = kc << 2u;`);
  // a(i, kk): expression of op(A)[m0+i, k+kk].
  let a: (i: number, kk: number) => string;
  if (!transA) {
    for (const i of I) {
      o(`    let a${i} = ${
        vecA ? `A[(ra${i} >> 2u) + kc]` : v4(KK.map((kk) => `A[ra${i} + k + ${kk}u]`))
      };`);
    }
    a = (i, kk) => `a${i}.${X[kk]}`;
  } else {
    for (const kk of KK) {
      o(`    let rk${kk} = baseA + (k + ${kk}u) * p.lda;`);
      for (const q of M4) {
        o(`    let a${kk}_${q} = ${
          vecA ? `A[(rk${kk} >> 2u) + qa${q}]` : v4(KK.map((r) => `A[rk${kk} + ma${q * 4 + r}]`))
        };`);
      }
    }
    a = (i, kk) => `a${kk}_${i >> 2}.${X[i & 3]}`;
  }
  // b(kk, j): vec4 expression of op(B)[k+kk, n0+4j .. n0+4j+3].
  let b: (kk: number, j: number) => string;
  if (!transB) {
    for (const kk of KK) {
      o(`    let rl${kk} = baseB + (k + ${kk}u) * p.ldb;`);
      for (const j of J) {
        o(`    let b${kk}_${j} = ${
          vecB ? bq(`(rl${kk} >> 2u) + qb${j}`) : v4(KK.map((c) => sb(`rl${kk} + nb${j * 4 + c}`)))
        };`);
      }
    }
    b = (kk, j) => `b${kk}_${j}`;
  } else {
    for (const c of N4) {
      o(`    let bt${c} = ${
        vecB ? bq(`(rb${c} >> 2u) + kc`) : v4(KK.map((kk) => sb(`rb${c} + k + ${kk}u`)))
      };`);
    }
    b = (kk, j) => v4(KK.map((c) => `bt${j * 4 + c}.${X[kk]}`));
  }
  emitMultiplyAdds(o, tm, tn, a, b);
  o(`  }`);

  // K remainder (< 4 steps), scalar loads.
  o(`  for (var k = k4 << 2u; k < p.K; k++) {`);
  if (!transA) { for (const i of I) o(`    let a${i} = ${sa(`ra${i} + k`)};`); }
  else {
    o(`    let rk = baseA + k * p.lda;`);
    for (const i of I) o(`    let a${i} = ${sa(`rk + ma${i}`)};`);
  }
  if (!transB) {
    o(`    let rl = baseB + k * p.ldb;`);
    for (const j of J) o(`    let b${j} = ${v4(KK.map((c) => sb(`rl + nb${j * 4 + c}`)))};`);
  } else {
    for (const j of J) o(`    let b${j} = ${v4(KK.map((c) => sb(`rb${j * 4 + c} + k`)))};`);
  }
  for (const i of I) for (const j of J) o(`    c${i}_${j} += a${i} * b${j};`);
  o(`  }`);

  // Stores: C = alpha·acc (+ bias) (+ beta·C), bounds checked.
  emitStores(o, tm, tn);

  const comment =
    `// Generated by kernels/matmul.ts: register-tiled GEMM, tile ${tm}×${tn}, op(A)=${
      transA ? "Aᵀ" : "A"
    }${vecA ? " (vec4)" : ""}, op(B)=${transB ? "Bᵀ" : "B"}${vecB ? " (vec4)" : ""}${
      halfB ? `, B packed ${halfB}` : ""
    }.`;
  const operandB = halfB
    ? `var<storage, read> B: array<${vecB ? "vec2u" : "u32"}>;\n${unpackHalfWgsl(halfB)}`
    : `var<storage, read> B: array<${vecB ? "vec4f" : "f32"}>;`;
  return gemmShader(
    comment,
    `var<storage, read> A: array<${vecA ? "vec4f" : "f32"}>;`,
    operandB,
    tm,
    tn,
    true,
    L,
  );
}
