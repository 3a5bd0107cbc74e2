/**
 * Every tensor one forward/backward of a (B,T) batch needs, allocated once and reused each step.
 *
 * @module
 */

import { Attention, HEAD_CHUNK_BYTES, HeadLoss, IGNORE_INDEX } from "../kernels/mod.ts";
import type { Gpu } from "../runtime/gpu.ts";
import type { Tensor } from "../runtime/tensor.ts";

/**
 * The sizes that decide a decoder's activations, whatever its family.
 * GPT-2: q, k and v come fused from `c_attn` (Hkv = H, d = C/H) and the MLP is `c_fc` → GELU →
 * `c_proj`. Llama family (`split`): q, k and v come from three projections and are packed into
 * `qkv`, and the MLP is gated (`gate` and `up` → silu(gate)·up → `down`).
 */
export interface DecoderShape {
  /** Hidden size C. */
  readonly C: number;
  /** Blocks. */
  readonly L: number;
  /** Query heads H. */
  readonly H: number;
  /** Key/value heads Hkv (divides H). */
  readonly Hkv: number;
  /** Head size d. */
  readonly d: number;
  /** MLP inner size F. */
  readonly F: number;
  /** Vocabulary V. */
  readonly V: number;
  /** Most positions the model takes. */
  readonly maxPositions: number;
  /** Llama family: separate q/k/v projections and a gated MLP. */
  readonly split: boolean;
}

/** Width of the packed q,k,v rows: (H + 2·Hkv)·d. */
export function qkvWidth(s: DecoderShape): number {
  return (s.H + 2 * s.Hkv) * s.d;
}

