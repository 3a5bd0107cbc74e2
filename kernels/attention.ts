/**
 * Causal self-attention with multi-head, grouped-query or multi-query heads: GPT-2's core between
 * `c_attn` and `c_proj`, Llama's between `q/k/v_proj` and `o_proj` (llm.c's `attention_forward` /
 * `attention_backward`).
 * Heads: H query heads of size hs = C/H and `kvHeads` = Hkv key/value heads (Hkv divides H, default
 * H); query head h uses key/value head ⌊h/g⌋, g = H/Hkv (Hugging Face's `repeat_kv`). C = H·hs is
 * the width of q and of the output, not necessarily the model width (Llama's `head_dim` may differ
 * from hidden_size/H).
 * Shapes: `qkv` is (B,T,W), W = (H + 2·Hkv)·hs, with q heads at channels [0,C), k heads at
 * [C, C + Hkv·hs) and v heads at [C + Hkv·hs, W), head j at j·hs of its part (with Hkv = H this is
 * GPT-2's (B,T,3C) in Hugging Face order); `out`, `dout` are (B,T,C); `att`, `datt` are
 * (B,H,T,T); `dqkv` is (B,T,W).
 *
 * Forward saves the attention probabilities `att` for backward (no recomputation of scores).
 * Backward runs two deterministic passes (no atomics): one per query row writes dq and the score
 * gradients `datt`, then one per key/value row sums dk and dv over the queries of its group that
 * saw it (the g query heads one after another). Each pass has two variants (see
 * {@linkcode AttentionVariant}): a workgroup or a single invocation per row. A third variant,
 * `"gemm"`, runs the products as batched GEMMs over the heads (the register-tiled matmul, fastest
 * on CPU adapters) with the softmax and its backward as row kernels in between: one GEMM per
 * position i in a group, batched over [B, Hkv] (query head j·g + i with kv head j), and dk, dv
 * summed over the group by accumulating GEMMs (`=` for i = 0, `+=` after, in order). A single
 * two-level batch over all (b, h) cannot name the kv head: its offset j·hs = ⌊h/g⌋·hs is not
 * linear in h, and (b, j) cannot be one level either (b steps T·W, j steps hs).
 *
 * Attention-probability dropout ({@linkcode AttentionDropout}, Hugging Face's `attn_dropout` /
 * `attention_dropout`, training only): `out = drop(att)·v`, where drop zeroes each probability with
 * probability p and scales the rest by 1/(1 − p). The mask is the counter-based hash of
 * (seed, att index ((b·H + h)·T + t)·T + t2), as in kernels/dropout.ts, recomputed wherever it is
 * used instead of stored, so backward needs only the seed: dL/d att = drop(dout·vᵀ), then the
 * softmax backward with the undropped `att` (which is what `att` keeps), dv = drop(att)ᵀ·dout.
 * The workgroup and rows variants apply it inside their kernels (pipelines compiled with the WGSL
 * override `DROPOUT`); the gemm variant's softmax kernel also writes drop(att) to a scratch tensor
 * for the ·V GEMM, and its backward rewrites `datt` with drop(att) for the dv GEMM once dq and dk
 * have read the score gradients. With p = 0 (or no dropout) the kernels and dispatches are exactly
 * those without dropout.
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
 *   T ≤ 933 at hs = 128), and for the key pass `g·(T·(hs/4 + 2) + 2) + hs/4 + 128 ≤ 65,535`.
 * - `"gemm"`: scores, outputs and gradients as batched GEMMs over the (b, kv head) pairs, one per
 *   position in a group (the matmul's register tiles; the masked upper triangle is computed and
 *   then zeroed), softmax and softmax backward as one-invocation-per-row kernels; any shape the
 *   wrapper accepts with B·Hkv ≤ 65,535.
 * - `"auto"` (default): gemm on a software adapter where B·Hkv allows, workgroup otherwise.
 */
export type AttentionVariant = "auto" | "workgroup" | "rows" | "gemm";

