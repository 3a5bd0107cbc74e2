/**
 * Causal self-attention modules: projections → attention core → output projection. GPT-2 takes
 * q, k and v from one fused `c_attn`; the Llama family from `q_proj`, `k_proj` and `v_proj`, packed
 * into the same (BT,(H+2Hkv)·d) layout and rotated (RoPE) before the core, with grouped-query
 * heads. Under generation (`ctx.cache`) the core appends the new rows' keys and values to the
 * cache and attends over every cached position instead.
 *
 * @module
 */

import type { AttentionDropout } from "../kernels/attention.ts";
import { FlashAttention } from "../kernels/flash_attention.ts";
import type { Tensor } from "../runtime/tensor.ts";
import type { BlockActs, GradScratch } from "./activations.ts";
import type { Ctx } from "./context.ts";
import type { LinearField, LinearLike } from "./linear.ts";

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
  /**
   * After the projections (and rotary embedding) of block `layer`: overwrite the key/value parts
   * of rows 0..n−1 of `qkv` (B, n+T, (H+2Hkv)·d).
   */
  kvForward?(ctx: Ctx, layer: number, qkv: Tensor, B: number, T: number): void;
  /** After the attention backward of block `layer`: read the prefix gradient and zero rows 0..n−1 of `dqkv`. */
  kvBackward?(ctx: Ctx, layer: number, dqkv: Tensor, B: number, T: number): void;
}

/** The attention of a block, whatever its family. */
export interface AttentionModule {
  /** Index of the block. */
  readonly layer: number;
  /** Virtual tokens whose keys/values this layer takes (prefix tuning), or null. */
  virtual: VirtualTokens | null;
  /** The linear layers PEFT may wrap, by their Hugging Face module name relative to the block. */
  readonly linears: readonly LinearField[];
  /** x (B,T,C) → a.attProj (B,T,C) `=`, saving what backward needs in `a`. */
  forward(ctx: Ctx, x: Tensor, a: BlockActs, B: number, T: number): void;
  /** dy (B,T,C) → dx (B,T,C) `=`; parameter gradients `+=`. */
  backward(
    ctx: Ctx,
    x: Tensor,
    dy: Tensor,
    dx: Tensor,
    a: BlockActs,
    g: GradScratch,
    B: number,
    T: number,
  ): void;
}

/**
 * The attention-probability dropout of block `layer` in this pass: probability `p` in training,
 * none otherwise (evaluation, generation) or at p = 0. Its mask seed is a stream of its own, the
 * pass's seed + (−1 − layer)·φ, where the embedding's dropout takes the seed itself and the
 * residual branches of block l take + (2l + 1)·φ and + (2l + 2)·φ (see Block): φ is odd, so
 * distinct multiples are distinct seeds.
 */
function attentionDropout(ctx: Ctx, layer: number, p: number): AttentionDropout | undefined {
  if (!ctx.training || p === 0) return undefined;
  return { p, seed: (ctx.seed - Math.imul(layer + 1, 0x9e3779b9)) >>> 0 };
}

/**
 * Activations whose attention forward ran the fused kernels (kernels/flash_attention.ts), so that
 * their backward does too: the choice is made per forward (the fused kernels may still be
 * compiling on the first steps) and remembered with the activations it wrote.
 */
const FUSED = new WeakSet<BlockActs>();

/**
 * The attention core on packed q,k,v: over the rows alone in training and scoring (dropping
 * attention probabilities with probability `pdrop` in training), or through the KV cache under
 * generation. qkv (B,T,(H+2Hkv)·d) → out (B,T,H·d) `=`.
 */
export function attentionCore(
  ctx: Ctx,
  a: BlockActs,
  layer: number,
  B: number,
  T: number,
  heads: { H: number; Hkv: number; d: number },
  pdrop: number,
): void {
  const { H, Hkv, d } = heads, cache = ctx.cache, C = H * d;
  if (!cache) {
    const drop = attentionDropout(ctx, layer, pdrop);
    // Hardware adapters without attention dropout: the fused kernels, which keep each row's
    // log-sum-exp (B,H,T) in the first elements of `att` instead of the probabilities.
    if (!drop && FlashAttention.for(ctx.gpu).use(T, d, H / Hkv)) {
      FlashAttention.for(ctx.gpu).forward(ctx.batch, a.qkv, a.atty, a.att, B, T, C, H, Hkv);
      FUSED.add(a);
      return;
    }
    FUSED.delete(a);
    // The kernels' dropout scratch is the gradient scratch datt, free during any forward (with
    // checkpointing too: each block's recomputation runs before its backward writes datt).
    const dropout = drop && { ...drop, scratch: ctx.acts.ensureGrads().datt };
    ctx.k.attention.forward(ctx.batch, a.qkv, a.atty, a.att, B, T, C, H, Hkv, dropout);
    return;
  }
  const dec = ctx.k.decode, kv = cache.layers[layer];
  dec.append(ctx.batch, a.qkv, kv, cache.start, cache.hostStart, B, T, cache.S, C, H, Hkv);
  dec.attend(ctx.batch, a.qkv, kv, cache.start, cache.hostStart, a.atty, B, T, cache.S, C, H, Hkv);
}

