/**
 * KV-cache attention for generation: store the keys and values of new positions in a per-layer
 * cache, and attend new query rows to every cached position up to their own.
 * Heads: H query heads of size hs = C/H and `kvHeads` = Hkv key/value heads (Hkv divides H,
 * default H); query head h uses key/value head ⌊h/g⌋, g = H/Hkv, as in `Attention`
 * (kernels/attention.ts). C = H·hs is the width of q and of the output.
 * Shapes: `qkv` is (B,Tn,W), W = (H + 2·Hkv)·hs, the q/k/v rows of Tn new positions per sequence
 * as `Attention` reads them (q heads at [0,C), k heads at [C, C+KV), v heads at [C+KV, W),
 * KV = Hkv·hs; with Hkv = H, GPT-2's `c_attn` output (B,Tn,3C)); `cache` is (B,S,2·KV), the keys
 * at [0,KV) and the values at [KV,2·KV) of each position; `start` is (B) u32, the position of
 * each sequence's first new row; `out` is (B,Tn,C).
 *
 * @module
 */

import type { Batch, Gpu, Kernel } from "../runtime/mod.ts";
import type { Tensor } from "../runtime/tensor.ts";
import { checkLoops, grid, Params } from "./common.ts";
import code from "./decode.wgsl" with { type: "text" };

const FILE = "kernels/decode.wgsl";
/** Threads per workgroup of `attend`, as in the WGSL. */
const WG = 64;

/** The uniform block shared by both entry points (append ignores H, hs and scale). */
function params(
  B: number,
  Tn: number,
  S: number,
  C: number,
  H: number,
  kvHeads: number,
): ArrayBuffer {
  const hs = C / H, KV = kvHeads * hs;
  return new Params().u32(B).u32(Tn).u32(S).u32(C).u32(H).u32(hs).f32(1 / Math.sqrt(hs))
    .u32(kvHeads).u32(KV).u32(C + 2 * KV).bytes;
}

/**
 * The KV-cache kernels.
 *
 * @example
 * ```ts
 * import { DecodeAttention, Gpu } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const dec = await DecodeAttention.create(gpu);
 * const [B, S, C, H] = [1, 2, 2, 1];
 * const cache = gpu.tensor([B, S, 2 * C]);
 * const start = gpu.tensor([B], new Uint32Array([0]));
 * // position 0: q=(1,0) k=(1,0) v=(1,2); position 1: q=(0,1) k=(0,1) v=(3,4)
 * const first = gpu.tensor([B, 1, 3 * C], new Float32Array([1, 0, 1, 0, 1, 2]));
 * const second = gpu.tensor([B, 1, 3 * C], new Float32Array([0, 1, 0, 1, 3, 4]));
 * const out = gpu.tensor([B, 1, C]);
 * let batch = gpu.batch();
 * dec.append(batch, first, cache, start, [0], B, 1, S, C);
 * await batch.submit();
 * batch = gpu.batch();
 * batch.write(start, new Uint32Array([1]));
 * dec.append(batch, second, cache, start, [1], B, 1, S, C);
 * dec.attend(batch, second, cache, start, [1], out, B, 1, S, C, H);
 * await batch.submit();
 * const [y] = await gpu.read([out]);
 * // position 1 gives weight e^(1/√2) / (1 + e^(1/√2)) ≈ 0.67 to itself: y ≈ (2.34, 3.34).
 * if (!(Math.abs(y[0] - 2.34) < 0.01 && Math.abs(y[1] - 3.34) < 0.01)) throw new Error("decode failed");
 * for (const t of [cache, start, first, second, out]) t.release();
 * ```
 *
 * @example Grouped-query heads: H = 2 query heads of size 1 share kvHeads = 1 key/value head
 * ```ts
 * import { DecodeAttention, Gpu } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const dec = await DecodeAttention.create(gpu);
 * const [B, S, C, H, kvHeads] = [1, 4, 2, 2, 1];
 * const cache = gpu.tensor([B, S, 2 * kvHeads]); // one key and one value per position
 * const start = gpu.tensor([B], new Uint32Array([0]));
 * // a row is (q0, q1, k, v): the first position attends only to itself, so both heads give v = 5
 * const qkv = gpu.tensor([B, 1, C + 2 * kvHeads], new Float32Array([1, 2, 3, 5]));
 * const out = gpu.tensor([B, 1, C]);
 * const batch = gpu.batch();
 * dec.append(batch, qkv, cache, start, [0], B, 1, S, C, H, kvHeads);
 * dec.attend(batch, qkv, cache, start, [0], out, B, 1, S, C, H, kvHeads);
 * await batch.submit();
 * const [y] = await gpu.read([out]);
 * if (y[0] !== 5 || y[1] !== 5) throw new Error("grouped-query decode failed");
 * for (const t of [cache, start, qkv, out]) t.release();
 * ```
 */