/**
 * Dropout on the attention probabilities for {@linkcode Attention.forward} and
 * {@linkcode Attention.backward}: give backward the forward's `p` and `seed`.
 *
 * @example
 * ```ts
 * import { Attention, Gpu } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const attn = await Attention.create(gpu);
 * // One head of size 2 over two tokens with q = 0: token 1 averages v0 = (1, 0) and v1 = (0, 1).
 * const qkv = gpu.tensor([1, 2, 6], new Float32Array([0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1]));
 * const out = gpu.tensor([1, 2, 2]);
 * const att = gpu.tensor(Attention.scratchShape(1, 2, 1));
 * const scratch = gpu.tensor(Attention.scratchShape(1, 2, 1));
 * const batch = gpu.batch();
 * attn.forward(batch, qkv, out, att, 1, 2, 2, 1, 1, { p: 0.5, seed: 7, scratch });
 * await batch.submit();
 * const [y, a] = await gpu.read([out, att]);
 * // att keeps the undropped probabilities; each kept one is doubled in out, a dropped one is 0.
 * if (a[2] !== 0.5 || a[3] !== 0.5) throw new Error(`att ${a}`);
 * if (!(y[2] === 0 || y[2] === 1) || !(y[3] === 0 || y[3] === 1)) throw new Error(`out ${y}`);
 * for (const t of [qkv, out, att, scratch]) t.release();
 * ```
 */
export interface AttentionDropout {
  /** Drop probability in [0, 1); 0 runs the kernels without dropout. */
  p: number;
  /** An integer in [0, 2³²) naming the mask. */
  seed: number;
  /**
   * A (B,H,T,T) tensor that forward may overwrite (the gemm variant keeps drop(att) there for its
   * ·V GEMM), needed by forward when p > 0 on every variant, so that a caller works on every
   * adapter; backward ignores it. It may be backward's `datt`, which is free during a forward.
   */
  scratch?: Tensor;
}

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
  softmax_dropout_rows: layout([3, "write"], [13, "write"]),
  dropout_rows: layout([5, "read"], [6, "write"]),
};

const TWO_32 = 2 ** 32;

/** Most (b, h) heads one batched GEMM takes. */
const MAX_GEMM_BATCH = 65535;

interface Kernels {
  forward: Kernel;
  backwardQuery: Kernel;
  backwardKey: Kernel;
}

/** The kernels of one mode, without attention dropout or with it. */
interface Pipelines {
  workgroup: Kernels;
  rows: Kernels;
  /** The gemm variant's softmax (with dropout: softmax_dropout_rows, which also writes drop(att)). */
  softmax: Kernel;
  softmaxBackward: Kernel;
}

/**
 * Loop count (as Mesa counts it) of one invocation of the rows variant, the larger of forward_rows
 * and backward_key_rows (g query heads per key/value head; see the WGSL header).
 */
function rowsLoops(T: number, hs: number, g: number): number {
  return Math.max(T * (hs / 2 + 6) + hs / 2 + 128, g * (T * (hs / 4 + 2) + 2) + hs / 4 + 128);
}

/** Loop count of one invocation of the workgroup variant's backward_key (see the WGSL header). */
function keyLoops(T: number, hs: number, g: number): number {
  return g * (Math.ceil(T / WG) + Math.ceil(hs / WG) * (T + 2) + 3) + Math.ceil(hs / WG) + 24;
}

