/**
 * What every module's `forward` and `backward` receive: the device, the batch being recorded, the
 * compiled kernels, the pass's mode and seed, and the activations of the pass.
 *
 * @module
 */

import {
  Attention,
  Columns,
  CrossEntropy,
  DecodeAttention,
  Dropout,
  Embedding,
  Gelu,
  LayerNorm,
  Matmul,
  Residual,
  RMSNorm,
  Rotary,
  SwiGLU,
} from "../kernels/mod.ts";
import type { Batch, Gpu } from "../runtime/gpu.ts";
import type { HalfDtype, Tensor, TensorDtype } from "../runtime/tensor.ts";
import type { Activations } from "./activations.ts";

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
  /** KV-cache attention (generation). */
  decode: DecodeAttention;
  /** Embedding. */
  embedding: Embedding;
  /** Cross-entropy. */
  crossentropy: CrossEntropy;
  /** Residual add. */
  residual: Residual;
  /** Dropout. */
  dropout: Dropout;
  /** RMSNorm (Llama family). */
  rmsnorm: RMSNorm;
  /** Rotary position embeddings (Llama family). */
  rotary: Rotary;
  /** SiLU-gated MLP activation (Llama family). */
  swiglu: SwiGLU;
  /** Column blocks: packing q, k, v and summing input gradients (Llama family). */
  columns: Columns;
}

/**
 * Every kernel wrapper the models use, compiled once per device.
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
export class Kernels implements KernelSet {
  /** Matmuls (linear layers, the head). */
  readonly matmul: Matmul;
  /** LayerNorm. */
  readonly layernorm: LayerNorm;
  /** GELU (tanh form). */
  readonly gelu: Gelu;
  /** Causal self-attention core. */
  readonly attention: Attention;
  /** KV-cache attention (generation). */
  readonly decode: DecodeAttention;
  /** Token (+ position) embedding. */
  readonly embedding: Embedding;
  /** Fused softmax cross-entropy. */
  readonly crossentropy: CrossEntropy;
  /** Residual add. */
  readonly residual: Residual;
  /** Dropout. */
  readonly dropout: Dropout;
  /** RMSNorm (Llama family). */
  readonly rmsnorm: RMSNorm;
  /** Rotary position embeddings (Llama family). */
  readonly rotary: Rotary;
  /** SiLU-gated MLP activation (Llama family). */
  readonly swiglu: SwiGLU;
  /** Column blocks: packing q, k, v and summing input gradients (Llama family). */
  readonly columns: Columns;

  private constructor(k: KernelSet) {
    this.matmul = k.matmul;
    this.layernorm = k.layernorm;
    this.gelu = k.gelu;
    this.attention = k.attention;
    this.decode = k.decode;
    this.embedding = k.embedding;
    this.crossentropy = k.crossentropy;
    this.residual = k.residual;
    this.dropout = k.dropout;
    this.rmsnorm = k.rmsnorm;
    this.rotary = k.rotary;
    this.swiglu = k.swiglu;
    this.columns = k.columns;
  }

  /**
   * Compiles all kernels (cached by the device); with a half `baseDtype`, also the matmuls that
   * read weights stored in it.
   */
  static async create(gpu: Gpu, baseDtype: TensorDtype = "f32"): Promise<Kernels> {
    const halfB: HalfDtype[] = baseDtype === "f32" ? [] : [baseDtype];
    const [
      matmul,
      layernorm,
      gelu,
      attention,
      decode,
      embedding,
      crossentropy,
      residual,
      dropout,
      rmsnorm,
      rotary,
      swiglu,
      columns,
    ] = await Promise.all([
      Matmul.create(gpu, { halfB }),
      LayerNorm.create(gpu),
      Gelu.create(gpu),
      Attention.create(gpu),
      DecodeAttention.create(gpu),
      Embedding.create(gpu),
      CrossEntropy.create(gpu),
      Residual.create(gpu),
      Dropout.create(gpu),
      RMSNorm.create(gpu),
      Rotary.create(gpu),
      SwiGLU.create(gpu),
      Columns.create(gpu),
    ]);
    return new Kernels({
      matmul,
      layernorm,
      gelu,
      attention,
      decode,
      embedding,
      crossentropy,
      residual,
      dropout,
      rmsnorm,
      rotary,
      swiglu,
      columns,
    });
  }
}

/**
 * A KV cache being filled by generation: one (B, S, 2·kv width) tensor per layer, and the position
 * of each row's first new token (on the GPU and the CPU).
 */
export interface KvCache {
  /** Per layer (B, S, 2·Hkv·d): keys then values of each cached position. */
  readonly layers: readonly Tensor[];
  /** (B) u32: each row's first new position. */
  readonly start: Tensor;
  /** The same positions on the CPU. */
  readonly hostStart: Uint32Array;
  /** Positions the cache holds. */
  readonly S: number;
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
  /**
   * Generation's KV cache: attention appends the new rows' keys and values and attends to every
   * cached position up to each row's own, instead of running over the rows alone.
   */
  readonly cache?: KvCache;
}