/**
 * Backward of {@linkcode attentionCore} in training: datty (B,T,H·d) → g.dqkv (B,T,(H+2Hkv)·d)
 * `=`, with the kernels its forward ran (g.datt is scratch).
 */
function attentionCoreBackward(
  ctx: Ctx,
  a: BlockActs,
  g: GradScratch,
  B: number,
  T: number,
  heads: { H: number; Hkv: number; d: number },
  drop: AttentionDropout | undefined,
): void {
  const { H, Hkv, d } = heads, C = H * d;
  if (FUSED.has(a)) {
    const flash = FlashAttention.for(ctx.gpu);
    flash.backward(ctx.batch, g.datty, a.qkv, a.atty, a.att, g.datt, g.dqkv, B, T, C, H, Hkv);
    return;
  }
  ctx.k.attention.backward(ctx.batch, g.datty, a.qkv, a.att, g.datt, g.dqkv, B, T, C, H, Hkv, drop);
}

/**
 * GPT-2's causal self-attention: c_attn → attention core → c_proj.
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
export class CausalSelfAttention implements AttentionModule {
  /** Fused q,k,v projection (C, 3C); PEFT may wrap it. */
  cAttn: LinearLike;
  /** Output projection (C, C); PEFT may wrap it. */
  cProj: LinearLike;
  /** Heads. */
  readonly nHead: number;
  /** Index of the block. */
  readonly layer: number;
  /** Dropout probability on the attention probabilities in training (`attn_pdrop`). */
  readonly attnPdrop: number;
  /** Virtual tokens whose keys/values this layer takes (prefix tuning), or null. */
  virtual: VirtualTokens | null = null;
  /** `attn.c_attn` and `attn.c_proj`. */
  readonly linears: readonly LinearField[] = [
    { name: "attn.c_attn", get: () => this.cAttn, set: (l) => (this.cAttn = l) },
    { name: "attn.c_proj", get: () => this.cProj, set: (l) => (this.cProj = l) },
  ];

  /** The attention of block `layer`, dropping attention probabilities with `attnPdrop` in training. */
  constructor(cAttn: LinearLike, cProj: LinearLike, nHead: number, layer = 0, attnPdrop = 0) {
    this.cAttn = cAttn;
    this.cProj = cProj;
    this.nHead = nHead;
    this.layer = layer;
    this.attnPdrop = attnPdrop;
  }

  /** x (B,T,C) → a.attProj (B,T,C) `=`, saving qkv, att, atty. */
  forward(ctx: Ctx, x: Tensor, a: BlockActs, B: number, T: number): void {
    const C = this.cProj.nOut, H = this.nHead;
    this.cAttn.forward(ctx, x, a.qkv, B * T);
    // Under generation the virtual rows are already in the cache (written by the prefill).
    if (!ctx.cache) this.virtual?.kvForward?.(ctx, this.layer, a.qkv, B, T);
    attentionCore(ctx, a, this.layer, B, T, { H, Hkv: H, d: C / H }, this.attnPdrop);
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
    const C = this.cProj.nOut, H = this.nHead;
    const drop = attentionDropout(ctx, this.layer, this.attnPdrop);
    this.cProj.backward(ctx, a.atty, dy, g.datty, B * T);
    attentionCoreBackward(ctx, a, g, B, T, { H, Hkv: H, d: C / H }, drop);
    this.virtual?.kvBackward?.(ctx, this.layer, g.dqkv, B, T);
    this.cAttn.backward(ctx, x, g.dqkv, dx, B * T);
  }
}

/**
 * The Llama family's attention: `q_proj`, `k_proj`, `v_proj` packed into (BT,(H+2Hkv)·d), rotary
 * positions on q and k, grouped-query core, `o_proj`. Row t of a sequence is at position t (virtual
 * tokens included, as Hugging Face numbers prompt-tuning positions), or at the cache's row start
 * under generation; prefix tuning's keys and values are written after the rotation, unrotated, as
 * Hugging Face's `past_key_values` hold them.
 *
 * @example
 * ```ts
 * import { Gpu, Llama, llamaConfig } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const model = await Llama.create(gpu, llamaConfig("llama-tiny"), { seed: 1, trainable: false });
 * const attn = model.blocks[0].attn;
 * if (attn.linears.map((l) => l.name).join() !== "self_attn.q_proj,self_attn.k_proj,self_attn.v_proj,self_attn.o_proj") {
 *   throw new Error("Hugging Face module names");
 * }
 * model.release();
 * ```
 */
