/**
 * Token + position embedding: `out (B,T,C) = wte[ids[b,t]] + wpe[t]` forward; `dwte +=` a
 * scatter of `dout` by token id and `dwpe += Σ_b dout[b,t]` backward, deterministic and without
 * float atomics.
 *
 * Token ids are u32 (upload them with a `Uint32Array`). Ids are known on the CPU when a batch is
 * built, so the wrapper checks them there (an id outside `[0, V)` throws naming its position and
 * value) and builds the backward's index there: {@linkcode Embedding.prepareBackward} sorts the
 * positions by token id so that each row of `dwte` is summed by one writer in a fixed order.
 *
 * A token table larger than one storage binding (GPT-2 small's 154 MB `wte` on lavapipe or in a
 * browser) is bound in row chunks (`Gpu.rowChunks`): the forward runs once per chunk and writes
 * the positions whose ids fall in it; the backward runs each chunk's segments of the index. Every
 * output element is computed by the same arithmetic as without chunks (the same bits).
 *
 * The forward's token table may be stored as packed halves (a frozen `wte` in f16 or bf16,
 * runtime/tensor.ts), widened exactly to f32 as it is read; its gradient is always f32.
 *
 * @module
 */

import type { Batch, Gpu, Kernel } from "../runtime/mod.ts";
import type { HalfDtype, Tensor } from "../runtime/tensor.ts";
import { checkLoops, grid, needSize, Params } from "./common.ts";
import code from "./embedding.wgsl" with { type: "text" };

const FILE = "kernels/embedding.wgsl";

/**
 * Segments (distinct token ids) with at most this many positions are summed by one invocation per
 * channel; longer ones by one 256-wide workgroup per channel. Both stay far under the loop cap.
 */
const SHORT = 1024;

/**
 * The CSR index of one batch's token ids that {@linkcode Embedding.backward} needs: positions
 * sorted by token id and one segment per distinct id, uploaded to the GPU. Build it once per batch
 * with {@linkcode Embedding.prepareBackward}; {@linkcode release} it after the batches that use it
 * are submitted.
 *
 * @example
 * ```ts
 * import { Embedding, Gpu } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const emb = await Embedding.create(gpu);
 * const index = emb.prepareBackward([5, 2, 5, 5], 8);
 * // Two distinct ids, so two segments; id 5 has the longest (3 positions).
 * if (index.positions !== 4 || index.shortCount !== 2 || index.longest !== 3) throw new Error();
 * index.release();
 * ```
 */
export class EmbeddingIndex {
  /** Number of positions (B·T). */
  readonly positions: number;
  /** Vocabulary size the ids were checked against. */
  readonly vocab: number;
  /** Positions sorted by (token id, position), u32 (N). */
  readonly order: Tensor;
  /** Segments of at most 1,024 positions: (id, start, end) triples into `order`, or null if none. */
  readonly short: Tensor | null;
  /** Segments of more than 1,024 positions, as `short`, or null if none. */
  readonly long: Tensor | null;
  /** Number of short segments. */
  readonly shortCount: number;
  /** Number of long segments. */
  readonly longCount: number;
  /** Positions of the longest segment. */
  readonly longest: number;
  /** The short and long segments on the CPU, to find a vocabulary chunk's segments. */
  readonly #host: { short: Uint32Array; long: Uint32Array };

  /** Use {@linkcode Embedding.prepareBackward}. */
  constructor(gpu: Gpu, ids: ArrayLike<number>, vocab: number) {
    const n = ids.length;
    const order = new Uint32Array(n);
    for (let i = 0; i < n; i++) order[i] = i;
    order.sort((a, b) => ids[a] - ids[b] || a - b);
    const short: number[] = [], long: number[] = [];
    let longest = 0;
    for (let start = 0; start < n;) {
      const id = ids[order[start]];
      let end = start + 1;
      while (end < n && ids[order[end]] === id) end++;
      (end - start > SHORT ? long : short).push(id, start, end);
      longest = Math.max(longest, end - start);
      start = end;
    }
    this.positions = n;
    this.vocab = vocab;
    this.longest = longest;
    this.shortCount = short.length / 3;
    this.longCount = long.length / 3;
    this.#host = { short: Uint32Array.from(short), long: Uint32Array.from(long) };
    // An empty batch still gets a 1-element order tensor: a binding cannot be empty.
    this.order = gpu.tensor(
      [Math.max(n, 1)],
      n > 0 ? order : new Uint32Array(1),
      "embedding.order",
    );
    this.short = short.length > 0
      ? gpu.tensor([short.length], Uint32Array.from(short), "embedding.short")
      : null;
    this.long = long.length > 0
      ? gpu.tensor([long.length], Uint32Array.from(long), "embedding.long")
      : null;
  }

