/**
 * Causal multi-head self-attention, GPT-2's core between `c_attn` and `c_proj` (llm.c's
 * `attention_forward` / `attention_backward`).
 * Shapes: `qkv` is (B,T,3C) with q, k, v at channels [0,C), [C,2C), [2C,3C) (Hugging Face order),
 * head h owning channels h·hs..(h+1)·hs of each, hs = C/H; `out`, `dout` are (B,T,C); `att`, `datt`
 * are (B,H,T,T); `dqkv` is (B,T,3C).
 *
 * Forward saves the attention probabilities `att` for backward (no recomputation of scores).
 * Backward runs two deterministic passes (no atomics): one per query row writes dq and the score
 * gradients `datt`, then one per key row sums dk and dv over the queries that saw it. Each pass has
 * two variants (see {@linkcode AttentionVariant}): a workgroup or a single invocation per row. A
 * third variant, `"gemm"`, runs the products as batched GEMMs over the heads (the register-tiled
 * matmul, fastest on CPU adapters) with the softmax and its backward as row kernels in between.
 *
 * @module
 */

import type { Batch, BindingKind, Gpu, Kernel } from "../runtime/mod.ts";
import type { Tensor } from "../runtime/tensor.ts";
import { checkLoops, grid, LOOP_CAP, needSize, Params } from "./common.ts";
import { Matmul } from "./matmul.ts";
import code from "./attention.wgsl" with { type: "text" };

const FILE = "kernels/attention.wgsl";
/** Threads per workgroup, as in the WGSL. */
const WG = 64;

/**
 * Which kernels run:
 * - `"workgroup"`: any shape the wrapper accepts; a workgroup of 64 threads per row, reducing
 *   through workgroup memory.
 * - `"rows"`: one invocation per row with vec4 loads, fastest on CPU adapters; needs hs a multiple
 *   of 4 and `T·(hs/2 + 6) + hs/2 + 128 ≤ 65,535` loop iterations (T ≤ 1024 for hs ≤ 112,
 *   T ≤ 933 at hs = 128).
 * - `"gemm"`: scores, outputs and gradients as batched GEMMs over the (b, h) heads (the matmul's
 *   register tiles; the masked upper triangle is computed and then zeroed), softmax and softmax
 *   backward as one-invocation-per-row kernels; any shape the wrapper accepts with B·H ≤ 65,535.
 * - `"auto"` (default): gemm on a software adapter where B·H allows, workgroup otherwise.
 */
export type AttentionVariant = "auto" | "workgroup" | "rows" | "gemm";

/** Options for {@linkcode Attention.create}. */
export interface AttentionOptions {
  /** Which kernels run (default `"auto"`). */
  variant?: AttentionVariant;
}

/** A bind-group layout from (binding number, kind) pairs; binding 0 is the uniform block. */
function layout(...entries: [number, BindingKind][]): (BindingKind | null)[] {
  const kinds: (BindingKind | null)[] = ["uniform"];
  for (const [binding, kind] of entries) {
    while (kinds.length <= binding) kinds.push(null);
    kinds[binding] = kind;
  }
  return kinds;
}

/** Bindings of each entry point (numbers as in the WGSL). */
const LAYOUTS = {
  forward: layout([1, "read"], [2, "write"], [3, "write"]),
  backward_query: layout([1, "read"], [4, "read"], [5, "read"], [6, "write"], [8, "write"]),
  backward_key: layout([1, "read"], [4, "read"], [5, "read"], [7, "read"], [8, "write"]),
  forward_rows: layout([3, "write"], [9, "read"], [10, "write"]),
  backward_query_rows: layout([5, "read"], [6, "write"], [9, "read"], [11, "read"], [12, "write"]),
  backward_key_rows: layout([5, "read"], [7, "read"], [9, "read"], [11, "read"], [12, "write"]),
  softmax_rows: layout([3, "write"]),
  softmax_backward_rows: layout([5, "read"], [6, "write"]),
};

/** Most (b, h) heads one batched GEMM takes. */
const MAX_GEMM_BATCH = 65535;

interface Kernels {
  forward: Kernel;
  backwardQuery: Kernel;
  backwardKey: Kernel;
}

/** Loop count (as Mesa counts it) of one invocation of the rows variant (see the WGSL header). */
function rowsLoops(T: number, hs: number): number {
  return T * (hs / 2 + 6) + hs / 2 + 128;
}

