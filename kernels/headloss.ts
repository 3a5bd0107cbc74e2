/**
 * The language-model head and its cross-entropy, fused and chunked over the vocabulary, so that
 * the (M,V) logits never exist (GPT-2 small at batch 8 × 256 tokens: 411 MB of logits, over the
 * 128 MiB a storage binding may cover on lavapipe and in browsers).
 *
 * Forward, for each chunk of Vc vocabulary rows of W: `scratch (M,Vc) = x · W_cᵀ` (a GEMM), then
 * {@linkcode CrossEntropy.chunkStats} folds the chunk into each row's running max, running sum of
 * exponentials and target logit; the last chunk writes the per-row losses. Backward, chunk by
 * chunk (last first): the chunk's logits again (the last forward chunk is still in the scratch,
 * so it is not recomputed), {@linkcode CrossEntropy.chunkGrad} turns them into
 * `dlogits_c = (softmax_c − onehot_c) · scale` in place, and two GEMMs accumulate
 * `dx += dlogits_c · W_c` and `dW_c += dlogits_cᵀ · x` (skipped for a frozen W). The gradients
 * are exact: the same softmax as the unchunked loss, from the same statistics, summed over the
 * vocabulary chunk by chunk instead of in one pass.
 *
 * Every chunk has the same width, so every GEMM of the head has one shape (the matmul's packed
 * operands are reused, not allocated again for a narrower last chunk): the last chunk ends at V and
 * overlaps the one before it, and leaves out the columns that one counted (their gradient is 0, so
 * they add exact zeros). A W larger than one storage binding (a GPT-2 token table) is bound as
 * views of its chunks (`Gpu.rowRange`). A frozen W may be stored as packed f16 or bf16 halves
 * (runtime/tensor.ts): the GEMMs read it as their B operand, widened to f32 (the Matmul must be
 * created with that `halfB`), and dW must then be null. Chunk widths are planned from W's f32 size
 * either way: the matmul's packed copy of a chunk's rows is f32.
 *
 * @module
 */

import type { Batch, Gpu } from "../runtime/gpu.ts";
import type { Tensor } from "../runtime/tensor.ts";
import type { CrossEntropy, VocabChunk } from "./crossentropy.ts";
import type { Matmul } from "./matmul.ts";

/**
 * Bytes of logits scratch a chunked head uses by default (32 MiB: GPT-2 small at 2,048 tokens
 * per step takes 4,096 vocabulary rows at a time, 13 chunks, instead of 411 MB of logits).
 */
export const HEAD_CHUNK_BYTES: number = 32 << 20;

/** The tensors of a chunked head + loss; see {@linkcode HeadLoss}. */
export interface HeadLossTensors {
  /** Head input (M,C). */
  x: Tensor;
  /** Head weight W (V,C): logits = x·Wᵀ (a tied token table or `lm_head.weight`). */
  weight: Tensor;
  /** Shifted targets (M) i32, -100 for ignored rows. */
  targets: Tensor;
  /** Per-row losses (M), written `=` (0 for ignored rows). */
  losses: Tensor;
  /** Per-row statistics (M,3): running max, running sum, target logit. */
  stats: Tensor;
  /** Logits of one chunk (M,Vc); Vc from {@linkcode HeadLoss.chunkColumns}. */
  scratch: Tensor;
}

/** Gradients of {@linkcode HeadLoss.backward}. */
export interface HeadLossGrads {
  /** Input gradient (M,C), written `=`. */
  dx: Tensor;
  /** Weight gradient (V,C), accumulated `+=`, or null (frozen W: not computed). */
  dW: Tensor | null;
}