export class DecodeAttention {
  /** Most positions a cache may hold (one workgroup-memory row of scores). */
  static readonly maxPositions = 1024;
  /** Largest head size hs = C/H. */
  static readonly maxHeadSize = 128;

  readonly #append: Kernel;
  readonly #attend: Kernel;
  readonly #maxBindingBytes: number;

  private constructor(append: Kernel, attend: Kernel, maxBindingBytes: number) {
    this.#append = append;
    this.#attend = attend;
    this.#maxBindingBytes = maxBindingBytes;
  }

  /** Compiles (or fetches from the cache) the kernels. */
  static async create(gpu: Gpu): Promise<DecodeAttention> {
    const [append, attend] = await Promise.all([
      gpu.kernel({
        name: "decode.append",
        file: FILE,
        code,
        entry: "append",
        bindings: ["uniform", "read", "read", null, null, "write"],
      }),
      gpu.kernel({
        name: "decode.attend",
        file: FILE,
        code,
        entry: "attend",
        bindings: ["uniform", "read", "read", "read", "write"],
      }),
    ]);
    return new DecodeAttention(append, attend, gpu.maxBindingBytes);
  }

  /**
   * Stores the keys and values of qkv (B,Tn,(H+2·kvHeads)·C/H) in cache (B,S,2·kvHeads·C/H) at
   * positions `start[b]..start[b]+Tn-1` (writes =, those rows only). `hostStart` is the CPU copy
   * of the `start` tensor (B) u32, used to check that every row fits the cache. Only the ratio
   * kvHeads/H matters here: the defaults (H = 1, kvHeads = H) mean multi-head, a (B,S,2C) cache.
   */
  append(
    batch: Batch,
    qkv: Tensor,
    cache: Tensor,
    start: Tensor,
    hostStart: ArrayLike<number>,
    B: number,
    Tn: number,
    S: number,
    C: number,
    H = 1,
    kvHeads: number = H,
  ): void {
    const name = "decode.append";
    this.#check(name, qkv, cache, start, hostStart, B, Tn, S, C, H, kvHeads);
    batch.dispatch(
      this.#append,
      [qkv, start, cache],
      params(B, Tn, S, C, H, kvHeads),
      grid(B * Tn * 2 * kvHeads * (C / H), 256),
    );
  }