/**
 * The causal self-attention kernels.
 *
 * @example
 * ```ts
 * import { Attention, Gpu } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const attn = await Attention.create(gpu);
 * const [B, T, C, H] = [1, 2, 2, 1];
 * // token 0: q=(1,0) k=(1,0) v=(1,2); token 1: q=(0,1) k=(0,1) v=(3,4)
 * const qkv = gpu.tensor([B, T, 3 * C], new Float32Array([1, 0, 1, 0, 1, 2, 0, 1, 0, 1, 3, 4]));
 * const out = gpu.tensor([B, T, C]);
 * const att = gpu.tensor(Attention.scratchShape(B, T, H));
 * const batch = gpu.batch();
 * attn.forward(batch, qkv, out, att, B, T, C, H);
 * await batch.submit();
 * const [y, a] = await gpu.read([out, att]);
 * // token 0 sees only itself; token 1 gives weight e^(1/√2) / (1 + e^(1/√2)) to itself.
 * if (y[0] !== 1 || y[1] !== 2 || a[1] !== 0) throw new Error("attention forward failed");
 * for (const t of [qkv, out, att]) t.release();
 * ```
 */
export class Attention {
  /** Longest sequence the kernels accept (one workgroup-memory row of scores). */
  static readonly maxT = 1024;
  /** Largest head size hs = C/H the kernels accept. */
  static readonly maxHeadSize = 128;

  readonly #workgroup: Kernels;
  readonly #rows: Kernels;
  readonly #softmax: Kernel;
  readonly #softmaxBackward: Kernel;
  readonly #matmul: Matmul;
  readonly #variant: AttentionVariant;
  readonly #maxBindingBytes: number;

  private constructor(
    workgroup: Kernels,
    rows: Kernels,
    gemm: { softmax: Kernel; softmaxBackward: Kernel; matmul: Matmul },
    variant: AttentionVariant,
    maxBindingBytes: number,
  ) {
    this.#workgroup = workgroup;
    this.#rows = rows;
    this.#softmax = gemm.softmax;
    this.#softmaxBackward = gemm.softmaxBackward;
    this.#matmul = gemm.matmul;
    this.#variant = variant;
    this.#maxBindingBytes = maxBindingBytes;
  }

  /**
   * Compiles (or fetches from the cache) the kernels. `options.variant` forces one variant (tests
   * use it to check both); the default picks per adapter and shape.
   */
  static async create(gpu: Gpu, options: AttentionOptions = {}): Promise<Attention> {
    const k = (entry: keyof typeof LAYOUTS) =>
      gpu.kernel({ name: `attention.${entry}`, file: FILE, code, entry, bindings: LAYOUTS[entry] });
    const [forward, backwardQuery, backwardKey] = await Promise.all([
      k("forward"),
      k("backward_query"),
      k("backward_key"),
    ]);
    const [forwardRows, backwardQueryRows, backwardKeyRows] = await Promise.all([
      k("forward_rows"),
      k("backward_query_rows"),
      k("backward_key_rows"),
    ]);
    const [softmax, softmaxBackward, matmul] = await Promise.all([
      k("softmax_rows"),
      k("softmax_backward_rows"),
      Matmul.create(gpu),
    ]);
    const variant = options.variant ?? "auto";
    return new Attention(
      { forward, backwardQuery, backwardKey },
      { forward: forwardRows, backwardQuery: backwardQueryRows, backwardKey: backwardKeyRows },
      { softmax, softmaxBackward, matmul },
      variant === "auto" && !gpu.isSoftware ? "workgroup" : variant,
      gpu.maxBindingBytes,
    );
  }

  /** Shape (B,H,T,T) of `att` (forward's saved probabilities) and of backward's scratch `datt`. */
  static scratchShape(B: number, T: number, H: number): [number, number, number, number] {
    return [B, H, T, T];
  }

