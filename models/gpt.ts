/**
 * The GPT-2 decoder on WebGPU, built from the verified kernels as small modules (`Linear`,
 * `LayerNormModule`, `CausalSelfAttention`, `MLP`, `Block`, `GPT`), each with `forward` and
 * `backward`; the model's backward is its forward in reverse, one call a line (as llm.c).
 *
 * Shapes: B batch, T sequence, C = n_embd, H heads, V vocabulary, BT = B·T rows.
 * Parameters carry Hugging Face GPT-2 names (`h.0.attn.c_attn.weight`, stored (in, out) as Conv1D).
 * `lm_head` is tied to `wte`. Gradients of frozen parameters are never computed: a module skips
 * its weight-gradient kernels when the parameter has no gradient buffer.
 *
 * @module
 */

import {
  AdamW,
  Attention,
  CrossEntropy,
  Dropout,
  Embedding,
  Gelu,
  IGNORE_INDEX,
  LayerNorm,
  Matmul,
  Residual,
} from "../kernels/mod.ts";
import type { Batch, Gpu } from "../runtime/gpu.ts";
import { Rng } from "../runtime/rng.ts";
import type { Tensor } from "../runtime/tensor.ts";
import { gpt2ParameterShapes } from "./checkpoint.ts";
import { type GPTConfig, headDim, innerSize, validateConfig } from "./config.ts";

/** A named parameter: its value, its gradient (null while frozen) and how the optimizer treats it. */
export interface Param {
  /** Hugging Face GPT-2 name, e.g. `h.0.attn.c_attn.weight`. */
  readonly name: string;
  /** Shape as Hugging Face stores it (Conv1D weights are (in, out)). */
  readonly shape: readonly number[];
  /** The value on the GPU. */
  value: Tensor;
  /** The gradient (accumulated `+=`; zeroed by the trainer), or null when frozen. */
  grad: Tensor | null;
  /** Whether weight decay applies (not to biases, LayerNorm parameters or embeddings' biases). */
  decay: boolean;
  /** Optional per-element 0/1 trainable mask (selective fine-tuning of parts of a tensor). */
  gradMask: Tensor | null;
}

/**
 * True when a parameter is trained (has a gradient buffer).
 *
 * @example
 * ```ts
 * import { GPT, gptConfig, Gpu, isTrainable, lora } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const model = await GPT.create(gpu, gptConfig("tiny"), { seed: 1 });
 * if (!isTrainable(model.wte)) throw new Error("every parameter is trained by default");
 * await lora.apply(model, lora.validate({ r: 4 }), 0);
 * if (isTrainable(model.wte)) throw new Error("LoRA freezes the base");
 * model.release();
 * ```
 */
export function isTrainable(p: Param): boolean {
  return p.grad !== null;
}

/** The kernel wrappers, by role. */
export interface KernelSet {
  /** Matmuls. */
  matmul: Matmul;
  /** LayerNorm. */
  layernorm: LayerNorm;
  /** GELU. */
  gelu: Gelu;
  /** Attention core. */
  attention: Attention;
  /** Embedding. */
  embedding: Embedding;
  /** Cross-entropy. */
  crossentropy: CrossEntropy;
  /** Residual add. */
  residual: Residual;
  /** Dropout. */
  dropout: Dropout;
  /** AdamW. */
  adamw: AdamW;
}

/**
 * Every kernel wrapper the model uses, compiled once per device.
 *
 * @example
 * ```ts
 * import { Gpu, Kernels } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const k = await Kernels.create(gpu);
 * const a = gpu.tensor([3], new Float32Array([1, 2, 3]));
 * const b = gpu.tensor([3], new Float32Array([10, 20, 30]));
 * const out = gpu.tensor([3]);
 * const batch = gpu.batch();
 * k.residual.forward(batch, a, b, out);
 * await batch.submit();
 * const [y] = await gpu.read([out]);
 * if (y.join() !== "11,22,33") throw new Error(`${y}`);
 * for (const t of [a, b, out]) t.release();
 * ```
 */
export class Kernels {
  /** Matmuls (linear layers, tied head). */
  readonly matmul: Matmul;
  /** LayerNorm. */
  readonly layernorm: LayerNorm;
  /** GELU (tanh form). */
  readonly gelu: Gelu;
  /** Causal self-attention core. */
  readonly attention: Attention;
  /** Token + position embedding. */
  readonly embedding: Embedding;
  /** Fused softmax cross-entropy. */
  readonly crossentropy: CrossEntropy;
  /** Residual add. */
  readonly residual: Residual;
  /** Dropout. */
  readonly dropout: Dropout;
  /** AdamW. */
  readonly adamw: AdamW;

  private constructor(k: KernelSet) {
    this.matmul = k.matmul;
    this.layernorm = k.layernorm;
    this.gelu = k.gelu;
    this.attention = k.attention;
    this.embedding = k.embedding;
    this.crossentropy = k.crossentropy;
    this.residual = k.residual;
    this.dropout = k.dropout;
    this.adamw = k.adamw;
  }

  /** Compiles all kernels (cached by the device). */
  static async create(gpu: Gpu): Promise<Kernels> {
    const [matmul, layernorm, gelu, attention, embedding, crossentropy, residual, dropout, adamw] =
      await Promise.all([
        Matmul.create(gpu),
        LayerNorm.create(gpu),
        Gelu.create(gpu),
        Attention.create(gpu),
        Embedding.create(gpu),
        CrossEntropy.create(gpu),
        Residual.create(gpu),
        Dropout.create(gpu),
        AdamW.create(gpu),
      ]);
    return new Kernels({
      matmul,
      layernorm,
      gelu,
      attention,
      embedding,
      crossentropy,
      residual,
      dropout,
      adamw,
    });
  }
}