  /**
   * Attention of the new rows of qkv (B,Tn,(H+2·kvHeads)·C/H) (their queries) over cache
   * (B,S,2·kvHeads·C/H): row t of sequence b, at position `start[b]+t`, sees positions
   * 0..start[b]+t; writes out (B,Tn,C) `=`. Append the new rows first (with the same H and
   * kvHeads). `hostStart` is the CPU copy of `start` (B) u32.
   */
  attend(
    batch: Batch,
    qkv: Tensor,
    cache: Tensor,
    start: Tensor,
    hostStart: ArrayLike<number>,
    out: Tensor,
    B: number,
    Tn: number,
    S: number,
    C: number,
    H: number,
    kvHeads: number = H,
  ): void {
    const name = "decode.attend";
    this.#check(name, qkv, cache, start, hostStart, B, Tn, S, C, H, kvHeads);
    this.#exact(name, out, B * Tn * C, `out (${B},${Tn},${C})`);
    const hs = C / H;
    if (hs > DecodeAttention.maxHeadSize) {
      throw new RangeError(
        `Cannot run kernel "${name}": head size C/H=${hs} is over the largest ${DecodeAttention.maxHeadSize}`,
      );
    }
    let longest = 0;
    for (let b = 0; b < B; b++) longest = Math.max(longest, hostStart[b] + Tn);
    checkLoops(
      name,
      Math.ceil(hs / WG) * (longest + 3) + Math.ceil(longest / WG) * (hs + 3) + 24,
      `${longest} positions, hs=${hs}`,
    );
    batch.dispatch(
      this.#attend,
      [qkv, start, cache, out],
      params(B, Tn, S, C, H, kvHeads),
      grid(B * H * Tn, 1),
    );
  }

  /** Validates the sizes, heads, tensors and start positions. */
  #check(
    name: string,
    qkv: Tensor,
    cache: Tensor,
    start: Tensor,
    hostStart: ArrayLike<number>,
    B: number,
    Tn: number,
    S: number,
    C: number,
    H: number,
    kvHeads: number,
  ): void {
    for (
      const [what, v] of [
        ["B", B],
        ["Tn", Tn],
        ["S", S],
        ["C", C],
        ["H", H],
        ["kvHeads", kvHeads],
      ] as const
    ) {
      if (!Number.isInteger(v) || v < 1) {
        throw new RangeError(
          `Cannot run kernel "${name}": ${what} must be a positive integer, got ${v}`,
        );
      }
    }
    if (C % H !== 0) {
      throw new RangeError(
        `Cannot run kernel "${name}": C=${C} is not divisible by the number of heads H=${H}`,
      );
    }
    if (H % kvHeads !== 0) {
      throw new RangeError(
        `Cannot run kernel "${name}": the number of heads H=${H} is not divisible by the number ` +
          `of key/value heads kvHeads=${kvHeads}`,
      );
    }
    const KV = kvHeads * (C / H), W = C + 2 * KV;
    if (S > DecodeAttention.maxPositions) {
      throw new RangeError(
        `Cannot run kernel "${name}": cache of S=${S} positions is over the most ${DecodeAttention.maxPositions}`,
      );
    }
    this.#exact(name, qkv, B * Tn * W, `qkv (${B},${Tn},${W})`);
    this.#exact(name, cache, B * S * 2 * KV, `cache (${B},${S},${2 * KV})`);
    this.#exact(name, start, B, `start (${B})`);
    if (hostStart.length !== B) {
      throw new RangeError(
        `Cannot run kernel "${name}": hostStart has ${hostStart.length} positions, expected B=${B}`,
      );
    }
    for (let b = 0; b < B; b++) {
      const s = hostStart[b];
      if (!Number.isInteger(s) || s < 0 || s + Tn > S) {
        throw new RangeError(
          `Cannot run kernel "${name}": start[${b}]=${s} with Tn=${Tn} new rows does not fit the cache of S=${S} positions`,
        );
      }
    }
  }

  /** Checks that `t` holds exactly `n` elements and fits one storage binding. */
  #exact(name: string, t: Tensor, n: number, what: string): void {
    if (t.size !== n) {
      throw new RangeError(
        `Cannot run kernel "${name}": tensor "${t.label}" (${what}) has ${t.size} elements, expected ${n}`,
      );
    }
    if (t.byteLength > this.#maxBindingBytes) {
      throw new RangeError(
        `Cannot run kernel "${name}": tensor "${t.label}" (${what}) has ${t.byteLength} bytes, over this device's ` +
          `${this.#maxBindingBytes}-byte storage binding limit`,
      );
    }
  }
}