/** Where one operand's heads sit: element offset, row stride, batch strides over [b, kv head]. */
interface HeadSlices {
  offset: number;
  ld: number;
  stride: readonly [number, number];
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
 * // Multi-query: H = 2 query heads of size 1 share kvHeads = 1 key/value head, so qkv rows are
 * // (q0, q1, k, v) and a lone token's two heads both output its v.
 * const mqa = gpu.tensor([1, 1, 4], new Float32Array([1, 2, 3, 5]));
 * const out2 = gpu.tensor([1, 1, 2]);
 * const att2 = gpu.tensor(Attention.scratchShape(1, 1, 2));
 * const batch2 = gpu.batch();
 * attn.forward(batch2, mqa, out2, att2, 1, 1, 2, 2, 1);
 * await batch2.submit();
 * const [y2] = await gpu.read([out2]);
 * if (y2[0] !== 5 || y2[1] !== 5) throw new Error("multi-query forward failed");
 * for (const t of [qkv, out, att, mqa, out2, att2]) t.release();
 * ```
 */
export class Attention {
  /** Longest sequence the kernels accept (one workgroup-memory row of scores). */
  static readonly maxT = 1024;
  /** Largest head size hs = C/H the kernels accept. */
  static readonly maxHeadSize = 128;

  readonly #plain: Pipelines;
  readonly #dropout: Pipelines;
  /** The gemm backward's dropout_rows: datt = drop(att) for the dv GEMM. */
  readonly #dropoutRows: Kernel;
  readonly #matmul: Matmul;
  readonly #variant: AttentionVariant;
  readonly #maxBindingBytes: number;

  private constructor(
    kernels: { plain: Pipelines; dropout: Pipelines; dropoutRows: Kernel; matmul: Matmul },
    variant: AttentionVariant,
    maxBindingBytes: number,
  ) {
    this.#plain = kernels.plain;
    this.#dropout = kernels.dropout;
    this.#dropoutRows = kernels.dropoutRows;
    this.#matmul = kernels.matmul;
    this.#variant = variant;
    this.#maxBindingBytes = maxBindingBytes;
  }

  /**
   * Compiles (or fetches from the cache) the kernels. `options.variant` forces one variant (tests
   * use it to check both); the default picks per adapter and shape.
   */
  static async create(gpu: Gpu, options: AttentionOptions = {}): Promise<Attention> {
    // With dropout: the same entry points compiled with DROPOUT = true.
    const k = (entry: keyof typeof LAYOUTS, dropout = false) =>
      gpu.kernel({
        name: `attention.${entry}${dropout ? " (dropout)" : ""}`,
        file: FILE,
        code,
        entry,
        bindings: LAYOUTS[entry],
        ...(dropout ? { constants: { DROPOUT: 1 } } : {}),
      });
    const pipelines = async (dropout: boolean): Promise<Pipelines> => {
      const [forward, backwardQuery, backwardKey, forwardRows, backwardQueryRows, backwardKeyRows] =
        await Promise.all([
          k("forward", dropout),
          k("backward_query", dropout),
          k("backward_key", dropout),
          k("forward_rows", dropout),
          k("backward_query_rows", dropout),
          k("backward_key_rows", dropout),
        ]);
      const [softmax, softmaxBackward] = await Promise.all([
        dropout ? k("softmax_dropout_rows") : k("softmax_rows"),
        k("softmax_backward_rows", dropout),
      ]);
      return {
        workgroup: { forward, backwardQuery, backwardKey },
        rows: {
          forward: forwardRows,
          backwardQuery: backwardQueryRows,
          backwardKey: backwardKeyRows,
        },
        softmax,
        softmaxBackward,
      };
    };
    const [plain, dropout, dropoutRows, matmul] = await Promise.all([
      pipelines(false),
      pipelines(true),
      k("dropout_rows"),
      Matmul.create(gpu),
    ]);
    const variant = options.variant ?? "auto";
    return new Attention(
      { plain, dropout, dropoutRows, matmul },
      variant === "auto" && !gpu.isSoftware ? "workgroup" : variant,
      gpu.maxBindingBytes,
    );
  }

  /** Shape (B,H,T,T) of `att` (forward's saved probabilities) and of backward's scratch `datt`. */
  static scratchShape(B: number, T: number, H: number): [number, number, number, number] {
    return [B, H, T, T];
  }

  /**
   * qkv is (B,T,(H+2·kvHeads)·C/H); writes out (B,T,C) `=` and att (B,H,T,T) `=` (the causal
   * softmax probabilities, every element written: 0 above the diagonal). C = H·hs; `kvHeads`
   * (default H) must divide H. Keep `att` for {@linkcode backward}. With `dropout` (p > 0) the
   * values are weighted by the dropped probabilities while `att` keeps the undropped ones, and
   * `dropout.scratch` (B,H,T,T) may be overwritten.
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
    kvHeads: number = H,
    dropout?: AttentionDropout,
  ): void {
    const name = "attention.forward";
    const params = this.#check(name, B, T, C, H, kvHeads, dropout);
    const hs = C / H, W = (H + 2 * kvHeads) * hs;
    this.#need(name, qkv, B * T * W, "qkv (B,T,(H+2·kvHeads)·hs)");
    this.#need(name, out, B * T * C, "out (B,T,C)");
    this.#need(name, att, B * H * T * T, "att (B,H,T,T)");
    const scratch = dropout && dropout.p > 0
      ? this.#scratch(name, dropout, att, B * H * T * T)
      : null;
    const k = scratch ? this.#dropout : this.#plain;
    if (this.#useGemm(name, B, kvHeads)) {
      const s = this.#slices(B, T, C, H, kvHeads);
      // att = scale · q·kᵀ per head, softmax in place, out = att·v.
      for (let i = 0; i < s.g; i++) {
        this.#matmul.gemm(batch, {
          ...s.scores,
          a: qkv,
          ...asA(s.q(i)),
          b: qkv,
          ...asB(s.k),
          c: att,
          ...asC(s.att(i)),
          transB: true,
          alpha: 1 / Math.sqrt(hs),
          lowerC: true, // the softmax writes the masked upper triangle
        });
      }
      // With dropout the softmax also writes drop(att) to the scratch, which the GEMM then reads.
      batch.dispatch(k.softmax, scratch ? [att, scratch] : [att], params, grid(B * H * T, WG));
      for (let i = 0; i < s.g; i++) {
        this.#matmul.gemm(batch, {
          ...s.values,
          a: scratch ?? att,
          ...asA(s.att(i)),
          b: qkv,
          ...asB(s.v),
          c: out,
          ...asC(s.out(i)),
          triangularA: "lower", // causal: att[t][t2] = 0 for t2 > t
        });
      }
    } else if (this.#useRows(name, T, hs, H / kvHeads)) {
      batch.dispatch(k.rows.forward, [att, qkv, out], params, grid(B * H * T, WG));
    } else {
      batch.dispatch(k.workgroup.forward, [qkv, out, att], params, grid(B * H * T, 1));
    }
  }

  /**
   * dout (B,T,C), qkv (B,T,(H+2·kvHeads)·C/H) and att (B,H,T,T) from {@linkcode forward} are
   * read; writes dqkv (same shape as qkv) `=` (every element; a key/value head's dk and dv are
   * summed over the query heads of its group). datt (B,H,T,T) is scratch: its causal part
   * (t2 ≤ t) is overwritten with the score gradients, the rest is left as it was. One `datt` can
   * serve every layer of a model. `dropout` must be the forward's (its `scratch` is not used).
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
    kvHeads: number = H,
    dropout?: AttentionDropout,
  ): void {
    const name = "attention.backward";
    const params = this.#check(name, B, T, C, H, kvHeads, dropout);
    const drop = dropout !== undefined && dropout.p > 0, k = drop ? this.#dropout : this.#plain;
    const hs = C / H, W = (H + 2 * kvHeads) * hs, g = H / kvHeads;
    this.#need(name, dout, B * T * C, "dout (B,T,C)");
    this.#need(name, qkv, B * T * W, "qkv (B,T,(H+2·kvHeads)·hs)");
    this.#need(name, att, B * H * T * T, "att (B,H,T,T)");
    this.#need(name, datt, B * H * T * T, "datt (B,H,T,T)");
    this.#need(name, dqkv, B * T * W, "dqkv (B,T,(H+2·kvHeads)·hs)");
    if (this.#useGemm(name, B, kvHeads)) {
      const s = this.#slices(B, T, C, H, kvHeads), scale = 1 / Math.sqrt(hs);
      // datt = dout·vᵀ (dL/d prob; with dropout, dL/d drop(prob) until the softmax backward
      // drops it), then the softmax backward in place (dL/d score, 0 above the diagonal);
      // dq = scale · datt·k, dk = scale · Σ_group dattᵀ·q, dv = Σ_group attᵀ·dout (with dropout
      // drop(att)ᵀ·dout, drop(att) written over datt once dq and dk have read it).
      for (let i = 0; i < g; i++) {
        this.#matmul.gemm(batch, {
          ...s.scores,
          a: dout,
          ...asA(s.out(i)),
          b: qkv,
          ...asB(s.v),
          c: datt,
          ...asC(s.att(i)),
          transB: true,
          lowerC: true, // the softmax backward writes 0 above the diagonal
        });
      }
      batch.dispatch(k.softmaxBackward, [att, datt], params, grid(B * H * T, WG));
      for (let i = 0; i < g; i++) {
        this.#matmul.gemm(batch, {
          ...s.values,
          a: datt,
          ...asA(s.att(i)),
          b: qkv,
          ...asB(s.k),
          c: dqkv,
          ...asC(s.q(i)),
          alpha: scale,
          triangularA: "lower",
        });
      }
      // op(A) = dattᵀ or attᵀ: 0 below the diagonal. The group's heads add up in order.
      const transposed = { ...s.values, transA: true, triangularA: "upper" as const };
      for (let i = 0; i < g; i++) {
        this.#matmul.gemm(batch, {
          ...transposed,
          a: datt,
          ...asA(s.att(i)),
          b: qkv,
          ...asB(s.q(i)),
          c: dqkv,
          ...asC(s.k),
          alpha: scale,
          accumulate: i > 0,
        });
      }
      if (drop) batch.dispatch(this.#dropoutRows, [att, datt], params, grid(B * H * T, WG));
      for (let i = 0; i < g; i++) {
        this.#matmul.gemm(batch, {
          ...transposed,
          a: drop ? datt : att,
          ...asA(s.att(i)),
          b: dout,
          ...asB(s.out(i)),
          c: dqkv,
          ...asC(s.v),
          accumulate: i > 0,
        });
      }
    } else if (this.#useRows(name, T, hs, g)) {
      batch.dispatch(
        k.rows.backwardQuery,
        [att, datt, qkv, dout, dqkv],
        params,
        grid(B * H * T, WG),
      );
      batch.dispatch(
        k.rows.backwardKey,
        [att, datt, qkv, dout, dqkv],
        params,
        grid(B * kvHeads * T, WG),
      );
    } else {
      checkLoops(`${name} (backward_key)`, keyLoops(T, hs, g), `T=${T}, hs=${hs}, g=${g}`);
      batch.dispatch(
        k.workgroup.backwardQuery,
        [qkv, dout, att, datt, dqkv],
        params,
        grid(B * H * T, 1),
      );
      batch.dispatch(
        k.workgroup.backwardKey,
        [qkv, dout, att, datt, dqkv],
        params,
        grid(B * kvHeads * T, 1),
      );
    }
  }

  /** Validates B, T, C, H, kvHeads and the dropout, and returns the uniform parameters. */
  #check(
    kernel: string,
    B: number,
    T: number,
    C: number,
    H: number,
    kvHeads: number,
    dropout: AttentionDropout | undefined,
  ): ArrayBuffer {
    for (
      const [what, v] of [["B", B], ["T", T], ["C", C], ["H", H], ["kvHeads", kvHeads]] as const
    ) {
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
    if (H % kvHeads !== 0) {
      throw new RangeError(
        `Cannot run kernel "${kernel}": the number of heads H=${H} is not divisible by the number ` +
          `of key/value heads kvHeads=${kvHeads}`,
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
    // The forward pass loops most; backward_query loops less, backward_key is checked where it
    // runs (its loops grow with the group size; see the WGSL header).
    checkLoops(
      kernel,
      Math.ceil(hs / WG) * (T + 3) + Math.ceil(T / WG) * (hs + 4) + 24,
      `T=${T}, hs=${hs}`,
    );
    const { p = 0, seed = 0 } = dropout ?? {};
    if (!(p >= 0 && p < 1)) {
      throw new RangeError(
        `Cannot run kernel "${kernel}": the dropout probability p must be in [0, 1), got ${p}`,
      );
    }
    if (!Number.isInteger(seed) || seed < 0 || seed >= TWO_32) {
      throw new RangeError(
        `Cannot run kernel "${kernel}": the dropout seed must be an integer in [0, 2^32), got ${seed}`,
      );
    }
    // The mask of kernels/dropout.ts: keep where the hash is ≥ round(p·2³²), scaled by 1/(1 − p).
    const threshold = Math.min(Math.round(p * TWO_32), TWO_32 - 1);
    return new Params().u32(B).u32(T).u32(C).u32(H).u32(hs).f32(1 / Math.sqrt(hs))
      .u32(kvHeads).u32((H + 2 * kvHeads) * hs).u32(seed).u32(threshold).f32(1 / (1 - p)).bytes;
  }

  /** Forward's dropout scratch, checked: (B,H,T,T) like `att`, and another buffer. */
  #scratch(kernel: string, dropout: AttentionDropout, att: Tensor, n: number): Tensor {
    const scratch = dropout.scratch;
    if (!scratch) {
      throw new RangeError(
        `Cannot run kernel "${kernel}": dropout p=${dropout.p} needs dropout.scratch, a (B,H,T,T) tensor`,
      );
    }
    this.#need(kernel, scratch, n, "dropout.scratch (B,H,T,T)");
    if (scratch.buffer === att.buffer) {
      throw new RangeError(
        `Cannot run kernel "${kernel}": dropout.scratch "${scratch.label}" is att's buffer; it must be another tensor`,
      );
    }
    return scratch;
  }

  /**
   * The variant that runs for this shape (`"gemm"`, `"rows"` or `"workgroup"`); throws when a
   * variant was forced on a shape it cannot run. `B` (default 1) matters only to `"gemm"`;
   * `kvHeads` defaults to H.
   */
  variantFor(
    T: number,
    C: number,
    H: number,
    B = 1,
    kvHeads: number = H,
  ): "workgroup" | "rows" | "gemm" {
    if (this.#useGemm("attention", B, kvHeads)) return "gemm";
    return this.#useRows("attention", T, C / H, H / kvHeads) ? "rows" : "workgroup";
  }

  /**
   * Whether the gemm variant runs: each of its GEMMs is batched over the B·kvHeads (b, kv head)
   * pairs. Throws when it is forced on more than one GEMM takes.
   */
  #useGemm(kernel: string, B: number, kvHeads: number): boolean {
    const fits = B * kvHeads <= MAX_GEMM_BATCH;
    if (this.#variant === "auto") return fits;
    if (this.#variant !== "gemm") return false;
    if (!fits) {
      throw new RangeError(
        `Cannot run kernel "${kernel} (gemm variant)": B·kvHeads=${
          B * kvHeads
        } heads exceed ${MAX_GEMM_BATCH}`,
      );
    }
    return true;
  }

  /**
   * The gemm variant's per-head GEMM shapes, `scores` (T×T, k = hs) and `values` ((T,T)·(T,hs)),
   * batched over the (b, kv head j) pairs, and where their operands sit for position i in the
   * group (query head j·g + i): `q(i)` in qkv/dqkv, `k` and `v` there, `out(i)` in out/dout
   * (rows of C), `att(i)` in att/datt. With kvHeads = H (g = 1) these are the [B, H] batches of
   * plain multi-head attention.
   */
  #slices(B: number, T: number, C: number, H: number, kvHeads: number) {
    const hs = C / H, g = H / kvHeads, W = (H + 2 * kvHeads) * hs, TT = T * T;
    const inQkv = (offset: number, step: number): HeadSlices => ({
      offset,
      ld: W,
      stride: [T * W, step],
    });
    const batch = [B, kvHeads] as const;
    return {
      g,
      scores: { m: T, n: T, k: hs, batch },
      values: { m: T, n: hs, k: T, batch },
      q: (i: number) => inQkv(i * hs, g * hs),
      k: inQkv(C, hs),
      v: inQkv(C + kvHeads * hs, hs),
      out: (i: number): HeadSlices => ({ offset: i * hs, ld: C, stride: [T * C, g * hs] }),
      att: (i: number): HeadSlices => ({ offset: i * TT, ld: T, stride: [H * TT, g * TT] }),
    };
  }

  /** Whether the rows variant runs this shape; throws when it is forced on a shape it cannot run. */
  #useRows(kernel: string, T: number, hs: number, g: number): boolean {
    if (this.#variant === "workgroup" || this.#variant === "gemm") return false;
    const fits = hs % 4 === 0 && rowsLoops(T, hs, g) <= LOOP_CAP;
    if (this.#variant === "auto") return fits;
    if (hs % 4 !== 0) {
      throw new RangeError(
        `Cannot run kernel "${kernel} (rows variant)": head size C/H=${hs} is not a multiple of 4`,
      );
    }
    checkLoops(`${kernel} (rows variant)`, rowsLoops(T, hs, g), `T=${T}, hs=${hs}, g=${g}`);
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

/** `s` as a GEMM's A operand. */
function asA(s: HeadSlices) {
  return { offsetA: s.offset, lda: s.ld, strideA: s.stride };
}

/** `s` as a GEMM's B operand. */
function asB(s: HeadSlices) {
  return { offsetB: s.offset, ldb: s.ld, strideB: s.stride };
}

/** `s` as a GEMM's C operand. */
function asC(s: HeadSlices) {
  return { offsetC: s.offset, ldc: s.ld, strideC: s.stride };
}
