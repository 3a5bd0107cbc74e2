/**
 * Causal multi-head self-attention, GPT-2's core between `c_attn` and `c_proj` (llm.c's
 * `attention_forward` / `attention_backward`).
 * Shapes: `qkv` is (B,T,3C) with q, k, v at channels [0,C), [C,2C), [2C,3C) (Hugging Face order),
 * head h owning channels h·hs..(h+1)·hs of each, hs = C/H; `out`, `dout` are (B,T,C); `att`, `datt`
 * are (B,H,T,T); `dqkv` is (B,T,3C).
 *
 * Forward saves the attention probabilities `att` for backward (no recomputation of scores).
 * Backward runs two deterministic passes: one workgroup per query row writes dq and the score
 * gradients `datt`, then one workgroup per key row sums dk and dv over the queries that saw it.
 *
 * @module
 */

import type { Batch, Gpu, Kernel } from "../runtime/mod.ts";
import type { Tensor } from "../runtime/tensor.ts";
import { checkLoops, grid, needSize, Params } from "./common.ts";
import code from "./attention.wgsl" with { type: "text" };

const FILE = "kernels/attention.wgsl";
/** Threads per workgroup, as in the WGSL. */
const WG = 64;

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

  readonly #fwd: Kernel;
  readonly #bwdQuery: Kernel;
  readonly #bwdKey: Kernel;
  readonly #maxBindingBytes: number;

  private constructor(fwd: Kernel, bwdQuery: Kernel, bwdKey: Kernel, maxBindingBytes: number) {
    this.#fwd = fwd;
    this.#bwdQuery = bwdQuery;
    this.#bwdKey = bwdKey;
    this.#maxBindingBytes = maxBindingBytes;
  }

  /** Compiles (or fetches from the cache) the kernels. */
  static async create(gpu: Gpu): Promise<Attention> {
    const [fwd, bwdQuery, bwdKey] = await Promise.all([
      gpu.kernel({
        name: "attention.forward",
        file: FILE,
        code,
        entry: "forward",
        bindings: ["uniform", "read", "write", "write"],
      }),
      gpu.kernel({
        name: "attention.backward_query",
        file: FILE,
        code,
        entry: "backward_query",
        bindings: ["uniform", "read", null, null, "read", "read", "write", null, "write"],
      }),
      gpu.kernel({
        name: "attention.backward_key",
        file: FILE,
        code,
        entry: "backward_key",
        bindings: ["uniform", "read", null, null, "read", "read", null, "read", "write"],
      }),
    ]);
    return new Attention(fwd, bwdQuery, bwdKey, gpu.maxBindingBytes);
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
    const name = this.#fwd.name;
    const params = this.#check(name, B, T, C, H);
    this.#need(name, qkv, B * T * 3 * C, "qkv (B,T,3C)");
    this.#need(name, out, B * T * C, "out (B,T,C)");
    this.#need(name, att, B * H * T * T, "att (B,H,T,T)");
    batch.dispatch(this.#fwd, [qkv, out, att], params, grid(B * H * T, 1));
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
    const groups = grid(B * H * T, 1);
    batch.dispatch(this.#bwdQuery, [qkv, dout, att, datt, dqkv], params, groups);
    batch.dispatch(this.#bwdKey, [qkv, dout, att, datt, dqkv], params, groups);
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
      Math.ceil(hs / WG) * (T + 2) + Math.ceil(T / WG) * (hs + 3) + 12,
      `T=${T}, hs=${hs}`,
    );
    return new Params().u32(B).u32(T).u32(C).u32(H).u32(hs).f32(1 / Math.sqrt(hs)).bytes;
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