  /**
   * The segments of `kind` whose token ids lie in `[v0, v1)`: `[first, end)` segment indices
   * (segments are sorted by id, so they are consecutive).
   */
  segments(kind: "short" | "long", v0: number, v1: number): [number, number] {
    const seg = this.#host[kind];
    const firstAtLeast = (v: number) => {
      let lo = 0, hi = seg.length / 3;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (seg[3 * mid] < v) lo = mid + 1;
        else hi = mid;
      }
      return lo;
    };
    return [firstAtLeast(v0), firstAtLeast(v1)];
  }

  /** Returns the index's tensors to the pool. */
  release(): void {
    this.order.release();
    this.short?.release();
    this.long?.release();
  }
}

/**
 * The token + position embedding kernels.
 *
 * @example
 * ```ts
 * import { Embedding, Gpu } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const emb = await Embedding.create(gpu);
 * const [B, T, C, V] = [1, 2, 2, 3];
 * const hostIds = new Uint32Array([2, 0]);
 * const ids = gpu.tensor([B, T], hostIds);
 * const wte = gpu.tensor([V, C], new Float32Array([0, 0, 1, 1, 2, 2]), "wte");
 * const wpe = gpu.tensor([T, C], new Float32Array([10, 10, 20, 20]), "wpe");
 * const out = gpu.tensor([B, T, C]);
 * const dwte = gpu.tensor([V, C], new Float32Array(V * C), "dwte");
 * const index = emb.prepareBackward(hostIds, V);
 * const batch = gpu.batch();
 * emb.forward(batch, ids, hostIds, wte, wpe, out);
 * emb.backward(batch, index, out, dwte, null); // dout = out, for the example
 * await batch.submit();
 * const [y, dw] = await gpu.read([out, dwte]);
 * if (y[0] !== 12 || y[2] !== 20 || dw[4] !== 12) throw new Error("embedding failed");
 * index.release();
 * for (const t of [ids, wte, wpe, out, dwte]) t.release();
 * ```
 */
export class Embedding {
  readonly #gpu: Gpu;
  readonly #fwd: Kernel;
  readonly #bwdShort: Kernel;
  readonly #bwdLong: Kernel;
  readonly #bwdWpe: Kernel;
  readonly #fwdTokens: Kernel;
  /** The forward kernels (with, without positions) for a table of packed halves, by dtype. */
  readonly #fwdHalf: Record<HalfDtype, [Kernel, Kernel]>;