/** What a module needs while recording one forward or backward pass. */
export interface Ctx {
  /** The device. */
  readonly gpu: Gpu;
  /** The batch the pass records into. */
  readonly batch: Batch;
  /** The compiled kernels. */
  readonly k: Kernels;
  /** Training mode: dropout active. */
  readonly training: boolean;
  /** Seed of this pass's dropout masks (the same in forward and backward). */
  readonly seed: number;
  /** The activations of this pass (modules keep extra tensors there with `acts.scratch`). */
  readonly acts: Activations;
}

/**
 * What a block uses as a linear layer. {@linkcode Linear} is the base; PEFT methods (LoRA, IA³)
 * wrap one and take its place (`block.attn.cAttn = new LoRALinear(base, …)`).
 */
export interface LinearLike {
  /** Input features. */
  readonly nIn: number;
  /** Output features. */
  readonly nOut: number;
  /** x (M,in) → y (M,out) `=`. */
  forward(ctx: Ctx, x: Tensor, y: Tensor, M: number): void;
  /** dy (M,out) → dx (M,in) `=` (skipped when null); parameter gradients `+=`. */
  backward(ctx: Ctx, x: Tensor, dy: Tensor, dx: Tensor | null, M: number): void;
}

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
 * Virtual tokens prepended to every sequence (prompt tuning, prefix tuning): the model runs on
 * n + T positions, the first n filled by the method. Real tokens take positions n..n+T−1 (as in
 * Hugging Face, where prompt embeddings are concatenated to the input embeddings and position ids
 * run over the whole sequence), and the virtual positions carry label −100.
 */
export interface VirtualTokens {
  /** Number of virtual tokens n. */
  readonly n: number;
  /**
   * Whether the last virtual position is scored against the first real label (prompt tuning:
   * true, the default; prefix tuning: false, since its virtual rows are only keys and values).
   */
  readonly scoresFirstLabel?: boolean;
  /** After the embedding: overwrite rows 0..n−1 of each sequence of `encoded` (B, n+T, C). */
  embedForward?(ctx: Ctx, encoded: Tensor, B: number, T: number): void;
  /** Before the embedding backward: read (and zero) the gradient of rows 0..n−1 of `dEncoded`. */
  embedBackward?(ctx: Ctx, dEncoded: Tensor, B: number, T: number): void;
  /** After c_attn of block `layer`: overwrite the key/value parts of rows 0..n−1 of `qkv` (B, n+T, 3C). */
  kvForward?(ctx: Ctx, layer: number, qkv: Tensor, B: number, T: number): void;
  /** After the attention backward of block `layer`: read the prefix gradient and zero rows 0..n−1 of `dqkv`. */
  kvBackward?(ctx: Ctx, layer: number, dqkv: Tensor, B: number, T: number): void;
}

/**
 * A tensor allocator for activations of one (B,T) shape; released together.
 */
class Arena {
  readonly #gpu: Gpu;
  readonly #tensors: Tensor[] = [];
  constructor(gpu: Gpu) {
    this.#gpu = gpu;
  }
  t(shape: number[], label: string): Tensor {
    const t = this.#gpu.tensor(shape, undefined, label);
    this.#tensors.push(t);
    return t;
  }
  release(): void {
    for (const t of this.#tensors.splice(0)) t.release();
  }
}

/**
 * A Conv1D linear layer: `y = x·W + b`, W stored (in, out).
 *
 * @example
 * ```ts
 * import { GPT, gptConfig, Gpu, Linear } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const model = await GPT.create(gpu, gptConfig("tiny"), { seed: 1, trainable: false });
 * const acts = model.activations(1, 1);
 * const layer = model.blocks[0].attn.cAttn;
 * if (!(layer instanceof Linear) || layer.nIn !== 32 || layer.nOut !== 96) throw new Error();
 * // x = e₀, so y = x·W + b is row 0 of W plus b.
 * const x = gpu.tensor([1, 32], Float32Array.from({ length: 32 }, (_, i) => i === 0 ? 1 : 0));
 * const y = gpu.tensor([1, 96]);
 * const batch = gpu.batch();
 * layer.forward({ gpu, batch, k: model.kernels, training: false, seed: 0, acts }, x, y, 1);
 * await batch.submit();
 * const [out, w, b] = await gpu.read([y, layer.weight.value, layer.bias.value]);
 * if (Math.abs(out[5] - (w[5] + b[5])) > 1e-6) throw new Error("y = x·W + b");
 * x.release();
 * y.release();
 * acts.release();
 * model.release();
 * ```
 */
export class Linear implements LinearLike {
  /** Weight (in, out). */
  readonly weight: Param;
  /** Bias (out). */
  readonly bias: Param;
  /** Input features. */
  readonly nIn: number;
  /** Output features. */
  readonly nOut: number;

  /** A layer over existing parameters. */
  constructor(weight: Param, bias: Param) {
    this.weight = weight;
    this.bias = bias;
    [this.nIn, this.nOut] = weight.shape as [number, number];
  }

  /** x (M,in) → y (M,out) `=`. */
  forward(ctx: Ctx, x: Tensor, y: Tensor, M: number): void {
    ctx.k.matmul.linearForward(
      ctx.batch,
      x,
      this.weight.value,
      this.bias.value,
      y,
      M,
      this.nIn,
      this.nOut,
    );
  }