export class LlamaAttention implements AttentionModule {
  /** Query projection (H·d ← C); PEFT may wrap it. */
  qProj: LinearLike;
  /** Key projection (Hkv·d ← C). */
  kProj: LinearLike;
  /** Value projection (Hkv·d ← C). */
  vProj: LinearLike;
  /** Output projection (C ← H·d). */
  oProj: LinearLike;
  /** Query heads H, key/value heads Hkv, head size d. */
  readonly heads: { H: number; Hkv: number; d: number };
  /** Index of the block. */
  readonly layer: number;
  /** Dropout probability on the attention probabilities in training (`attention_dropout`). */
  readonly attnPdrop: number;
  /** Virtual tokens whose keys/values this layer takes (prefix tuning), or null. */
  virtual: VirtualTokens | null = null;
  /** cos/sin table of the rotary positions (positions, d/2, 2), shared by the blocks. */
  readonly rotary: Tensor;
  /** `self_attn.{q,k,v,o}_proj`. */
  readonly linears: readonly LinearField[] = [
    { name: "self_attn.q_proj", get: () => this.qProj, set: (l) => (this.qProj = l) },
    { name: "self_attn.k_proj", get: () => this.kProj, set: (l) => (this.kProj = l) },
    { name: "self_attn.v_proj", get: () => this.vProj, set: (l) => (this.vProj = l) },
    { name: "self_attn.o_proj", get: () => this.oProj, set: (l) => (this.oProj = l) },
  ];

  /** The attention of block `layer`, dropping attention probabilities with `attnPdrop` in training. */
  constructor(
    proj: { q: LinearLike; k: LinearLike; v: LinearLike; o: LinearLike },
    heads: { H: number; Hkv: number; d: number },
    rotary: Tensor,
    layer: number,
    attnPdrop = 0,
  ) {
    this.qProj = proj.q;
    this.kProj = proj.k;
    this.vProj = proj.v;
    this.oProj = proj.o;
    this.heads = heads;
    this.rotary = rotary;
    this.layer = layer;
    this.attnPdrop = attnPdrop;
  }

  /** The q, k and v column blocks of the packed layout: (source, first packed column, width). */
  #blocks(a: { q: Tensor; k: Tensor; v: Tensor }) {
    const { H, Hkv, d } = this.heads;
    return [[a.q, 0, H * d], [a.k, H * d, Hkv * d], [a.v, (H + Hkv) * d, Hkv * d]] as const;
  }

  /** x (B,T,C) → a.attProj (B,T,C) `=`, saving q, k, v, qkv (rotated), att, atty. */
  forward(ctx: Ctx, x: Tensor, a: BlockActs, B: number, T: number): void {
    const { H, Hkv, d } = this.heads, M = B * T, W = (H + 2 * Hkv) * d, batch = ctx.batch;
    const split = { q: a.q!, k: a.k!, v: a.v! };
    this.qProj.forward(ctx, x, split.q, M);
    this.kProj.forward(ctx, x, split.k, M);
    this.vProj.forward(ctx, x, split.v, M);
    for (const [src, doff, w] of this.#blocks(split)) {
      ctx.k.columns.copy(batch, src, a.qkv, { rows: M, w, ldd: W, doff });
    }
    const cache = ctx.cache;
    const offset = cache ? { starts: cache.start, host: cache.hostStart } : 0;
    ctx.k.rotary.forward(batch, a.qkv, this.rotary, B, T, H, Hkv, d, offset);
    // Under generation the virtual rows are already in the cache (written by the prefill).
    if (!ctx.cache) this.virtual?.kvForward?.(ctx, this.layer, a.qkv, B, T);
    attentionCore(ctx, a, this.layer, B, T, this.heads, this.attnPdrop);
    this.oProj.forward(ctx, a.atty, a.attProj, M);
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
    const { H, Hkv, d } = this.heads, M = B * T, W = (H + 2 * Hkv) * d, batch = ctx.batch;
    const s = g.split!;
    const drop = attentionDropout(ctx, this.layer, this.attnPdrop);
    this.oProj.backward(ctx, a.atty, dy, g.datty, M);
    attentionCoreBackward(ctx, a, g, B, T, this.heads, drop);
    this.virtual?.kvBackward?.(ctx, this.layer, g.dqkv, B, T);
    ctx.k.rotary.backward(batch, g.dqkv, this.rotary, B, T, H, Hkv, d, 0);
    const grads = { q: s.dq, k: s.dk, v: s.dv };
    for (const [dst, soff, w] of this.#blocks(grads)) {
      ctx.k.columns.copy(batch, g.dqkv, dst, { rows: M, w, lds: W, soff });
    }
    // The three projections read the same x: dx = dq·Wq + dk·Wk + dv·Wv.
    const C = dx.size / M;
    this.qProj.backward(ctx, x, s.dq, dx, M);
    this.kProj.backward(ctx, x, s.dk, s.dln2, M);
    ctx.k.columns.add(batch, s.dln2, dx, { rows: M, w: C });
    this.vProj.backward(ctx, x, s.dv, s.dln2, M);
    ctx.k.columns.add(batch, s.dln2, dx, { rows: M, w: C });
  }
}