/**
 * The chunked head + cross-entropy over a {@linkcode Matmul} and a {@linkcode CrossEntropy}.
 *
 * @example
 * ```ts
 * import { CrossEntropy, Gpu, HeadLoss, Matmul } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const head = new HeadLoss(gpu, await Matmul.create(gpu), await CrossEntropy.create(gpu));
 * const [M, C, V] = [2, 4, 10];
 * const Vc = 4; // three chunks: 4 + 4 + 2 vocabulary rows
 * const hostTargets = new Int32Array([9, -100]);
 * const t = {
 *   x: gpu.tensor([M, C], new Float32Array(M * C).fill(0.5), "x"),
 *   weight: gpu.tensor([V, C], Float32Array.from({ length: V * C }, (_, i) => i / 40), "W"),
 *   targets: gpu.tensor([M], hostTargets, "targets"),
 *   losses: gpu.tensor([M], undefined, "losses"),
 *   stats: gpu.tensor([M, 3], undefined, "stats"),
 *   scratch: gpu.tensor([M, Vc], undefined, "scratch"),
 * };
 * const dx = gpu.tensor([M, C], undefined, "dx");
 * const batch = gpu.batch();
 * head.forward(batch, t);
 * head.backward(batch, t, { dx, dW: null }, CrossEntropy.meanScale(hostTargets, V));
 * await batch.submit();
 * const [losses] = await gpu.read([t.losses]);
 * // Row 0's logits x·W[v]ᵀ = (16v + 6)/80 grow with v: its target 9 has the largest, so a loss under log V.
 * if (!(losses[0] > 0 && losses[0] < Math.log(V)) || losses[1] !== 0) throw new Error("head loss failed");
 * for (const x of [...Object.values(t), dx]) x.release();
 * ```
 */
export class HeadLoss {
  readonly #gpu: Gpu;
  readonly #matmul: Matmul;
  readonly #ce: CrossEntropy;

  /** A chunked head over these kernels (nothing to compile of its own). */
  constructor(gpu: Gpu, matmul: Matmul, crossentropy: CrossEntropy) {
    this.#gpu = gpu;
    this.#matmul = matmul;
    this.#ce = crossentropy;
  }

  /**
   * Vocabulary rows per chunk for M rows of input, a (V,C) weight and a scratch of at most
   * `budgetBytes` (capped at one storage binding): V when the (M,V) logits fit the budget and W
   * fits one binding (one chunk); else as few chunks as keep both a chunk's logits and its rows
   * of W within the budget (the matmul's packed copies of the operands are as large) and within
   * one binding (with the binding offset alignment's slack), of equal width (the last one's
   * overlap is then small), a multiple of 4 (the rows variant's vec4s).
   */
  static chunkColumns(gpu: Gpu, M: number, V: number, C: number, budgetBytes: number): number {
    const limit = gpu.maxBindingBytes, budget = Math.min(budgetBytes, limit);
    if (M * V * 4 <= budget && V * C * 4 <= limit) return V;
    const rows = Math.min(budget, limit - gpu.offsetAlignment) / (4 * C);
    const most = Math.floor(Math.min(budget / (4 * M), rows) / 4) * 4;
    if (most < 4) {
      throw new RangeError(
        `Cannot chunk the LM head: 4 vocabulary rows of ${M} logits (${16 * M} bytes) or of W (${
          16 * C
        } bytes, plus ${gpu.offsetAlignment} of alignment) exceed the ${budget}-byte scratch or binding limit`,
      );
    }
    const chunks = Math.ceil(V / most);
    return Math.min(Math.ceil(V / chunks / 4) * 4, V);
  }

