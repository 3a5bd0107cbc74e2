/**
 * A pre-norm transformer block, the same for every family: norm → attention → residual add, norm →
 * MLP → residual add, with optional dropout and bottleneck adapters on each branch.
 *
 * @module
 */

import type { Tensor } from "../runtime/tensor.ts";
import type { BlockActs, GradScratch } from "./activations.ts";
import type { AttentionModule } from "./attention.ts";
import type { Ctx } from "./context.ts";
import type { MLPModule } from "./mlp.ts";
import type { Norm } from "./norms.ts";

/**
 * A module applied to a block's branch output h (BT,C) before the residual add (bottleneck
 * adapters): `forward` replaces h in place by f(h); `backward` receives dL/d f(h) and returns
 * dL/dh (a tensor it owns, e.g. from `ctx.acts.scratch`).
 */
export interface BranchAdapter {
  /** h (BT,C) ← f(h), in place; keeps what backward needs. */
  forward(ctx: Ctx, h: Tensor, M: number): void;
  /** dy (BT,C) = dL/d f(h) → dL/dh (BT,C). */
  backward(ctx: Ctx, dy: Tensor, M: number): Tensor;
}

/**
 * A pre-norm transformer block: `h = x + attn(norm_1(x)); out = h + mlp(norm_2(h))` (GPT-2:
 * LayerNorm `ln_1`, `ln_2`; the Llama family: RMSNorm `input_layernorm`, `post_attention_layernorm`).
 *
 * @example
 * ```ts
 * import { GPT, gptConfig, Gpu } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const model = await GPT.create(gpu, gptConfig("tiny"), { seed: 1, trainable: false });
 * const acts = model.activations(1, 3);
 * const x = gpu.tensor([1, 3, 32], Float32Array.from({ length: 96 }, (_, i) => Math.sin(i)));
 * const batch = gpu.batch();
 * const a = acts.blocks[0];
 * model.blocks[0].forward({ gpu, batch, k: model.kernels, training: false, seed: 0, acts }, x, a, 1, 3);
 * await batch.submit();
 * // out = x + attn(ln_1(x)) + mlp(ln_2(h)): the two branches add to the residual stream.
 * const [xs, attn, mlp, out] = await gpu.read([x, a.attProj, a.fcProj, a.res3]);
 * const err = Math.max(...out.map((v, i) => Math.abs(v - (xs[i] + attn[i] + mlp[i]))));
 * if (!(err < 1e-5)) throw new Error(`residual error ${err}`);
 * x.release();
 * acts.release();
 * model.release();
 * ```
 */
export class Block<
  N extends Norm = Norm,
  A extends AttentionModule = AttentionModule,
  F extends MLPModule = MLPModule,
> {
  /** Index in the stack. */
  readonly index: number;
  /** Norm before attention. */
  readonly ln1: N;
  /** Attention. */
  readonly attn: A;
  /** Norm before the MLP. */
  readonly ln2: N;
  /** Feed-forward. */
  readonly mlp: F;
  /** Dropout probability on each branch output. */
  readonly residPdrop: number;
  /** Bottleneck adapter on the attention output (Houlsby), or null. */
  attnAdapter: BranchAdapter | null = null;
  /** Bottleneck adapter on the feed-forward output (Houlsby, Pfeiffer), or null. */
  mlpAdapter: BranchAdapter | null = null;

  /** A block from its modules. */
  constructor(
    index: number,
    ln1: N,
    attn: A,
    ln2: N,
    mlp: F,
    residPdrop: number,
  ) {
    this.index = index;
    this.ln1 = ln1;
    this.attn = attn;
    this.ln2 = ln2;
    this.mlp = mlp;
    this.residPdrop = residPdrop;
  }

  #dropSeed(ctx: Ctx, branch: number): number {
    return (ctx.seed + Math.imul(this.index * 2 + branch + 1, 0x9e3779b9)) >>> 0;
  }

  /** x (BT,C) → a.res3 (BT,C) `=`. */
  forward(ctx: Ctx, x: Tensor, a: BlockActs, B: number, T: number): void {
    const M = B * T;
    const drop = ctx.training && this.residPdrop > 0;
    this.ln1.forward(ctx, x, a.ln1, a.ln1Mean, a.ln1Rstd, M);
    this.attn.forward(ctx, a.ln1, a, B, T);
    this.attnAdapter?.forward(ctx, a.attProj, M);
    if (drop) {
      ctx.k.dropout.forward(
        ctx.batch,
        a.attProj,
        a.attProj,
        this.residPdrop,
        this.#dropSeed(ctx, 0),
      );
    }
    ctx.k.residual.forward(ctx.batch, x, a.attProj, a.res2);
    this.ln2.forward(ctx, a.res2, a.ln2, a.ln2Mean, a.ln2Rstd, M);
    this.mlp.forward(ctx, a.ln2, a, M);
    this.mlpAdapter?.forward(ctx, a.fcProj, M);
    if (drop) {
      ctx.k.dropout.forward(ctx.batch, a.fcProj, a.fcProj, this.residPdrop, this.#dropSeed(ctx, 1));
    }
    ctx.k.residual.forward(ctx.batch, a.res2, a.fcProj, a.res3);
  }

  /**
   * g.dres holds dL/d(res3) on entry and dL/d(x) on exit (the residual stream gradient flows
   * through unchanged and each branch adds its part, `+=`).
   */
  backward(ctx: Ctx, x: Tensor, a: BlockActs, g: GradScratch, B: number, T: number): void {
    const M = B * T;
    const drop = ctx.training && this.residPdrop > 0;
    let dy = g.dres;
    if (drop) {
      ctx.batch.fill(g.dbranch, 0);
      ctx.k.dropout.backward(ctx.batch, g.dres, g.dbranch, this.residPdrop, this.#dropSeed(ctx, 1));
      dy = g.dbranch;
    }
    if (this.mlpAdapter) dy = this.mlpAdapter.backward(ctx, dy, M);
    this.mlp.backward(ctx, a.ln2, dy, g.dln, a, g, M);
    this.ln2.backward(ctx, g.dln, a.res2, a.ln2Mean, a.ln2Rstd, g.dres, M);
    dy = g.dres;
    if (drop) {
      ctx.batch.fill(g.dbranch, 0);
      ctx.k.dropout.backward(ctx.batch, g.dres, g.dbranch, this.residPdrop, this.#dropSeed(ctx, 0));
      dy = g.dbranch;
    }
    if (this.attnAdapter) dy = this.attnAdapter.backward(ctx, dy, M);
    this.attn.backward(ctx, a.ln1, dy, g.dln, a, g, B, T);
    this.ln1.backward(ctx, g.dln, x, a.ln1Mean, a.ln1Rstd, g.dres, M);
  }
}