  /** dy (M,out) → dx (M,in) `=` (skipped when null); dW, db `+=` when trainable. */
  backward(ctx: Ctx, x: Tensor, dy: Tensor, dx: Tensor | null, M: number): void {
    ctx.k.matmul.linearBackward(
      ctx.batch,
      {
        x,
        W: this.weight.value,
        dy,
        dx,
        dW: this.weight.grad,
        dBias: this.bias.grad,
      },
      M,
      this.nIn,
      this.nOut,
    );
  }
}

/**
 * LayerNorm over the last dimension, with saved statistics.
 *
 * @example
 * ```ts
 * import { GPT, gptConfig, Gpu } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const model = await GPT.create(gpu, gptConfig("tiny"), { seed: 1, trainable: false });
 * const acts = model.activations(1, 1);
 * const ln = model.lnF; // weight 1, bias 0 at initialisation
 * const x = gpu.tensor([1, 32], Float32Array.from({ length: 32 }, (_, i) => i));
 * const [out, mean, rstd] = [gpu.tensor([1, 32]), gpu.tensor([1]), gpu.tensor([1])];
 * const batch = gpu.batch();
 * const ctx = { gpu, batch, k: model.kernels, training: false, seed: 0, acts };
 * ln.forward(ctx, x, out, mean, rstd, 1);
 * await batch.submit();
 * const [y, m] = await gpu.read([out, mean]);
 * if (m[0] !== 15.5 || Math.abs(y.reduce((a, b) => a + b) / 32) > 1e-5) throw new Error("mean 0");
 * for (const t of [x, out, mean, rstd]) t.release();
 * acts.release();
 * model.release();
 * ```
 */
export class LayerNormModule {
  /** Scale (C). */
  readonly weight: Param;
  /** Shift (C). */
  readonly bias: Param;
  /** Epsilon added to the variance. */
  readonly eps: number;

  /** A LayerNorm over existing parameters. */
  constructor(weight: Param, bias: Param, eps: number) {
    this.weight = weight;
    this.bias = bias;
    this.eps = eps;
  }

  /** x (N,C) → out (N,C) `=`, mean and rstd (N) `=`. */
  forward(ctx: Ctx, x: Tensor, out: Tensor, mean: Tensor, rstd: Tensor, N: number): void {
    const C = this.weight.shape[0];
    ctx.k.layernorm.forward(
      ctx.batch,
      x,
      this.weight.value,
      this.bias.value,
      out,
      mean,
      rstd,
      N,
      C,
      this.eps,
    );
  }

  /** dout (N,C) → dx (N,C) `+=`; dweight, dbias `+=` when trainable. */
  backward(
    ctx: Ctx,
    dout: Tensor,
    x: Tensor,
    mean: Tensor,
    rstd: Tensor,
    dx: Tensor,
    N: number,
  ): void {
    const C = this.weight.shape[0];
    ctx.k.layernorm.backward(
      ctx.batch,
      dout,
      x,
      this.weight.value,
      mean,
      rstd,
      dx,
      this.weight.grad,
      this.bias.grad,
      N,
      C,
    );
  }
}

/** Activations of one block for one (B,T) shape. */
export interface BlockActs {
  /** ln1 */
  ln1: Tensor;
  /** ln1Mean */
  ln1Mean: Tensor;
  /** ln1Rstd */
  ln1Rstd: Tensor;
  /** qkv */
  qkv: Tensor;
  /** att */
  att: Tensor;
  /** atty */
  atty: Tensor;
  /** attProj */
  attProj: Tensor;
  /** res2 */
  res2: Tensor;
  /** ln2 */
  ln2: Tensor;
  /** ln2Mean */
  ln2Mean: Tensor;
  /** ln2Rstd */
  ln2Rstd: Tensor;
  /** fc */
  fc: Tensor;
  /** fcGelu */
  fcGelu: Tensor;
  /** fcProj */
  fcProj: Tensor;
  /** res3 */
  res3: Tensor;
}

/** Activation-gradient scratch shared by all blocks (used one block at a time). */
export interface GradScratch {
  /** (BT,C) gradient of the residual stream */
  dres: Tensor;
  /** (BT,C) gradient of a branch output before dropout */
  dbranch: Tensor;
  /** (BT,C) */
  dln: Tensor;
  /** (BT,C) */
  datty: Tensor;
  /** (BT,3C) */
  dqkv: Tensor;
  /** (B,H,T,T) */
  datt: Tensor;
  /** (BT,4C) */
  dfc: Tensor;
  /** (BT,4C) */
  dfcGelu: Tensor;
}

/**
 * Causal self-attention: c_attn → attention core → c_proj.
 *
 * @example
 * ```ts
 * import { GPT, gptConfig, Gpu } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const model = await GPT.create(gpu, gptConfig("tiny"), { seed: 1, trainable: false });
 * const acts = model.activations(1, 2);
 * const attn = model.blocks[0].attn;
 * // Attention over two positions, the second one changed between the runs.
 * const run = async (second: number) => {
 *   const data = Float32Array.from({ length: 64 }, (_, i) => i < 32 ? Math.sin(i) : second * Math.cos(i));
 *   const x = gpu.tensor([1, 2, 32], data);
 *   const batch = gpu.batch();
 *   attn.forward({ gpu, batch, k: model.kernels, training: false, seed: 0, acts }, x, acts.blocks[0], 1, 2);
 *   await batch.submit();
 *   const [y] = await gpu.read([acts.blocks[0].attProj]);
 *   x.release();
 *   return y;
 * };
 * const [a, b] = [await run(1), await run(-1)];
 * // Causal: position 0 does not see position 1; position 1 does.
 * if (a.slice(0, 32).join() !== b.slice(0, 32).join()) throw new Error("position 0 changed");
 * if (a.slice(32).join() === b.slice(32).join()) throw new Error("position 1 did not change");
 * acts.release();
 * model.release();
 * ```
 */
export class CausalSelfAttention {
  /** Fused q,k,v projection (C, 3C); PEFT may wrap it. */
  cAttn: LinearLike;
  /** Output projection (C, C); PEFT may wrap it. */
  cProj: LinearLike;
  /** Heads. */
  readonly nHead: number;
  /** Index of the block. */
  readonly layer: number;
  /** Virtual tokens whose keys/values this layer takes (prefix tuning), or null. */
  virtual: VirtualTokens | null = null;

