/**
 * The ends of a decoder: the input embedding (token table, plus GPT-2's learned position table)
 * and the language-model head (tied to the token table, or its own `lm_head`).
 *
 * @module
 */

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
   * Records copies of the table rows (and an add for learned positions).
   */
  forwardAt(ctx: Ctx, tokens: readonly number[], positions: readonly number[], out: Tensor): void {
    const C = this.wte.shape[1], B = tokens.length, batch = ctx.batch;
    const tok = this.wpe ? ctx.acts.scratch("decode.wte", [B, C]) : out;
    tokens.forEach((token, b) => {
      batch.copy(
        { buffer: this.wte.value.buffer, offset: token * C * 4, size: C * 4 },
        { buffer: tok.buffer, offset: b * C * 4, size: C * 4 },
      );
    });
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
 * SmolLM2), or `lm_head.weight`.
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

  /** x (M,C) → logits (M,V) `=`. */
  forward(ctx: Ctx, x: Tensor, logits: Tensor, M: number): void {
    const [V, C] = this.weight.shape;
    ctx.k.matmul.tiedForward(ctx.batch, x, this.weight.value, logits, M, C, V);
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
