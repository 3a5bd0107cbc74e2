/**
 * Feed-forward modules: GPT-2's `c_fc` → GELU → `c_proj`, and the Llama family's gated
 * `down_proj(silu(gate_proj(x)) · up_proj(x))`.
 *
 * @module
 */

import type { Tensor } from "../runtime/tensor.ts";
import type { BlockActs, GradScratch } from "./activations.ts";
import type { Ctx } from "./context.ts";
import type { LinearField, LinearLike } from "./linear.ts";

/** The feed-forward part of a block, whatever its family. */
export interface MLPModule {
  /** The linear layers PEFT may wrap, by their Hugging Face module name relative to the block. */
  readonly linears: readonly LinearField[];
  /** x (BT,C) → a.fcProj (BT,C) `=`, saving what backward needs in `a`. */
  forward(ctx: Ctx, x: Tensor, a: BlockActs, M: number): void;
  /** dy (BT,C) → dx (BT,C) `=`; parameter gradients `+=`. */
  backward(
    ctx: Ctx,
    x: Tensor,
    dy: Tensor,
    dx: Tensor,
    a: BlockActs,
    g: GradScratch,
    M: number,
  ): void;
}

/**
 * GPT-2's feed-forward block: c_fc → GELU → c_proj.
 *
 * @example
 * ```ts
 * import { GPT, gptConfig, Gpu } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const model = await GPT.create(gpu, gptConfig("tiny"), { seed: 1, trainable: false });
 * const acts = model.activations(1, 2);
 * const mlp = model.blocks[0].mlp;
 * const x = gpu.tensor([2, 32], new Float32Array(64).fill(0));
 * const batch = gpu.batch();
 * mlp.forward({ gpu, batch, k: model.kernels, training: false, seed: 0, acts }, x, acts.blocks[0], 2);
 * await batch.submit();
 * // Biases start at zero and GELU(0) = 0, so an untrained MLP maps 0 to 0.
 * const [y] = await gpu.read([acts.blocks[0].fcProj]);
 * if (y.some((v) => v !== 0)) throw new Error("MLP(0) ≠ 0");
 * x.release();
 * acts.release();
 * model.release();
 * ```
 */
export class MLP implements MLPModule {
  /** Up-projection (C, 4C); PEFT may wrap it. */
  cFc: LinearLike;
  /** Down-projection (4C, C); PEFT may wrap it. */
  cProj: LinearLike;
  /** `mlp.c_fc` and `mlp.c_proj`. */
  readonly linears: readonly LinearField[] = [
    { name: "mlp.c_fc", get: () => this.cFc, set: (l) => (this.cFc = l) },
    { name: "mlp.c_proj", get: () => this.cProj, set: (l) => (this.cProj = l) },
  ];

  /** The MLP of a block. */
  constructor(cFc: LinearLike, cProj: LinearLike) {
    this.cFc = cFc;
    this.cProj = cProj;
  }

  /** x (BT,C) → a.fcProj (BT,C) `=`, saving fc and fcAct. */
  forward(ctx: Ctx, x: Tensor, a: BlockActs, M: number): void {
    this.cFc.forward(ctx, x, a.fc, M);
    ctx.k.gelu.forward(ctx.batch, a.fc, a.fcAct);
    this.cProj.forward(ctx, a.fcAct, a.fcProj, M);
  }

  /** dy (BT,C) → dx (BT,C) `=`. */
  backward(
    ctx: Ctx,
    x: Tensor,
    dy: Tensor,
    dx: Tensor,
    a: BlockActs,
    g: GradScratch,
    M: number,
  ): void {
    this.cProj.backward(ctx, a.fcAct, dy, g.dfcAct, M);
    ctx.batch.fill(g.dfc, 0);
    ctx.k.gelu.backward(ctx.batch, a.fc, g.dfcAct, g.dfc);
    this.cFc.backward(ctx, x, g.dfc, dx, M);
  }
}

/**
 * The Llama family's gated feed-forward block: `down_proj(silu(gate_proj(x)) · up_proj(x))`.
 *
 * @example
 * ```ts
 * import { Gpu, Llama, llamaConfig } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const model = await Llama.create(gpu, llamaConfig("smollm-tiny"), { seed: 1, trainable: false });
 * const mlp = model.blocks[0].mlp;
 * if (mlp.linears.map((l) => l.name).join() !== "mlp.gate_proj,mlp.up_proj,mlp.down_proj") {
 *   throw new Error("Hugging Face module names");
 * }
 * model.release();
 * ```
 */
export class GatedMLP implements MLPModule {
  /** Gate projection (F ← C); PEFT may wrap it. */
  gateProj: LinearLike;
  /** Up projection (F ← C). */
  upProj: LinearLike;
  /** Down projection (C ← F). */
  downProj: LinearLike;
  /** `mlp.gate_proj`, `mlp.up_proj`, `mlp.down_proj`. */
  readonly linears: readonly LinearField[] = [
    { name: "mlp.gate_proj", get: () => this.gateProj, set: (l) => (this.gateProj = l) },
    { name: "mlp.up_proj", get: () => this.upProj, set: (l) => (this.upProj = l) },
    { name: "mlp.down_proj", get: () => this.downProj, set: (l) => (this.downProj = l) },
  ];

  /** The MLP of a block. */
  constructor(gate: LinearLike, up: LinearLike, down: LinearLike) {
    this.gateProj = gate;
    this.upProj = up;
    this.downProj = down;
  }

  /** x (BT,C) → a.fcProj (BT,C) `=`, saving fc (gate), up and fcAct. */
  forward(ctx: Ctx, x: Tensor, a: BlockActs, M: number): void {
    this.gateProj.forward(ctx, x, a.fc, M);
    this.upProj.forward(ctx, x, a.up!, M);
    ctx.k.swiglu.forward(ctx.batch, a.fc, a.up!, a.fcAct);
    this.downProj.forward(ctx, a.fcAct, a.fcProj, M);
  }

  /** dy (BT,C) → dx (BT,C) `=`. */
  backward(
    ctx: Ctx,
    x: Tensor,
    dy: Tensor,
    dx: Tensor,
    a: BlockActs,
    g: GradScratch,
    M: number,
  ): void {
    const s = g.split!;
    this.downProj.backward(ctx, a.fcAct, dy, g.dfcAct, M);
    ctx.k.swiglu.backward(ctx.batch, a.fc, a.up!, g.dfcAct, g.dfc, s.dup);
    // gate and up read the same x: dx = dgate·Wg + dup·Wu.
    this.gateProj.backward(ctx, x, g.dfc, dx, M);
    this.upProj.backward(ctx, x, s.dup, s.dln2, M);
    ctx.k.columns.add(ctx.batch, s.dln2, dx, { rows: M, w: dx.size / M });
  }
}