/** Activations of one block for one (B,T) shape. */
export interface BlockActs {
  /** First norm's output (BT,C). */
  ln1: Tensor;
  /** Its mean (BT) (LayerNorm only). */
  ln1Mean: Tensor;
  /** Its reciprocal standard deviation or RMS (BT). */
  ln1Rstd: Tensor;
  /** Packed queries, keys and values (BT,(H+2Hkv)·d), rotated in place for the Llama family. */
  qkv: Tensor;
  /** Split projections only: q (BT,H·d), k and v (BT,Hkv·d) before packing. */
  q?: Tensor;
  /** Split projections only: k (BT,Hkv·d). */
  k?: Tensor;
  /** Split projections only: v (BT,Hkv·d). */
  v?: Tensor;
  /** Attention probabilities (B,H,T,T). */
  att: Tensor;
  /** Attention output before the output projection (BT,H·d). */
  atty: Tensor;
  /** Attention branch output (BT,C). */
  attProj: Tensor;
  /** Residual stream after attention (BT,C). */
  res2: Tensor;
  /** Second norm's output (BT,C). */
  ln2: Tensor;
  /** Its mean (BT) (LayerNorm only). */
  ln2Mean: Tensor;
  /** Its reciprocal standard deviation or RMS (BT). */
  ln2Rstd: Tensor;
  /** First MLP projection's output (BT,F): GPT-2's `c_fc`, the Llama family's `gate_proj`. */
  fc: Tensor;
  /** Gated MLP only: `up_proj`'s output (BT,F). */
  up?: Tensor;
  /** The activation's output (BT,F): GELU(fc), or silu(gate)·up. */
  fcAct: Tensor;
  /** MLP branch output (BT,C). */
  fcProj: Tensor;
  /** Residual stream leaving the block (BT,C). */
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
  /** (BT,H·d) */
  datty: Tensor;
  /** (BT,(H+2Hkv)·d) */
  dqkv: Tensor;
  /** (B,H,T,T) */
  datt: Tensor;
  /** (BT,F) */
  dfc: Tensor;
  /** (BT,F) */
  dfcAct: Tensor;
  /** Split projections and gated MLP: dq, dk, dv, dup and a second (BT,C) input gradient. */
  split?: { dq: Tensor; dk: Tensor; dv: Tensor; dup: Tensor; dln2: Tensor };
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

/** Options of {@linkcode Activations} (and `Decoder.activations`). */
export interface ActivationOptions {
  /** Activation (gradient) checkpointing: see {@linkcode Activations}. Default false. */
  checkpoint?: boolean;
  /**
   * Most bytes of logits (and of W's rows) the head takes at once when it computes the loss
   * (default {@linkcode HEAD_CHUNK_BYTES}, 32 MiB, and never more than one storage binding): with
   * labels, the head and the loss run over chunks of `vocabChunk` vocabulary rows where the
   * logits are larger (see {@linkcode Activations}).
   */
  headChunkBytes?: number;
}

/**
 * Every tensor one forward/backward of a (B,T) batch needs, allocated once and reused each step.
 *
 * The logits. When the (BT,V) logits fit the head's scratch budget (`headChunkBytes`) and W fits
 * one storage binding, `vocabChunk` is V and a forward with labels computes every logit into
 * `logits` and the loss from them (a training forward then overwrites them with their gradient,
 * as llm.c does). Otherwise (GPT-2 small at 2,048 tokens per step: 411 MB of logits) a forward
 * with labels runs the head and the loss together over chunks of `vocabChunk` vocabulary rows
 * (kernels/headloss.ts) and `logits` is not written unless the forward asks for it. `logits` is
 * allocated on first use: training and scoring over chunks never allocate it, generation reads
 * the rows it needs through `ForwardOptions.logitRows`.
 *
 * With `checkpoint` (activation checkpointing, as Hugging Face's `gradient_checkpointing_enable()`
 * at block granularity), the blocks share one set of intermediates (ln1 … fcProj, one block's worth
 * instead of n_layer's) and each keeps only its output `res3`. The forward is unchanged and
 * overwrites the shared set block after block; the training backward recomputes each block's
 * forward from its kept input just before that block's backward (the last block's is still there),
 * in the same batch, with the same seed and so the same dropout masks: gradients and losses are
 * bit-identical, for about one more forward of compute. After a forward, `encoded`, every `res3`,
 * the final norm, logits and losses are valid as usual, but `blocks[l]`'s intermediates hold
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
  /** The model's sizes these activations were made for. */
  readonly shape: DecoderShape;
  /** Token ids (B,T) u32. */
  readonly ids: Tensor;
  /** Shifted targets (B·T) i32. */
  readonly targets: Tensor;
  /** Embedding output, the residual stream entering block 0 (B,T,C). */
  readonly encoded: Tensor;
  /** Per-block activations (with `checkpoint`, all but `res3` are one shared set). */
  readonly blocks: BlockActs[];
  /** Final norm output (BT,C) and its statistics. */
  readonly lnf: Tensor;
  /** Final norm mean (BT) (LayerNorm only). */
  readonly lnfMean: Tensor;
  /** Final norm rstd (BT). */
  readonly lnfRstd: Tensor;
  /**
   * Vocabulary rows of W the head takes at a time when it computes the loss: V (one chunk, the
   * logits themselves) or fewer (see {@linkcode Activations}).
   */
  readonly vocabChunk: number;
  /** Per-position losses (BT), 0 where the target is ignored. */
  readonly losses: Tensor;
  /** Gradient scratch (allocated on the first backward). */
  grads: GradScratch | null = null;
  /** Host copy of the last ids (for the embedding backward index). */
  hostIds: Uint32Array;
  /** Host copy of the last targets. */
  hostTargets: Int32Array;
  /** Mode and dropout seed of the last forward (its backward uses the same). */
  pass: { training: boolean; seed: number } | null = null;
  /** Whether the last loss wrote the logits' gradient in place (a backward may follow). */
  hasLogitGrad = false;
  /** Scale of the last training loss's gradient (the chunked head's backward applies it). */
  lossScale = 0;
  readonly #arena: Arena;
  #logits: Tensor | undefined;
  #headScratch: Tensor | undefined;
  #headStats: Tensor | undefined;

  /**
   * Activation checkpointing: every block shares one set of intermediates and keeps only its
   * output `res3`; the backward recomputes each block's forward before its backward.
   */
  readonly checkpoint: boolean;