  /**
   * Per-row losses (M) `=` and statistics (M,3) `=` from `x (M,C)` and `W (V,C)`, chunk by chunk
   * through `scratch (M,Vc)`, which then holds the last chunk's logits (the backward reuses them).
   */
  forward(batch: Batch, t: HeadLossTensors): void {
    const { M, C, V, Vc } = this.#shapes("forward", t);
    const chunks = this.#chunks(V, Vc), last = chunks.length - 1;
    chunks.forEach((chunk, k) => {
      this.#logits(batch, t, chunk.start, M, C, Vc);
      this.#ce.chunkStats(
        batch,
        t.scratch,
        t.targets,
        t.stats,
        t.losses,
        chunk,
        k === 0,
        k === last,
      );
    });
  }

  /**
   * `dx (M,C) =` and `dW (V,C) +=` (when not null) of `scale · Σ losses`, after {@linkcode forward}
   * over the same tensors with nothing else written to the scratch in between. Chunks run last
   * first; `scale` is usually `CrossEntropy.meanScale` of the targets (ignored rows add nothing).
   */
  backward(batch: Batch, t: HeadLossTensors, g: HeadLossGrads, scale: number): void {
    const { M, C, V, Vc } = this.#shapes("backward", t);
    if (g.dx.size !== M * C) {
      throw new RangeError(
        `Cannot run the chunked head: tensor "${g.dx.label}" (dx) has ${g.dx.size} elements, expected (${M},${C})`,
      );
    }
    if (g.dW && g.dW.size !== V * C) {
      throw new RangeError(
        `Cannot run the chunked head: tensor "${g.dW.label}" (dW) has ${g.dW.size} elements, expected (${V},${C})`,
      );
    }
    const chunks = this.#chunks(V, Vc), last = chunks.length - 1;
    for (let k = last; k >= 0; k--) {
      const chunk = chunks[k];
      if (k < last) this.#logits(batch, t, chunk.start, M, C, Vc);
      this.#ce.chunkGrad(batch, t.scratch, t.targets, t.stats, chunk, scale);
      const w = this.#gpu.rowRange(t.weight, chunk.start, Vc);
      this.#matmul.gemm(batch, {
        a: t.scratch,
        b: w.tensor,
        c: g.dx,
        m: M,
        n: C,
        k: Vc,
        offsetB: w.offset,
        accumulate: k < last,
      });
      if (g.dW) {
        const dw = this.#gpu.rowRange(g.dW, chunk.start, Vc);
        this.#matmul.gemm(batch, {
          a: t.scratch,
          b: t.x,
          c: dw.tensor,
          m: Vc,
          n: C,
          k: M,
          transA: true,
          offsetC: dw.offset,
          accumulate: true,
        });
      }
    }
  }

  /**
   * The chunks of Vc columns: at 0, Vc, 2·Vc, …, and a last one that ends at V, skipping what the
   * one before counted.
   */
  #chunks(V: number, Vc: number): VocabChunk[] {
    const count = Math.ceil(V / Vc), chunks: VocabChunk[] = [];
    for (let k = 0; k < count - 1; k++) chunks.push({ start: k * Vc, skip: 0, V });
    chunks.push({ start: V - Vc, skip: (count - 1) * Vc - (V - Vc), V });
    return chunks;
  }

  /** scratch (M,Vc) = x · W[start … start+Vc]ᵀ. */
  #logits(batch: Batch, t: HeadLossTensors, start: number, M: number, C: number, Vc: number): void {
    const w = this.#gpu.rowRange(t.weight, start, Vc);
    this.#matmul.gemm(batch, {
      a: t.x,
      b: w.tensor,
      c: t.scratch,
      m: M,
      n: Vc,
      k: C,
      transB: true,
      offsetB: w.offset,
    });
  }

  #shapes(what: string, t: HeadLossTensors) {
    const [V, C] = t.weight.shape;
    const M = t.targets.size;
    const Vc = t.scratch.shape[1];
    const bad = (msg: string) => new RangeError(`Cannot run the chunked head (${what}): ${msg}`);
    if (t.weight.shape.length !== 2) {
      throw bad(
        `tensor "${t.weight.label}" (W) has shape [${t.weight.shape.join(", ")}], expected (V, C)`,
      );
    }
    if (t.x.size !== M * C) {
      throw bad(`tensor "${t.x.label}" (x) has ${t.x.size} elements, expected (${M},${C})`);
    }
    if (t.scratch.shape.length !== 2 || t.scratch.shape[0] !== M || !(Vc >= 1 && Vc <= V)) {
      throw bad(
        `tensor "${t.scratch.label}" (scratch) has shape [${
          t.scratch.shape.join(", ")
        }], expected (${M}, Vc ≤ ${V})`,
      );
    }
    return { M, C, V, Vc };
  }
}