  /** The attention of block `layer`. */
  constructor(cAttn: LinearLike, cProj: LinearLike, nHead: number, layer = 0) {
    this.cAttn = cAttn;
    this.cProj = cProj;
    this.nHead = nHead;
    this.layer = layer;
  }

  /** x (B,T,C) → a.attProj (B,T,C) `=`, saving qkv, att, atty. */
  forward(ctx: Ctx, x: Tensor, a: BlockActs, B: number, T: number): void {
    const C = this.cProj.nOut;
    this.cAttn.forward(ctx, x, a.qkv, B * T);
    this.virtual?.kvForward?.(ctx, this.layer, a.qkv, B, T);
    ctx.k.attention.forward(ctx.batch, a.qkv, a.atty, a.att, B, T, C, this.nHead);
    this.cProj.forward(ctx, a.atty, a.attProj, B * T);
  }

  /** dy (B,T,C) → dx (B,T,C) `=`. */
  backward(
    ctx: Ctx,
    x: Tensor,
    dy: Tensor,
    dx: Tensor,
    a: BlockActs,
    g: GradScratch,
    B: number,
    T: number,
  ): void {
    const C = this.cProj.nOut;
    this.cProj.backward(ctx, a.atty, dy, g.datty, B * T);
    ctx.k.attention.backward(ctx.batch, g.datty, a.qkv, a.att, g.datt, g.dqkv, B, T, C, this.nHead);
    this.virtual?.kvBackward?.(ctx, this.layer, g.dqkv, B, T);
    this.cAttn.backward(ctx, x, g.dqkv, dx, B * T);
  }
}

/**
 * The feed-forward block: c_fc → GELU → c_proj.
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
export class MLP {
  /** Up-projection (C, 4C); PEFT may wrap it. */
  cFc: LinearLike;
  /** Down-projection (4C, C); PEFT may wrap it. */
  cProj: LinearLike;

  /** The MLP of a block. */
  constructor(cFc: LinearLike, cProj: LinearLike) {
    this.cFc = cFc;
    this.cProj = cProj;
  }

  /** x (BT,C) → a.fcProj (BT,C) `=`, saving fc and fcGelu. */
  forward(ctx: Ctx, x: Tensor, a: BlockActs, M: number): void {
    this.cFc.forward(ctx, x, a.fc, M);
    ctx.k.gelu.forward(ctx.batch, a.fc, a.fcGelu);
    this.cProj.forward(ctx, a.fcGelu, a.fcProj, M);
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
    this.cProj.backward(ctx, a.fcGelu, dy, g.dfcGelu, M);
    ctx.batch.fill(g.dfc, 0);
    ctx.k.gelu.backward(ctx.batch, a.fc, g.dfcGelu, g.dfc);
    this.cFc.backward(ctx, x, g.dfc, dx, M);
  }
}

