/**
 * The ends of a decoder: the input embedding (token table, plus GPT-2's learned position table)
 * and the language-model head (tied to the token table, or its own `lm_head`).
 *
 * @module
 */

import { HeadLoss, type HeadLossTensors } from "../kernels/headloss.ts";
import type { Tensor } from "../runtime/tensor.ts";
import type { Activations } from "./activations.ts";
import type { Ctx } from "./context.ts";
import type { Param } from "./param.ts";

/**
 * Token embedding, plus a learned position embedding where the model has one (GPT-2's `wpe`;
 * rotary models have none).
 *
 * @example
 * ```ts
 * import { GPT, gptConfig, Gpu } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const model = await GPT.create(gpu, gptConfig("tiny"), { seed: 1, trainable: false });
 * if (model.embeddings.wpe === null) throw new Error("GPT-2 has learned positions");
 * model.release();
 * ```
 */
export class Embeddings {
  /** Token table (V,C). */
  readonly wte: Param;
  /** Position table (maxT,C), or null. */
  readonly wpe: Param | null;

  /** The embedding over existing parameters. */
  constructor(wte: Param, wpe: Param | null) {
    this.wte = wte;
    this.wpe = wpe;
  }

  /** acts.ids (B,T) → acts.encoded (B,T,C) `=`. */
  forward(ctx: Ctx, acts: Activations): void {
    ctx.k.embedding.forward(
      ctx.batch,
      acts.ids,
      acts.hostIds,
      this.wte.value,
      this.wpe?.value ?? null,
      acts.encoded,
    );
  }

  /**
   * The embeddings of one new token per row at its own position (generation): out (B,C) `=`.
   * Records copies of the table rows (and an add for learned positions); a token table stored in
   * half precision is read by the embedding kernel instead (it widens the halves to f32).
   */
  forwardAt(ctx: Ctx, tokens: readonly number[], positions: readonly number[], out: Tensor): void {
    const C = this.wte.shape[1], B = tokens.length, batch = ctx.batch;
    let tok = this.wpe ? ctx.acts.scratch("decode.wte", [B, C]) : out;
    if (this.wte.value.dtype === "f32") {
      tokens.forEach((token, b) => {
        batch.copy(
          { buffer: this.wte.value.buffer, offset: token * C * 4, size: C * 4 },
          { buffer: tok.buffer, offset: b * C * 4, size: C * 4 },
        );
      });
    } else {
      // The tokens as a (B,1) batch of ids (ctx.acts are (B,1) activations in generation).
      batch.write(ctx.acts.ids, Uint32Array.from(tokens));
      tok = this.wpe ? ctx.acts.scratch("decode.wte.rows", [B, 1, C]) : out;
      ctx.k.embedding.forward(batch, ctx.acts.ids, tokens, this.wte.value, null, tok);
    }
    if (!this.wpe) return;
    const pos = ctx.acts.scratch("decode.wpe", [B, C]);
    positions.forEach((p, b) => {
      batch.copy(
        { buffer: this.wpe!.value.buffer, offset: p * C * 4, size: C * 4 },
        { buffer: pos.buffer, offset: b * C * 4, size: C * 4 },
      );
    });
    ctx.k.residual.forward(batch, tok, pos, out);
  }

  /** dEncoded (B,T,C) → dwte, dwpe `+=` (each only when trainable). */
  backward(ctx: Ctx, acts: Activations, dEncoded: Tensor): void {
    const dwte = this.wte.grad, dwpe = this.wpe?.grad ?? null;
    if (!dwte && !dwpe) return;
    const k = ctx.k;
    const index = k.embedding.prepareBackward(acts.hostIds, this.wte.shape[0]);
    k.embedding.backward(ctx.batch, index, dEncoded, dwte, dwpe);
    ctx.batch.afterSubmit(() => index.release());
  }
}