  private constructor(gpu: Gpu, kernels: Kernel[]) {
    this.#gpu = gpu;
    [this.#fwd, this.#bwdShort, this.#bwdLong, this.#bwdWpe, this.#fwdTokens] = kernels;
    this.#fwdHalf = { f16: [kernels[5], kernels[6]], bf16: [kernels[7], kernels[8]] };
  }

  /** Compiles (or fetches from the cache) the kernels. */
  static async create(gpu: Gpu): Promise<Embedding> {
    const k = (
      entry: string,
      bindings: ("uniform" | "read" | "write" | null)[],
      half?: HalfDtype,
    ) =>
      gpu.kernel({
        name: `embedding.${entry}${half ? `.${half}` : ""}`,
        file: FILE,
        code,
        entry,
        bindings,
        // The table is the second storage binding of both forward entries.
        ...(half
          ? { constants: { TABLE_DTYPE: half === "f16" ? 1 : 2 }, packed: { 1: half } }
          : {}),
      });
    const fwd = ["uniform", "read", "read", "read", "write"] as ("uniform" | "read" | "write")[];
    const fwdTokens = [
      "uniform",
      "read",
      "read",
      null,
      "write",
    ] as ("uniform" | "read" | "write" | null)[];
    const kernels = await Promise.all([
      k("forward", fwd),
      k("backward_wte_short", ["uniform", null, null, null, null, "read", "read", "read", "write"]),
      k("backward_wte_long", ["uniform", null, null, null, null, "read", "read", "read", "write"]),
      k("backward_wpe", ["uniform", null, null, null, null, "read", null, null, null, "write"]),
      k("forward_tokens", fwdTokens),
      k("forward", fwd, "f16"),
      k("forward_tokens", fwdTokens, "f16"),
      k("forward", fwd, "bf16"),
      k("forward_tokens", fwdTokens, "bf16"),
    ]);
    return new Embedding(gpu, kernels);
  }

  /**
   * Throws a `RangeError` naming the first position (and `(b, t)` when `T` is given) whose id is
   * not an integer in `[0, V)`.
   */
  static checkIds(ids: ArrayLike<number>, V: number, T?: number): void {
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!(Number.isInteger(id) && id >= 0 && id < V)) {
        const where = T ? `position ${i} (b=${Math.floor(i / T)}, t=${i % T})` : `position ${i}`;
        throw new RangeError(
          `Cannot embed token id ${id} at ${where}: the vocabulary holds ids 0..${V - 1}`,
        );
      }
    }
  }

  /**
   * `out (B,T,C) = wte[ids[b,t]] (V,C) + wpe[t] (≥T,C)` (writes), or `wte[ids[b,t]]` alone when
   * `wpe` is null (models with rotary positions). `ids` is a u32 tensor of shape (B,T) and
   * `hostIds` the same ids on the CPU, checked against `V = wte.size / C` here. A `wte` larger
   * than one storage binding is read chunk by chunk. `wte` may be packed f16 or bf16 (frozen).
   */
  forward(
    batch: Batch,
    ids: Tensor,
    hostIds: ArrayLike<number>,
    wte: Tensor,
    wpe: Tensor | null,
    out: Tensor,
  ): void {
    const name = "embedding.forward";
    const [B, T, C] = shape3(name, out);
    const V = vocab(name, wte, C);
    if (ids.size !== B * T) throw shapeError(name, ids, `${ids.size} ids, expected B·T = ${B * T}`);
    if (hostIds.length !== B * T) {
      throw new RangeError(
        `Cannot run kernel "${name}": hostIds has ${hostIds.length} ids, expected B·T = ${B * T}`,
      );
    }
    if (wpe) needSize(name, wpe, T * C, "wpe, (≥T, C)");
    Embedding.checkIds(hostIds, V, T);
    const n = B * T * C;
    const [withPositions, tokensOnly] = wte.dtype === "f32"
      ? [this.#fwd, this.#fwdTokens]
      : this.#fwdHalf[wte.dtype];
    for (const { start, count } of this.#gpu.rowChunks(V, C, { elementBytes: wte.elementBytes })) {
      const table = count === V ? wte : wte.view(start * C, [count, C]);
      batch.dispatch(
        wpe ? withPositions : tokensOnly,
        wpe ? [ids, table, wpe, out] : [ids, table, out],
        new Params().u32(n).u32(T).u32(C).u32(V).u32(B).u32(start).u32(start + count).bytes,
        grid(n, 256),
      );
    }
  }

  /**
   * Checks `ids` (flat, B·T positions) against the vocabulary size `V` and builds and uploads the
   * index {@linkcode backward} needs. Build it once per batch; release it after submitting.
   */
  prepareBackward(ids: ArrayLike<number>, V: number): EmbeddingIndex {
    Embedding.checkIds(ids, V);
    return new EmbeddingIndex(this.#gpu, ids, V);
  }

  /**
   * `dwte (V,C) += scatter of dout (B,T,C) by id`; `dwpe (≥T,C) rows 0..T-1 += Σ_b dout[b,t]`
   * (accumulate). Either gradient may be null (frozen), and its kernel is skipped. A `dwte` larger
   * than one storage binding is accumulated chunk by chunk.
   */
  backward(
    batch: Batch,
    index: EmbeddingIndex,
    dout: Tensor,
    dwte: Tensor | null,
    dwpe: Tensor | null,
  ): void {
    const name = "embedding.backward";
    const [B, T, C] = shape3(name, dout);
    if (index.positions !== B * T) {
      throw new RangeError(
        `Cannot run kernel "${name}": the index was built for ${index.positions} positions, dout "${dout.label}" has B·T = ${
          B * T
        }`,
      );
    }
    if (dwte) {
      if (dwte.size !== index.vocab * C) {
        throw shapeError(name, dwte, `${dwte.size} elements, expected V·C = ${index.vocab}·${C}`);
      }
      if (index.long) {
        checkLoops(
          "embedding.backward_wte_long",
          Math.ceil(index.longest / 256) + 10, // + exit tests and the 8-level tree
          `a token repeated ${index.longest} times`,
        );
      }
      const V = index.vocab;
      for (const { start, count } of this.#gpu.rowChunks(V, C)) {
        const table = count === V ? dwte : dwte.view(start * C, [count, C]);
        for (const kind of ["short", "long"] as const) {
          const segments = index[kind];
          const [first, end] = index.segments(kind, start, start + count);
          if (!segments || end === first) continue;
          const params = new Params().u32(end - first).u32(T).u32(C).u32(V).u32(B)
            .u32(start).u32(start + count).u32(first).bytes;
          batch.dispatch(
            kind === "short" ? this.#bwdShort : this.#bwdLong,
            [dout, index.order, segments, table],
            params,
            kind === "short" ? grid((end - first) * C, 256) : grid((end - first) * C, 1),
          );
        }
      }
    }
    if (dwpe) {
      needSize(name, dwpe, T * C, "dwpe, (≥T, C)");
      checkLoops("embedding.backward_wpe", B + 1, `batch size B=${B}`);
      batch.dispatch(
        this.#bwdWpe,
        [dout, dwpe],
        new Params().u32(T * C).u32(T).u32(C).u32(0).u32(B).bytes,
        grid(T * C, 256),
      );
    }
  }
}

function shapeError(name: string, t: Tensor, what: string): RangeError {
  return new RangeError(`Cannot run kernel "${name}": tensor "${t.label}" has ${what}`);
}

function shape3(name: string, t: Tensor): [number, number, number] {
  if (t.shape.length !== 3) {
    throw shapeError(name, t, `shape [${t.shape.join(", ")}], expected (B, T, C)`);
  }
  return t.shape as [number, number, number];
}

function vocab(name: string, wte: Tensor, C: number): number {
  if (wte.size % C !== 0 || wte.size === 0) {
    throw shapeError(name, wte, `${wte.size} elements, expected (V, C) with C = ${C}`);
  }
  return wte.size / C;
}