/**
 * A pre-LayerNorm transformer block: `h = x + attn(ln_1(x)); out = h + mlp(ln_2(h))`.
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
export class Block {
  /** Index in the stack. */
  readonly index: number;
  /** LayerNorm before attention. */
  readonly ln1: LayerNormModule;
  /** Attention. */
  readonly attn: CausalSelfAttention;
  /** LayerNorm before the MLP. */
  readonly ln2: LayerNormModule;
  /** Feed-forward. */
  readonly mlp: MLP;
  /** Dropout probability on each branch output. */
  readonly residPdrop: number;
  /** Bottleneck adapter on the attention output (Houlsby), or null. */
  attnAdapter: BranchAdapter | null = null;
  /** Bottleneck adapter on the feed-forward output (Houlsby, Pfeiffer), or null. */
  mlpAdapter: BranchAdapter | null = null;

  /** A block from its modules. */
  constructor(
    index: number,
    ln1: LayerNormModule,
    attn: CausalSelfAttention,
    ln2: LayerNormModule,
    mlp: MLP,
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

/** Inputs of one forward pass: token ids and (optionally) labels, both (B,T), on the CPU. */
export interface Inputs {
  /** Token ids (B·T), row-major. */
  ids: ArrayLike<number>;
  /**
   * Labels aligned with `ids` (Hugging Face convention: the model shifts them, so position t is
   * scored against `labels[t+1]`); -100 is ignored. Omit for inference.
   */
  labels?: ArrayLike<number>;
}

/**
 * Every tensor one forward/backward of a (B,T) batch needs, allocated once and reused each step.
 *
 * With `checkpoint` (activation checkpointing, as Hugging Face's `gradient_checkpointing_enable()`
 * at block granularity), the blocks share one set of intermediates (ln1 … fcProj, one block's worth
 * instead of n_layer's) and each keeps only its output `res3`. The forward is unchanged and
 * overwrites the shared set block after block; the training backward recomputes each block's
 * forward from its kept input just before that block's backward (the last block's is still there),
 * in the same batch, with the same seed and so the same dropout masks: gradients and losses are
 * bit-identical, for about one more forward of compute. After a forward, `encoded`, every `res3`,
 * the final LayerNorm, logits and losses are valid as usual, but `blocks[l]`'s intermediates hold
 * the last block's values: whatever reads them afterwards (the KV-cache prefill of generation)
 * must use activations without `checkpoint`. PEFT scratch (`scratch`) stays per layer, and three
 * gradient buffers live in shared intermediates that are dead by then (see `ensureGrads`).
 *
 * @example
 * ```ts
 * import { GPT, gptConfig, Gpu } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const model = await GPT.create(gpu, gptConfig("tiny"), { seed: 1, trainable: false });
 * const acts = model.activations(2, 5); // allocated once, reused for every (2, 5) batch
 * const batch = gpu.batch();
 * model.forward(batch, acts, { ids: [1, 2, 3, 4, 5, 5, 4, 3, 2, 1] });
 * await batch.submit();
 * const [logits] = await gpu.read([acts.logits]);
 * if (acts.B !== 2 || acts.T !== 5 || logits.length !== 2 * 5 * 256) throw new Error();
 * acts.release();
 * model.release();
 * ```
 */
export class Activations {
  /** Batch size. */
  readonly B: number;
  /** Positions the model runs on: virtual tokens plus real ones. */
  readonly T: number;
  /** Virtual tokens in front of each sequence (prompt or prefix tuning), 0 without. */
  readonly nVirtual: number;
  /** Real tokens per sequence (what callers pass). */
  readonly realT: number;
  /** Token ids (B,T) u32. */
  readonly ids: Tensor;
  /** Shifted targets (B·T) i32. */
  readonly targets: Tensor;
  /** Embedding output, the residual stream entering block 0 (B,T,C). */
  readonly encoded: Tensor;
  /** Per-block activations (with `checkpoint`, all but `res3` are one shared set). */
  readonly blocks: BlockActs[];
  /** Final LayerNorm output (BT,C) and its statistics. */
  readonly lnf: Tensor;
  /** Final LayerNorm mean (BT). */
  readonly lnfMean: Tensor;
  /** Final LayerNorm rstd (BT). */
  readonly lnfRstd: Tensor;
  /** Logits (BT,V); replaced by their gradient in place during a training step. */
  readonly logits: Tensor;
  /** Per-position losses (BT), 0 where the target is ignored. */
  readonly losses: Tensor;
  /** Gradient scratch (allocated on the first backward). */
  grads: GradScratch | null = null;
  /** Host copy of the last ids (for the embedding backward index). */
  hostIds: Uint32Array;
  /** Host copy of the last targets. */
  hostTargets: Int32Array;
  readonly #arena: Arena;

  /**
   * Activation checkpointing: every block shares one set of intermediates and keeps only its
   * output `res3`; the backward recomputes each block's forward before its backward.
   */
  readonly checkpoint: boolean;

  /**
   * Allocates the activations of `cfg` for (B, nVirtual + T). With `checkpoint`, the blocks share
   * one set of intermediates (see {@linkcode Activations}).
   */
  constructor(
    gpu: Gpu,
    cfg: GPTConfig,
    B: number,
    realT: number,
    nVirtual = 0,
    options: { checkpoint?: boolean } = {},
  ) {
    if (!(Number.isInteger(B) && B > 0 && Number.isInteger(realT) && realT > 0)) {
      throw new RangeError(
        `Cannot allocate activations: B=${B} and T=${realT} must be positive integers`,
      );
    }
    const T = realT + nVirtual;
    if (T > cfg.n_positions) {
      const virtual = nVirtual ? ` plus ${nVirtual} virtual tokens` : "";
      throw new RangeError(
        `Cannot allocate activations: T=${realT}${virtual} exceeds n_positions=${cfg.n_positions}`,
      );
    }
    this.nVirtual = nVirtual;
    this.realT = realT;
    const C = cfg.n_embd, H = cfg.n_head, V = cfg.vocab_size, M = B * T, F = innerSize(cfg);
    const arena = this.#arena = new Arena(gpu);
    this.B = B;
    this.T = T;
    this.ids = arena.t([B, T], "ids");
    this.targets = arena.t([M], "targets");
    this.encoded = arena.t([B, T, C], "encoded");
    this.checkpoint = options.checkpoint ?? false;
    const intermediates = (p: string): Omit<BlockActs, "res3"> => ({
      ln1: arena.t([M, C], p + "ln1"),
      ln1Mean: arena.t([M], p + "ln1.mean"),
      ln1Rstd: arena.t([M], p + "ln1.rstd"),
      qkv: arena.t([M, 3 * C], p + "qkv"),
      att: arena.t(Attention.scratchShape(B, T, H), p + "att"),
      atty: arena.t([M, C], p + "atty"),
      attProj: arena.t([M, C], p + "attproj"),
      res2: arena.t([M, C], p + "res2"),
      ln2: arena.t([M, C], p + "ln2"),
      ln2Mean: arena.t([M], p + "ln2.mean"),
      ln2Rstd: arena.t([M], p + "ln2.rstd"),
      fc: arena.t([M, F], p + "fc"),
      fcGelu: arena.t([M, F], p + "fc.gelu"),
      fcProj: arena.t([M, C], p + "fcproj"),
    });
    const shared = this.checkpoint ? intermediates("h.shared.") : null;
    this.blocks = [];
    for (let l = 0; l < cfg.n_layer; l++) {
      const p = `h.${l}.`;
      this.blocks.push({ ...(shared ?? intermediates(p)), res3: arena.t([M, C], p + "res3") });
    }
    this.lnf = arena.t([M, C], "lnf");
    this.lnfMean = arena.t([M], "lnf.mean");
    this.lnfRstd = arena.t([M], "lnf.rstd");
    this.logits = arena.t([M, V], "logits");
    this.losses = arena.t([M], "losses");
    this.hostIds = new Uint32Array(M);
    this.hostTargets = new Int32Array(M).fill(IGNORE_INDEX);
    const last = this.blocks[this.blocks.length - 1];
    this.residualOut = last ? last.res3 : this.encoded;
  }

  /** The residual stream leaving the last block (BT,C). */
  readonly residualOut: Tensor;

  readonly #scratch = new Map<string, Tensor>();

  /**
   * A tensor owned by these activations under `name` (allocated on first use, same tensor after):
   * where PEFT modules keep what their backward needs.
   */
  scratch(name: string, shape: number[]): Tensor {
    let t = this.#scratch.get(name);
    if (!t) {
      t = this.#arena.t(shape, name);
      this.#scratch.set(name, t);
    } else if (t.size !== shape.reduce((a, b) => a * b, 1)) {
      throw new RangeError(
        `Cannot reuse scratch tensor "${name}" of ${t.size} elements for shape [${
          shape.join(", ")
        }]`,
      );
    }
    return t;
  }

  /**
   * Allocates the gradient scratch (once). With `checkpoint`, three of its tensors are shared
   * intermediates whose values are dead whenever the gradient is live: the backward never reads
   * attProj or fcProj (adapters keep their own copy of their input), so they hold datty and dln,
   * and fcGelu is last read by c_proj's backward, just before dfc is zeroed and written (the next
   * block's recomputation rewrites all three before its backward reads any).
   */
  ensureGrads(cfg: GPTConfig): GradScratch {
    if (this.grads) return this.grads;
    const M = this.B * this.T, C = cfg.n_embd, F = innerSize(cfg), a = this.#arena;
    const shared = this.checkpoint ? this.blocks[0] : undefined;
    this.grads = {
      dres: a.t([this.B, this.T, C], "dres"),
      dbranch: a.t([this.B, this.T, C], "dbranch"),
      dln: shared?.fcProj ?? a.t([M, C], "dln"),
      datty: shared?.attProj ?? a.t([M, C], "datty"),
      dqkv: a.t([M, 3 * C], "dqkv"),
      datt: a.t(Attention.scratchShape(this.B, this.T, cfg.n_head), "datt"),
      dfc: shared?.fcGelu ?? a.t([M, F], "dfc"),
      dfcGelu: a.t([M, F], "dfc.gelu"),
    };
    return this.grads;
  }

  /** Releases every tensor. */
  release(): void {
    this.#arena.release();
  }
}

/** Options for {@linkcode GPT.create}. */
export interface GPTOptions {
  /** Seed of the weight initialisation (ignored for tensors given in `weights`). */
  seed?: number;
  /** Initial values by Hugging Face name (e.g. from {@linkcode loadHFCheckpoint}). */
  weights?: ReadonlyMap<string, { shape: readonly number[]; data: Float32Array }>;
  /** Allocate gradients for every parameter (full fine-tuning). Default true. */
  trainable?: boolean;
}

/**
 * A GPT-2 decoder on the GPU.
 *
 * @example
 * ```ts
 * import { GPT, gptConfig, Gpu } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const model = await GPT.create(gpu, gptConfig("tiny"), { seed: 1 });
 * const acts = model.activations(1, 4);
 * const batch = gpu.batch();
 * model.forward(batch, acts, { ids: [72, 105, 33, 10], labels: [72, 105, 33, 10] });
 * await batch.submit();
 * const loss = await model.meanLoss(acts);
 * if (!(Math.abs(loss - Math.log(256)) < 0.1)) throw new Error(`untrained loss ${loss}`);
 * acts.release();
 * model.release();
 * ```
 */
export class GPT {
  /** The configuration. */
  readonly config: GPTConfig;
  /** The device. */
  readonly gpu: Gpu;
  /** The kernels. */
  readonly kernels: Kernels;
  /** Parameters by Hugging Face name, in checkpoint order. */
  readonly params: Map<string, Param>;
  /** Token embedding (V,C), tied to the LM head. */
  readonly wte: Param;
  /** Position embedding (n_positions, C). */
  readonly wpe: Param;
  /** The blocks. */
  readonly blocks: Block[];
  /** Final LayerNorm. */
  readonly lnF: LayerNormModule;
  #virtual: VirtualTokens | null = null;

  private constructor(gpu: Gpu, config: GPTConfig, kernels: Kernels, params: Map<string, Param>) {
    this.gpu = gpu;
    this.config = config;
    this.kernels = kernels;
    this.params = params;
    const p = (name: string) => params.get(name)!;
    this.wte = p("wte.weight");
    this.wpe = p("wpe.weight");
    this.blocks = [];
    for (let l = 0; l < config.n_layer; l++) {
      const h = `h.${l}.`;
      const linear = (name: string) => new Linear(p(h + name + ".weight"), p(h + name + ".bias"));
      const ln = (name: string) =>
        new LayerNormModule(
          p(h + name + ".weight"),
          p(h + name + ".bias"),
          config.layer_norm_epsilon,
        );
      this.blocks.push(
        new Block(
          l,
          ln("ln_1"),
          new CausalSelfAttention(linear("attn.c_attn"), linear("attn.c_proj"), config.n_head, l),
          ln("ln_2"),
          new MLP(linear("mlp.c_fc"), linear("mlp.c_proj")),
          config.resid_pdrop,
        ),
      );
    }
    this.lnF = new LayerNormModule(p("ln_f.weight"), p("ln_f.bias"), config.layer_norm_epsilon);
  }

  /**
   * Builds the model: parameters from `weights` where given, the rest initialised as Hugging Face
   * GPT-2 does (weights N(0, 0.02), every `c_proj.weight` N(0, 0.02/√(2·n_layer)), biases 0,
   * LayerNorm weights 1).
   */
  static async create(gpu: Gpu, config: GPTConfig, options: GPTOptions = {}): Promise<GPT> {
    const cfg = validateConfig(config);
    headDim(cfg);
    if (cfg.attn_pdrop > 0) {
      // The attention kernels have no dropout on the probabilities; refuse rather than train a
      // different model than the config says. Set attn_pdrop to 0 to fine-tune such a checkpoint.
      throw new RangeError(
        `Cannot build the model: attn_pdrop=${cfg.attn_pdrop} is not supported (attention-probability dropout); set attn_pdrop to 0`,
      );
    }
    const kernels = await Kernels.create(gpu);
    const rng = new Rng(options.seed ?? 0);
    const std = cfg.initializer_range;
    const projStd = std / Math.sqrt(2 * cfg.n_layer);
    const params = new Map<string, Param>();
    const trainable = options.trainable ?? true;
    for (const [name, shape] of gpt2ParameterShapes(cfg)) {
      const n = shape.reduce((a, b) => a * b, 1);
      let data: Float32Array;
      const given = options.weights?.get(name);
      if (given) {
        if (given.shape.join() !== shape.join()) {
          throw new RangeError(
            `Cannot load tensor "${name}": shape [${given.shape.join(", ")}], expected [${
              shape.join(", ")
            }]`,
          );
        }
        data = given.data;
      } else if (name.endsWith(".bias")) {
        data = new Float32Array(n);
      } else if (/ln_\d\.weight$|ln_f\.weight$/.test(name)) {
        data = new Float32Array(n).fill(1);
      } else {
        data = rng.fillNormal(
          new Float32Array(n),
          name.endsWith("c_proj.weight") ? projStd : std,
        ) as Float32Array;
      }
      const value = gpu.tensor(shape, data, name);
      const isMatrix = shape.length === 2 && !name.startsWith("wpe") && !name.startsWith("wte");
      params.set(name, {
        name,
        shape,
        value,
        grad: trainable ? gpu.tensor(shape, undefined, name + ".grad") : null,
        decay: isMatrix,
        gradMask: null,
      });
    }
    return new GPT(gpu, cfg, kernels, params);
  }

  /** Virtual tokens (prompt or prefix tuning) in front of every sequence, or null. */
  get virtual(): VirtualTokens | null {
    return this.#virtual;
  }

  /** Sets the virtual tokens (allocate activations afterwards: they include the n extra positions). */
  setVirtual(v: VirtualTokens | null): void {
    this.#virtual = v;
    for (const b of this.blocks) b.attn.virtual = v?.kvForward ? v : null;
  }

  /**
   * Activations for a (B,T) batch of real tokens (plus the virtual ones, if any); reuse them
   * across steps and release when done. `checkpoint: true` turns on activation (gradient)
   * checkpointing: see {@linkcode Activations}.
   */
  activations(B: number, T: number, options: { checkpoint?: boolean } = {}): Activations {
    return new Activations(this.gpu, this.config, B, T, this.#virtual?.n ?? 0, options);
  }

  /** Parameters added by PEFT methods (LoRA matrices, adapters, virtual tokens), by name. */
  readonly injected: Map<string, Param> = new Map();

  /** Base parameters in checkpoint order, then injected ones. */
  parameters(): Param[] {
    return [...this.params.values(), ...this.injected.values()];
  }

  /**
   * Adds a trainable parameter under `name` (a PEFT method's own prefix) with initial `data`.
   * Weight decay applies when `decay` is true.
   */
  addParam(name: string, shape: readonly number[], data: Float32Array, decay = false): Param {
    if (this.params.has(name) || this.injected.has(name)) {
      throw new RangeError(
        `Cannot add parameter "${name}": the model already has one by that name`,
      );
    }
    const p: Param = {
      name,
      shape,
      value: this.gpu.tensor(shape, data, name),
      grad: this.gpu.tensor(shape, undefined, name + ".grad"),
      decay,
      gradMask: null,
    };
    this.injected.set(name, p);
    return p;
  }

  /** Removes and releases an injected parameter. */
  removeParam(name: string): void {
    const p = this.injected.get(name);
    if (!p) throw new RangeError(`Cannot remove parameter "${name}": no such injected parameter`);
    this.injected.delete(name);
    p.value.release();
    p.grad?.release();
    p.gradMask?.release();
  }

  /** Freezes (releases the gradient of) or unfreezes a parameter. */
  setTrainable(p: Param, on: boolean): void {
    if (on && !p.grad) p.grad = this.gpu.tensor(p.shape, undefined, p.name + ".grad");
    if (!on && p.grad) {
      p.grad.release();
      p.grad = null;
    }
  }

  /**
   * Uploads `inputs` and records the forward pass: logits (BT,V) and, when labels are given, the
   * per-position losses. With `training`, also records the backward pass (gradients accumulate
   * `+=` into each trainable parameter's grad; zero them first) and dropout is active.
   * `lossScale` defaults to 1/(number of scored targets), the mean loss; pass 1/(total over all
   * micro-batches) for gradient accumulation.
   */
  forward(
    batch: Batch,
    acts: Activations,
    inputs: Inputs,
    options: { training?: boolean; seed?: number; lossScale?: number } = {},
  ): void {
    const cfg = this.config, { B, T, nVirtual: n, realT } = acts, M = B * T;
    if (n !== (this.#virtual?.n ?? 0)) {
      throw new RangeError(
        `Cannot run the model: the activations have ${n} virtual tokens, the model ${
          this.#virtual?.n ?? 0
        } (allocate them after setting up PEFT)`,
      );
    }
    if (inputs.ids.length !== B * realT) {
      throw new RangeError(
        `Cannot run the model: ${inputs.ids.length} ids for a (B=${B}, T=${realT}) batch, expected ${
          B * realT
        }`,
      );
    }
    Embedding.checkIds(inputs.ids, cfg.vocab_size, realT);
    // Virtual positions hold id 0 (overwritten after the embedding) and never carry a label.
    for (let b = 0; b < B; b++) {
      acts.hostIds.fill(0, b * T, b * T + n);
      for (let t = 0; t < realT; t++) acts.hostIds[b * T + n + t] = inputs.ids[b * realT + t];
    }
    batch.write(acts.ids, acts.hostIds);
    const training = options.training ?? false;
    const ctx: Ctx = {
      gpu: this.gpu,
      batch,
      k: this.kernels,
      training,
      seed: options.seed ?? 0,
      acts,
    };
    const k = this.kernels;
    k.embedding.forward(
      batch,
      acts.ids,
      acts.hostIds,
      this.wte.value,
      this.wpe.value,
      acts.encoded,
    );
    const embDrop = training && cfg.embd_pdrop > 0;
    // Virtual rows (prompt tuning) are part of the input embeddings, so dropout applies to them too.
    this.#virtual?.embedForward?.(ctx, acts.encoded, B, T);
    if (embDrop) k.dropout.forward(batch, acts.encoded, acts.encoded, cfg.embd_pdrop, ctx.seed);
    let x = acts.encoded;
    for (let l = 0; l < this.blocks.length; l++) {
      this.blocks[l].forward(ctx, x, acts.blocks[l], B, T);
      x = acts.blocks[l].res3;
    }
    this.lnF.forward(ctx, x, acts.lnf, acts.lnfMean, acts.lnfRstd, M);
    k.matmul.tiedForward(
      batch,
      acts.lnf,
      this.wte.value,
      acts.logits,
      M,
      cfg.n_embd,
      cfg.vocab_size,
    );
    if (!inputs.labels && !training) return;
    if (!inputs.labels) throw new RangeError("Cannot train: the inputs have no labels");
    if (inputs.labels.length !== B * realT) {
      throw new RangeError(
        `Cannot run the model: ${inputs.labels.length} labels, expected ${B * realT}`,
      );
    }
    // Shift: position t predicts the label of position t+1; virtual positions have none, and the
    // last position of each row predicts nothing.
    const tg = acts.hostTargets;
    // Prompt tuning scores the first real token from the last virtual position (as PEFT does);
    // prefix tuning, like Hugging Face's past_key_values, has no position before the first token.
    const firstScored = n === 0 ? false : this.#virtual?.scoresFirstLabel ?? true;
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < T; t++) {
        const next = t + 1 - n;
        const scored = next >= 0 && next < realT && (next > 0 || firstScored);
        tg[b * T + t] = scored ? inputs.labels[b * realT + next] : IGNORE_INDEX;
      }
    }
    const scale = options.lossScale ?? CrossEntropy.meanScale(tg, cfg.vocab_size);
    batch.write(acts.targets, tg);
    k.crossentropy.forward(
      batch,
      acts.logits,
      acts.targets,
      acts.losses,
      training ? acts.logits : null,
      scale,
    );
    if (!training) return;
    this.#backward(ctx, acts, embDrop);
  }

  #backward(ctx: Ctx, acts: Activations, embDrop: boolean): void {
    const cfg = this.config, { B, T } = acts, M = B * T, k = this.kernels, batch = ctx.batch;
    const g = acts.ensureGrads(cfg);
    const x = acts.residualOut;
    // logits now hold dlogits (the cross-entropy wrote its gradient in place).
    k.matmul.tiedBackward(
      batch,
      {
        x: acts.lnf,
        wte: this.wte.value,
        dlogits: acts.logits,
        dx: g.dln,
        dWte: this.wte.grad,
      },
      M,
      cfg.n_embd,
      cfg.vocab_size,
    );
    batch.fill(g.dres, 0);
    this.lnF.backward(ctx, g.dln, x, acts.lnfMean, acts.lnfRstd, g.dres, M);
    const last = this.blocks.length - 1;
    for (let l = last; l >= 0; l--) {
      const input = l === 0 ? acts.encoded : acts.blocks[l - 1].res3;
      // Checkpointing: the shared intermediates hold the last block's values; recompute block l's
      // from its kept input with the same ctx (same seed, so the same dropout masks).
      if (acts.checkpoint && l < last) this.blocks[l].forward(ctx, input, acts.blocks[l], B, T);
      this.blocks[l].backward(ctx, input, acts.blocks[l], g, B, T);
    }
    const embedBackward = this.#virtual?.embedBackward;
    if (!this.wte.grad && !this.wpe.grad && !embedBackward) return;
    let dEmb = g.dres;
    if (embDrop) {
      batch.fill(g.dbranch, 0);
      k.dropout.backward(batch, g.dres, g.dbranch, cfg.embd_pdrop, ctx.seed);
      dEmb = g.dbranch;
    }
    // Virtual rows were written before the dropout, so their gradient is read after undoing it.
    embedBackward?.call(this.#virtual, ctx, dEmb, B, T);
    if (!this.wte.grad && !this.wpe.grad) return;
    const index = k.embedding.prepareBackward(acts.hostIds, cfg.vocab_size);
    k.embedding.backward(batch, index, dEmb, this.wte.grad, this.wpe.grad);
    batch.afterSubmit(() => index.release());
  }

  /** Reads the mean loss of the last forward over its scored positions (one GPU wait). */
  async meanLoss(acts: Activations): Promise<number> {
    const [losses] = await this.gpu.read([acts.losses]);
    let sum = 0, count = 0;
    for (let i = 0; i < losses.length; i++) {
      if (acts.hostTargets[i] !== IGNORE_INDEX) {
        sum += losses[i];
        count++;
      }
    }
    return count > 0 ? sum / count : NaN;
  }

  /** Records zeroing every gradient. */
  zeroGrad(batch: Batch): void {
    for (const p of this.parameters()) if (p.grad) batch.fill(p.grad, 0);
  }

  /** Reads every base parameter back (one GPU wait), by Hugging Face name. */
  async exportWeights(): Promise<Map<string, { shape: readonly number[]; data: Float32Array }>> {
    const ps = [...this.params.values()];
    const data = await this.gpu.read(ps.map((p) => p.value));
    return new Map(ps.map((p, i) => [p.name, { shape: p.shape, data: data[i] }]));
  }

  /** Reads every gradient back (one GPU wait); frozen parameters are absent. */
  async exportGrads(): Promise<Map<string, Float32Array>> {
    const ps = this.parameters().filter(isTrainable);
    const data = await this.gpu.read(ps.map((p) => p.grad!));
    return new Map(ps.map((p, i) => [p.name, data[i]]));
  }

  /** Total and trainable parameter counts. */
  countParameters(): { total: number; trainable: number } {
    let total = 0, trainable = 0;
    for (const p of this.parameters()) {
      const n = p.value.size;
      total += n;
      if (p.grad) trainable += n;
    }
    return { total, trainable };
  }

  /** Releases every parameter and gradient buffer. */
  release(): void {
    for (const p of this.parameters()) {
      p.value.release();
      p.grad?.release();
      p.gradMask?.release();
    }
  }
}