/**
 * The language-model head `logits = x·Wᵀ`, W (V,C): the token table itself when tied (GPT-2,
 * SmolLM2), or `lm_head.weight`. With labels, the head and the loss run together over vocabulary
 * chunks ({@linkcode LMHead.lossForward}, kernels/headloss.ts) so that no (M,V) logits are held;
 * the logits themselves ({@linkcode LMHead.forward}) are computed in chunks of W and of the output
 * rows where either is larger than one storage binding.
 *
 * @example
 * ```ts
 * import { GPT, gptConfig, Gpu } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const model = await GPT.create(gpu, gptConfig("tiny"), { seed: 1, trainable: false });
 * if (model.head.weight !== model.wte) throw new Error("GPT-2's head is tied to wte");
 * model.release();
 * ```
 */
export class LMHead {
  /** W (V,C). */
  readonly weight: Param;

  /** A head over an existing (V,C) weight. */
  constructor(weight: Param) {
    this.weight = weight;
  }

  /**
   * x (M,C) → logits (M,V) `=`. Where W or the logits are larger than one storage binding, one
   * GEMM per chunk of W's rows and of the logits' rows (the same products, the same bits).
   */
  forward(ctx: Ctx, x: Tensor, logits: Tensor, M: number): void {
    const [V, C] = this.weight.shape, W = this.weight.value, gpu = ctx.gpu;
    const limit = gpu.maxBindingBytes;
    if (W.byteLength <= limit && logits.byteLength <= limit) {
      ctx.k.matmul.tiedForward(ctx.batch, x, W, logits, M, C, V);
      return;
    }
    for (const rows of gpu.rowChunks(M, V)) {
      const out = gpu.rowRange(logits, rows.start, rows.count);
      for (const cols of gpu.rowChunks(V, C)) {
        const w = gpu.rowRange(W, cols.start, cols.count);
        ctx.k.matmul.gemm(ctx.batch, {
          a: x,
          b: w.tensor,
          c: out.tensor,
          m: rows.count,
          n: cols.count,
          k: C,
          transB: true,
          offsetA: rows.start * C,
          offsetB: w.offset,
          offsetC: out.offset + cols.start,
          ldc: V,
        });
      }
    }
  }

  /**
   * The chunked head + loss over `acts` (kernels/headloss.ts): from x (M,C) and `acts.targets`,
   * writes `acts.losses` (M) `=` and the statistics the backward needs, through the
   * (M, acts.vocabChunk) scratch; the (M,V) logits never exist.
   */
  lossForward(ctx: Ctx, x: Tensor, acts: Activations): void {
    this.#headLoss(ctx).forward(ctx.batch, this.#lossTensors(x, acts));
  }

  /**
   * Backward of {@linkcode lossForward} (right after it, same `acts`): dx (M,C) `=`, dW `+=` when
   * trainable, of `scale · Σ losses`.
   */
  lossBackward(ctx: Ctx, x: Tensor, acts: Activations, dx: Tensor, scale: number): void {
    const t = this.#lossTensors(x, acts);
    this.#headLoss(ctx).backward(ctx.batch, t, { dx, dW: this.weight.grad }, scale);
  }

  #headLoss(ctx: Ctx): HeadLoss {
    return new HeadLoss(ctx.gpu, ctx.k.matmul, ctx.k.crossentropy);
  }

  #lossTensors(x: Tensor, acts: Activations): HeadLossTensors {
    return {
      x,
      weight: this.weight.value,
      targets: acts.targets,
      losses: acts.losses,
      stats: acts.headStats,
      scratch: acts.headScratch,
    };
  }

  /** dlogits (M,V) → dx (M,C) `=`; dW `+=` when trainable. */
  backward(ctx: Ctx, x: Tensor, dlogits: Tensor, dx: Tensor, M: number): void {
    const [V, C] = this.weight.shape;
    ctx.k.matmul.tiedBackward(
      ctx.batch,
      { x, wte: this.weight.value, dlogits, dx, dWte: this.weight.grad },
      M,
      C,
      V,
    );
  }
}