  /**
   * Allocates the activations of a model of sizes `shape` for (B, nVirtual + T). With
   * `checkpoint`, the blocks share one set of intermediates (see {@linkcode Activations}).
   */
  constructor(
    gpu: Gpu,
    shape: DecoderShape,
    B: number,
    realT: number,
    nVirtual = 0,
    options: ActivationOptions = {},
  ) {
    if (!(Number.isInteger(B) && B > 0 && Number.isInteger(realT) && realT > 0)) {
      throw new RangeError(
        `Cannot allocate activations: B=${B} and T=${realT} must be positive integers`,
      );
    }
    const T = realT + nVirtual;
    if (T > shape.maxPositions) {
      const virtual = nVirtual ? ` plus ${nVirtual} virtual tokens` : "";
      throw new RangeError(
        `Cannot allocate activations: T=${realT}${virtual} exceeds the model's ${shape.maxPositions} positions`,
      );
    }
    this.shape = shape;
    this.nVirtual = nVirtual;
    this.realT = realT;
    const { C, H, Hkv, d, V, F } = shape, M = B * T;
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
      qkv: arena.t([M, qkvWidth(shape)], p + "qkv"),
      ...(shape.split
        ? {
          q: arena.t([M, H * d], p + "q"),
          k: arena.t([M, Hkv * d], p + "k"),
          v: arena.t([M, Hkv * d], p + "v"),
          up: arena.t([M, F], p + "up"),
        }
        : {}),
      att: arena.t(Attention.scratchShape(B, T, H), p + "att"),
      atty: arena.t([M, H * d], p + "atty"),
      attProj: arena.t([M, C], p + "attproj"),
      res2: arena.t([M, C], p + "res2"),
      ln2: arena.t([M, C], p + "ln2"),
      ln2Mean: arena.t([M], p + "ln2.mean"),
      ln2Rstd: arena.t([M], p + "ln2.rstd"),
      fc: arena.t([M, F], p + "fc"),
      fcAct: arena.t([M, F], p + "fc.act"),
      fcProj: arena.t([M, C], p + "fcproj"),
    });
    const shared = this.checkpoint ? intermediates("h.shared.") : null;
    this.blocks = [];
    for (let l = 0; l < shape.L; l++) {
      const p = `h.${l}.`;
      this.blocks.push({ ...(shared ?? intermediates(p)), res3: arena.t([M, C], p + "res3") });
    }
    this.lnf = arena.t([M, C], "lnf");
    this.lnfMean = arena.t([M], "lnf.mean");
    this.lnfRstd = arena.t([M], "lnf.rstd");
    this.vocabChunk = HeadLoss.chunkColumns(
      gpu,
      M,
      V,
      C,
      options.headChunkBytes ?? HEAD_CHUNK_BYTES,
    );
    this.losses = arena.t([M], "losses");
    this.hostIds = new Uint32Array(M);
    this.hostTargets = new Int32Array(M).fill(IGNORE_INDEX);
    const last = this.blocks[this.blocks.length - 1];
    this.residualOut = last ? last.res3 : this.encoded;
  }

  /** The residual stream leaving the last block (BT,C). */
  readonly residualOut: Tensor;

  /**
   * Logits (BT,V), allocated on first use. After a forward without labels (or with
   * `logits: true`) they hold every position's logits; with labels and `vocabChunk` = V they
   * hold the logits too, replaced by their gradient in a training forward.
   */
  get logits(): Tensor {
    return this.#logits ??= this.#arena.t([this.B * this.T, this.shape.V], "logits");
  }

  /** The chunked head's logits scratch (BT, vocabChunk): `logits` itself when vocabChunk = V. */
  get headScratch(): Tensor {
    if (this.vocabChunk === this.shape.V) return this.logits;
    return this.#headScratch ??= this.#arena.t(
      [this.B * this.T, this.vocabChunk],
      "head.logits_chunk",
    );
  }

  /** The chunked head's per-row statistics (BT,3): running max, running sum, target logit. */
  get headStats(): Tensor {
    return this.#headStats ??= this.#arena.t([this.B * this.T, 3], "head.stats");
  }

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
   * and fcAct is last read by the down-projection's backward, just before dfc is written (the
   * next block's recomputation rewrites all three before its backward reads any). attProj holds
   * datty only where both are (BT,C) (H·d = C).
   */
  ensureGrads(): GradScratch {
    if (this.grads) return this.grads;
    const { C, H, Hkv, d, F } = this.shape, M = this.B * this.T, a = this.#arena;
    const shared = this.checkpoint ? this.blocks[0] : undefined;
    this.grads = {
      dres: a.t([this.B, this.T, C], "dres"),
      dbranch: a.t([this.B, this.T, C], "dbranch"),
      dln: shared?.fcProj ?? a.t([M, C], "dln"),
      datty: (H * d === C ? shared?.attProj : undefined) ?? a.t([M, H * d], "datty"),
      dqkv: a.t([M, qkvWidth(this.shape)], "dqkv"),
      datt: a.t(Attention.scratchShape(this.B, this.T, H), "datt"),
      dfc: shared?.fcAct ?? a.t([M, F], "dfc"),
      dfcAct: a.t([M, F], "dfc.act"),
    };
    if (this.shape.split) {
      this.grads.split = {
        dq: a.t([M, H * d], "dq"),
        dk: a.t([M, Hkv * d], "dk"),
        dv: a.t([M, Hkv * d], "dv"),
        dup: a.t([M, F], "dup"),
        dln2: a.t([M, C], "dln2"),
      };
    }
    return this.grads;
  }

  /** Releases every tensor. */
  release(): void {
    this.#arena.release();
  }
}