  /**
   * qkv is (B,T,3C); writes out (B,T,C) `=` and att (B,H,T,T) `=` (the causal softmax
   * probabilities, every element written: 0 above the diagonal). Keep `att` for {@linkcode backward}.
   */
  forward(
    batch: Batch,
    qkv: Tensor,
    out: Tensor,
    att: Tensor,
    B: number,
    T: number,
    C: number,
    H: number,
  ): void {
    const name = "attention.forward";
    const params = this.#check(name, B, T, C, H);
    this.#need(name, qkv, B * T * 3 * C, "qkv (B,T,3C)");
    this.#need(name, out, B * T * C, "out (B,T,C)");
    this.#need(name, att, B * H * T * T, "att (B,H,T,T)");
    if (this.#useGemm(name, B, H)) {
      const hs = C / H, heads = this.#heads(B, T, C, H);
      // att = scale · q·kᵀ per head, softmax in place, out = att·v.
      this.#matmul.gemm(batch, {
        ...heads.scores,
        a: qkv,
        b: qkv,
        c: att,
        offsetB: C,
        transB: true,
        alpha: 1 / Math.sqrt(hs),
        lowerC: true, // the softmax writes the masked upper triangle
      });
      batch.dispatch(this.#softmax, [att], params, grid(B * H * T, WG));
      this.#matmul.gemm(batch, {
        ...heads.values,
        a: att,
        b: qkv,
        c: out,
        offsetB: 2 * C,
        triangularA: "lower", // causal: att[t][t2] = 0 for t2 > t
      });
    } else if (this.#useRows(name, T, C / H)) {
      batch.dispatch(this.#rows.forward, [att, qkv, out], params, grid(B * H * T, WG));
    } else {
      batch.dispatch(this.#workgroup.forward, [qkv, out, att], params, grid(B * H * T, 1));
    }
  }

  /**
   * dout (B,T,C), qkv (B,T,3C) and att (B,H,T,T) from {@linkcode forward} are read; writes
   * dqkv (B,T,3C) `=` (every element). datt (B,H,T,T) is scratch: its causal part (t2 ≤ t) is
   * overwritten with the score gradients, the rest is left as it was. One `datt` can serve every
   * layer of a model.
   */
  backward(
    batch: Batch,
    dout: Tensor,
    qkv: Tensor,
    att: Tensor,
    datt: Tensor,
    dqkv: Tensor,
    B: number,
    T: number,
    C: number,
    H: number,
  ): void {
    const name = "attention.backward";
    const params = this.#check(name, B, T, C, H);
    this.#need(name, dout, B * T * C, "dout (B,T,C)");
    this.#need(name, qkv, B * T * 3 * C, "qkv (B,T,3C)");
    this.#need(name, att, B * H * T * T, "att (B,H,T,T)");
    this.#need(name, datt, B * H * T * T, "datt (B,H,T,T)");
    this.#need(name, dqkv, B * T * 3 * C, "dqkv (B,T,3C)");
    if (this.#useGemm(name, B, H)) {
      const hs = C / H, heads = this.#heads(B, T, C, H), scale = 1 / Math.sqrt(hs);
      // datt = dout·vᵀ (dL/d prob), then the softmax backward in place (dL/d score, 0 above the
      // diagonal); dq = scale · datt·k, dk = scale · dattᵀ·q, dv = attᵀ·dout.
      this.#matmul.gemm(batch, {
        ...heads.scores,
        a: dout,
        lda: C,
        strideA: [T * C, hs],
        b: qkv,
        c: datt,
        offsetB: 2 * C,
        transB: true,
        lowerC: true, // the softmax backward writes 0 above the diagonal
      });
      batch.dispatch(this.#softmaxBackward, [att, datt], params, grid(B * H * T, WG));
      this.#matmul.gemm(batch, {
        ...heads.values,
        a: datt,
        b: qkv,
        c: dqkv,
        offsetB: C,
        ldc: 3 * C,
        strideC: [T * 3 * C, hs] as const,
        alpha: scale,
        triangularA: "lower",
      });
      const transposed = {
        ...heads.values,
        transA: true,
        ldc: 3 * C,
        strideC: [T * 3 * C, hs] as const,
        triangularA: "upper" as const, // op(A) = dattᵀ or attᵀ: 0 below the diagonal
      };
      this.#matmul.gemm(batch, {
        ...transposed,
        a: datt,
        b: qkv,
        c: dqkv,
        offsetC: C,
        alpha: scale,
      });
      this.#matmul.gemm(batch, {
        ...transposed,
        a: att,
        b: dout,
        ldb: C,
        strideB: [T * C, hs],
        c: dqkv,
        offsetC: 2 * C,
      });
    } else if (this.#useRows(name, T, C / H)) {
      const groups = grid(B * H * T, WG);
      batch.dispatch(this.#rows.backwardQuery, [att, datt, qkv, dout, dqkv], params, groups);
      batch.dispatch(this.#rows.backwardKey, [att, datt, qkv, dout, dqkv], params, groups);
    } else {
      const groups = grid(B * H * T, 1);
      batch.dispatch(this.#workgroup.backwardQuery, [qkv, dout, att, datt, dqkv], params, groups);
      batch.dispatch(this.#workgroup.backwardKey, [qkv, dout, att, datt, dqkv], params, groups);
    }
  }

  /** Validates B, T, C, H and returns the uniform parameters. */
  #check(kernel: string, B: number, T: number, C: number, H: number): ArrayBuffer {
    for (const [what, v] of [["B", B], ["T", T], ["C", C], ["H", H]] as const) {
      if (!Number.isInteger(v) || v < 1) {
        throw new RangeError(
          `Cannot run kernel "${kernel}": ${what} must be a positive integer, got ${v}`,
        );
      }
    }
    if (C % H !== 0) {
      throw new RangeError(
        `Cannot run kernel "${kernel}": C=${C} is not divisible by the number of heads H=${H}`,
      );
    }
    const hs = C / H;
    if (T > Attention.maxT) {
      throw new RangeError(
        `Cannot run kernel "${kernel}": T=${T} is over the longest sequence ${Attention.maxT}`,
      );
    }
    if (hs > Attention.maxHeadSize) {
      throw new RangeError(
        `Cannot run kernel "${kernel}": head size C/H=${hs} is over the largest ${Attention.maxHeadSize}`,
      );
    }
    // The forward pass loops most; both backward passes loop less (see the WGSL header).
    checkLoops(
      kernel,
      Math.ceil(hs / WG) * (T + 3) + Math.ceil(T / WG) * (hs + 4) + 24,
      `T=${T}, hs=${hs}`,
    );
    return new Params().u32(B).u32(T).u32(C).u32(H).u32(hs).f32(1 / Math.sqrt(hs)).bytes;
  }

  /**
   * The variant that runs for this shape (`"gemm"`, `"rows"` or `"workgroup"`); throws when a
   * variant was forced on a shape it cannot run. `B` (default 1) matters only to `"gemm"`.
   */
  variantFor(T: number, C: number, H: number, B = 1): "workgroup" | "rows" | "gemm" {
    if (this.#useGemm("attention", B, H)) return "gemm";
    return this.#useRows("attention", T, C / H) ? "rows" : "workgroup";
  }

  /** Whether the gemm variant runs B·H heads; throws when it is forced on more than it can. */
  #useGemm(kernel: string, B: number, H: number): boolean {
    const fits = B * H <= MAX_GEMM_BATCH;
    if (this.#variant === "auto") return fits;
    if (this.#variant !== "gemm") return false;
    if (!fits) {
      throw new RangeError(
        `Cannot run kernel "${kernel} (gemm variant)": B·H=${B * H} heads exceed ${MAX_GEMM_BATCH}`,
      );
    }
    return true;
  }

  /**
   * The per-head GEMM shapes: `scores` (T×T from two (T,hs) slices of rows of 3C, batched over
   * [B, H]) and `values` ((T,T)·(T,hs) into rows of C).
   */
  #heads(B: number, T: number, C: number, H: number) {
    const hs = C / H, batch = [B, H] as const;
    const qkvStride = [T * 3 * C, hs] as const, attStride = [H * T * T, T * T] as const;
    return {
      scores: {
        m: T,
        n: T,
        k: hs,
        batch,
        lda: 3 * C,
        ldb: 3 * C,
        strideA: qkvStride,
        strideB: qkvStride,
        strideC: attStride,
      },
      values: {
        m: T,
        n: hs,
        k: T,
        batch,
        strideA: attStride,
        ldb: 3 * C,
        strideB: qkvStride,
        ldc: C,
        strideC: [T * C, hs] as const,
      },
    };
  }

  /** Whether the rows variant runs this shape; throws when it is forced on a shape it cannot run. */
  #useRows(kernel: string, T: number, hs: number): boolean {
    if (this.#variant === "workgroup" || this.#variant === "gemm") return false;
    const fits = hs % 4 === 0 && rowsLoops(T, hs) <= LOOP_CAP;
    if (this.#variant === "auto") return fits;
    if (hs % 4 !== 0) {
      throw new RangeError(
        `Cannot run kernel "${kernel} (rows variant)": head size C/H=${hs} is not a multiple of 4`,
      );
    }
    checkLoops(`${kernel} (rows variant)`, rowsLoops(T, hs), `T=${T}, hs=${hs}`);
    return true;
  }

  /** Checks that `t` holds `n` elements and fits one storage binding. */
  #need(kernel: string, t: Tensor, n: number, what: string): void {
    needSize(kernel, t, n, what);
    if (t.byteLength > this.#maxBindingBytes) {
      throw new RangeError(
        `Cannot run kernel "${kernel}": tensor "${t.label}" (${what}) has ${t.byteLength} bytes, over this device's ` +
          `${this.#maxBindingBytes}-byte storage binding limit`,
      );
    }
  }
}
