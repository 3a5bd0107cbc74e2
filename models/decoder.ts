/**
 * A decoder-only language model on the GPU, whatever its family: parameters by Hugging Face name,
 * embeddings → blocks → final norm → head, and the training step as three calls, one a line
 * (llm.c's `gpt2_forward`, then `gpt2_backward`):
 * ```
 * model.forward(batch, acts, { ids, labels }, { training: true, seed }); // logits and the loss
 * model.backward(batch, acts);                                            // every gradient +=
 * ```
 * The forward records the loss when labels are given (as Hugging Face's `labels=` does); with
 * `training` it also leaves what the head's backward needs: the logits' gradient in place, or,
 * where the (BT,V) logits are too large to hold (`acts.vocabChunk` < V), the statistics of the
 * head and loss computed together over vocabulary chunks (kernels/headloss.ts). Gradients of
 * frozen parameters are never computed: a module skips its weight-gradient kernels when the
 * parameter has no gradient buffer.
 *
 * Shapes: B batch, T sequence, C hidden size, V vocabulary, BT = B·T rows.
 *
 * @module
 */

import { CrossEntropy, Embedding, IGNORE_INDEX } from "../kernels/mod.ts";
import type { Batch, Gpu } from "../runtime/gpu.ts";
import { Rng } from "../runtime/rng.ts";
import { encodeHalf, type Tensor } from "../runtime/tensor.ts";
import { type ActivationOptions, Activations, type DecoderShape } from "./activations.ts";
import type { VirtualTokens } from "./attention.ts";
import { type BaseDtype, storedInBaseDtype } from "./base_dtype.ts";
import type { Block } from "./block.ts";
import type { GPTConfig } from "./config.ts";
import type { Ctx, Kernels, KvCache } from "./context.ts";
import type { Embeddings, LMHead } from "./embeddings.ts";
import type { LinearLike } from "./linear.ts";
import type { LlamaConfig } from "./llama_config.ts";
import type { Norm } from "./norms.ts";
import { type Param, requireF32 } from "./param.ts";
import { countScoredLabels, type ScoringRule, shiftLabels } from "./scoring.ts";

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

/** Options of {@linkcode Decoder.forward}. */
export interface ForwardOptions {
  /** Training mode: dropout on, and the logits' gradient left in place for {@linkcode Decoder.backward}. */
  training?: boolean;
  /** Seed of the dropout masks (the backward uses the same). Default 0. */
  seed?: number;
  /**
   * Scale of the loss gradient; defaults to 1/(number of scored targets), the mean loss. Pass
   * 1/(total over all micro-batches) for gradient accumulation.
   */
  lossScale?: number;
  /**
   * Write every position's logits (BT,V) to `acts.logits`. Default: true without labels; with
   * labels they come anyway where they are the loss's input (`acts.vocabChunk` = V), and true
   * asks for them also where the loss runs over vocabulary chunks (one more head GEMM, and (BT,V)
   * of memory). `logitRows` replaces them.
   */
  logits?: boolean;
  /**
   * Compute the logits of these positions only (flat indices `b·T + t` over the activations' T
   * positions, virtual ones included) into `out` (rows.length, V) `=`, instead of every
   * position's: generation reads one row per sequence.
   */
  logitRows?: { rows: readonly number[]; out: Tensor };
}

/** One linear layer of a block, as PEFT methods find and replace them. */
export interface LinearSlot {
  /** Module path, e.g. `h.0.attn.c_attn` or `model.layers.0.self_attn.q_proj`. */
  readonly path: string;
  /** The block index. */
  readonly layer: number;
  /** Module name relative to the block, e.g. `attn.c_attn` or `self_attn.q_proj`. */
  readonly name: string;
  /** The layer now in the slot (the base `Linear`, or a method's wrapper). */
  readonly current: LinearLike;
  /** Puts another layer in the slot. */
  replace(layer: LinearLike): void;
}

/** A parameter to create: its Hugging Face name, shape, initial values and optimizer treatment. */
export interface ParamSpec {
  /** Hugging Face name. */
  name: string;
  /** Shape as Hugging Face stores it. */
  shape: readonly number[];
  /** Initial values. */
  data: Float32Array;
  /** Weight decay applies. */
  decay: boolean;
}

/** Options of a decoder's `create`. */
export interface DecoderOptions {
  /** Seed of the weight initialisation (ignored for tensors given in `weights`). */
  seed?: number;
  /** Initial values by Hugging Face name (e.g. from a checkpoint). */
  weights?: ReadonlyMap<string, { shape: readonly number[]; data: Float32Array }>;
  /** Allocate gradients for every parameter (full fine-tuning). Default true. */
  trainable?: boolean;
  /**
   * Storage of the frozen base weights (linear layers, token embedding, untied head; see
   * models/base_dtype.ts `storedInBaseDtype`): `"f32"` (default), or `"f16"` / `"bf16"` packed
   * halves, half the bytes, with f32 compute. A half base cannot be trained: it needs
   * `trainable: false` (PEFT methods add their own f32 parameters). Weights given in f32 are
   * rounded to nearest even; f16 or bf16 checkpoint values keep their exact bits in the same dtype.
   * `defaultBaseDtype` gives the default a run should use.
   */
  baseDtype?: BaseDtype;
}

/**
 * The parameters of a model: `weights` where given (shapes checked), else `init(name, shape, rng)`;
 * uploaded with gradients when `trainable`.
 */
export function createParams(
  gpu: Gpu,
  shapes: ReadonlyMap<string, readonly number[]>,
  options: DecoderOptions,
  init: (name: string, n: number, rng: Rng) => Float32Array,
  decays: (name: string, shape: readonly number[]) => boolean,
): Map<string, Param> {
  const rng = new Rng(options.seed ?? 0);
  const params = new Map<string, Param>();
  const trainable = options.trainable ?? true;
  const baseDtype = options.baseDtype ?? "f32";
  if (!["f32", "f16", "bf16"].includes(baseDtype)) {
    throw new RangeError(
      `Cannot create the model: baseDtype "${baseDtype}" is not one of "f32", "f16", "bf16"`,
    );
  }
  if (baseDtype !== "f32" && trainable) {
    throw new RangeError(
      `Cannot create the model: baseDtype "${baseDtype}" stores the base weights in half precision, which cannot be trained; full fine-tuning needs baseDtype "f32" (or pass trainable: false and train an adapter)`,
    );
  }
  for (const [name, shape] of shapes) {
    const n = shape.reduce((a, b) => a * b, 1);
    const given = options.weights?.get(name);
    if (given && given.shape.join() !== shape.join()) {
      throw new RangeError(
        `Cannot load tensor "${name}": shape [${given.shape.join(", ")}], expected [${
          shape.join(", ")
        }]`,
      );
    }
    const data = given ? given.data : init(name, n, rng);
    const half = baseDtype !== "f32" && storedInBaseDtype(name, shape) ? baseDtype : null;
    params.set(name, {
      name,
      shape,
      value: half
        ? gpu.tensor(shape, halfBits(name, data, half), name, half)
        : gpu.tensor(shape, data, name),
      grad: trainable ? gpu.tensor(shape, undefined, name + ".grad") : null,
      decay: decays(name, shape),
      gradMask: null,
    });
  }
  return params;
}

/**
 * `data` rounded to `dtype` (nearest even; the values of an f16 or bf16 checkpoint come back with
 * their exact bits), refusing a finite value that overflows f16's range (±65,504), by name.
 */
function halfBits(name: string, data: Float32Array, dtype: "f16" | "bf16"): Uint16Array {
  const bits = encodeHalf(data, dtype);
  const inf = dtype === "f16" ? 0x7c00 : 0x7f80;
  for (let i = 0; i < bits.length; i++) {
    if ((bits[i] & 0x7fff) === inf && Number.isFinite(data[i])) {
      throw new RangeError(
        `Cannot store tensor "${name}" in ${dtype}: element ${i} = ${
          data[i]
        } is beyond its largest finite value (${dtype === "f16" ? "65504" : "3.39e38"}); use ${
          dtype === "f16" ? 'baseDtype "bf16" or ' : ""
        }"f32"`,
      );
    }
  }
  return bits;
}

/** The parts a family builds its decoder from. */
export interface DecoderParts {
  /** Parameters by Hugging Face name, in checkpoint order. */
  params: Map<string, Param>;
  /** Input embedding. */
  embeddings: Embeddings;
  /** The blocks. */
  blocks: Block[];
  /** Final norm. */
  norm: Norm;
  /** Language-model head. */
  head: LMHead;
  /** Sizes of the activations. */
  shape: DecoderShape;
  /** Dropout on the embedding output in training (GPT-2's `embd_pdrop`; 0 for the Llama family). */
  embdPdrop: number;
  /** Module path of block l (`h.0`, `model.layers.0`). */
  blockPath: (l: number) => string;
}

/** A decoder-only language model on the GPU (see the module doc). */
export abstract class Decoder {
  /** The device. */
  readonly gpu: Gpu;
  /** The kernels. */
  readonly kernels: Kernels;
  /** Parameters by Hugging Face name, in checkpoint order. */
  readonly params: Map<string, Param>;
  /** Input embedding. */
  readonly embeddings: Embeddings;
  /** The blocks. */
  readonly blocks: Block[];
  /** Final norm (GPT-2's `ln_f`, the Llama family's `model.norm`). */
  readonly lnF: Norm;
  /** Language-model head. */
  readonly head: LMHead;
  /** Sizes of the activations. */
  readonly shape: DecoderShape;
  /** Parameters added by PEFT methods (LoRA matrices, adapters, virtual tokens), by name. */
  readonly injected: Map<string, Param> = new Map();
  /** The configuration, with Hugging Face's field names. */
  abstract readonly config: GPTConfig | LlamaConfig;
  readonly #embdPdrop: number;
  readonly #blockPath: (l: number) => string;
  #virtual: VirtualTokens | null = null;

  /** A decoder from its parts. */
  protected constructor(gpu: Gpu, kernels: Kernels, parts: DecoderParts) {
    this.gpu = gpu;
    this.kernels = kernels;
    this.params = parts.params;
    this.embeddings = parts.embeddings;
    this.blocks = parts.blocks;
    this.lnF = parts.norm;
    this.head = parts.head;
    this.shape = parts.shape;
    this.#embdPdrop = parts.embdPdrop;
    this.#blockPath = parts.blockPath;
  }

  /** The configuration as `config.json` holds it. */
  abstract configJson(): Record<string, unknown>;

  /** Token embedding (V,C) (tied to the head where the family ties it). */
  get wte(): Param {
    return this.embeddings.wte;
  }

  /** Vocabulary size V. */
  get vocabSize(): number {
    return this.shape.V;
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

  /** Which label positions the loss scores (see models/scoring.ts). */
  get scoring(): ScoringRule {
    const v = this.#virtual;
    return { nVirtual: v?.n ?? 0, scoresFirstLabel: v ? v.scoresFirstLabel ?? true : false };
  }

  /** Every linear layer of the blocks, by Hugging Face module path, as PEFT finds and replaces them. */
  linearSlots(): LinearSlot[] {
    return this.blocks.flatMap((block, layer) =>
      [...block.attn.linears, ...block.mlp.linears].map((f) => ({
        path: `${this.#blockPath(layer)}.${f.name}`,
        layer,
        name: f.name,
        current: f.get(),
        replace: (m: LinearLike) => f.set(m),
      }))
    );
  }

  /**
   * Activations for a (B,T) batch of real tokens (plus the virtual ones, if any); reuse them
   * across steps and release when done. `checkpoint: true` turns on activation (gradient)
   * checkpointing: see {@linkcode Activations}.
   */
  activations(B: number, T: number, options: ActivationOptions = {}): Activations {
    return new Activations(this.gpu, this.shape, B, T, this.#virtual?.n ?? 0, options);
  }

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

  /**
   * How the frozen base weights are stored: `"f16"` or `"bf16"` when they are packed halves (see
   * {@linkcode DecoderOptions.baseDtype}), else `"f32"`.
   */
  get baseDtype(): BaseDtype {
    for (const p of this.params.values()) if (p.value.dtype !== "f32") return p.value.dtype;
    return "f32";
  }

  /**
   * Freezes (releases the gradient of) or unfreezes a parameter. A parameter stored in half
   * precision cannot be unfrozen: the error names it.
   */
  setTrainable(p: Param, on: boolean): void {
    if (on) requireF32(p, `train parameter "${p.name}"`);
    if (on && !p.grad) p.grad = this.gpu.tensor(p.shape, undefined, p.name + ".grad");
    if (!on && p.grad) {
      p.grad.release();
      p.grad = null;
    }
  }

  /**
   * Uploads `inputs` and records the forward pass: the logits (see {@linkcode ForwardOptions}
   * `logits` and `logitRows`) and, when labels are given, the per-position losses. With
   * `training`, dropout is active and the head leaves what {@linkcode backward} needs (the logits'
   * gradient scaled by `lossScale`, or the chunked loss's statistics).
   */
  forward(batch: Batch, acts: Activations, inputs: Inputs, options: ForwardOptions = {}): void {
    const { B, T, nVirtual: n, realT } = acts, M = B * T;
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
    const training = options.training ?? false;
    if (training && !inputs.labels) throw new RangeError("Cannot train: the inputs have no labels");
    if (inputs.labels && inputs.labels.length !== B * realT) {
      throw new RangeError(
        `Cannot run the model: ${inputs.labels.length} labels, expected ${B * realT}`,
      );
    }
    Embedding.checkIds(inputs.ids, this.shape.V, realT);
    if (options.logitRows) this.#checkLogitRows(acts, options.logitRows);
    // Virtual positions hold id 0 (overwritten after the embedding) and never carry a label.
    for (let b = 0; b < B; b++) {
      acts.hostIds.fill(0, b * T, b * T + n);
      for (let t = 0; t < realT; t++) acts.hostIds[b * T + n + t] = inputs.ids[b * realT + t];
    }
    batch.write(acts.ids, acts.hostIds);
    acts.pass = { training, seed: options.seed ?? 0 };
    acts.hasLogitGrad = false;
    const ctx = this.#ctx(batch, acts);
    this.embeddings.forward(ctx, acts);
    this.#embedTail(ctx, acts);
    let x = acts.encoded;
    for (let l = 0; l < this.blocks.length; l++) {
      this.blocks[l].forward(ctx, x, acts.blocks[l], B, T);
      x = acts.blocks[l].res3;
    }
    this.lnF.forward(ctx, x, acts.lnf, acts.lnfMean, acts.lnfRstd, M);
    if (options.logitRows) this.#logitRows(ctx, acts, options.logitRows);
    if (inputs.labels) {
      this.#loss(ctx, acts, inputs.labels, training, options.lossScale, options.logits ?? false);
    } else if (!options.logitRows && (options.logits ?? true)) {
      this.head.forward(ctx, acts.lnf, acts.logits, M);
    }
  }

  /**
   * Records the backward pass of the last training forward over `acts`: gradients accumulate `+=`
   * into each trainable parameter's grad (zero them first).
   */
  backward(batch: Batch, acts: Activations): void {
    if (!acts.pass?.training || !acts.hasLogitGrad) {
      throw new RangeError(
        "Cannot run the backward: the last forward over these activations was not a training forward with labels",
      );
    }
    const { B, T } = acts, M = B * T;
    const ctx = this.#ctx(batch, acts);
    const g = acts.ensureGrads();
    const x = acts.residualOut;
    // The loss left dlogits in acts.logits, or, over vocabulary chunks, its statistics.
    if (acts.vocabChunk === this.shape.V) this.head.backward(ctx, acts.lnf, acts.logits, g.dln, M);
    else this.head.lossBackward(ctx, acts.lnf, acts, g.dln, acts.lossScale);
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
    this.#embedTailBackward(ctx, acts);
    acts.hasLogitGrad = false;
  }

  /**
   * Records one position per row through the model with a KV cache (generation): `tokens[b]` at
   * `cache.hostStart[b]`, whose keys and values are appended to the cache; logits of the new rows
   * land in `acts.logits` (B,V). `acts` are (B,1) activations without virtual tokens.
   */
  decodeStep(batch: Batch, acts: Activations, tokens: readonly number[], cache: KvCache): void {
    const B = acts.B;
    const ctx: Ctx = { ...this.#ctx(batch, acts), cache };
    this.embeddings.forwardAt(ctx, tokens, [...cache.hostStart], acts.encoded);
    let x = acts.encoded;
    for (let l = 0; l < this.blocks.length; l++) {
      this.blocks[l].forward(ctx, x, acts.blocks[l], B, 1);
      x = acts.blocks[l].res3;
    }
    this.lnF.forward(ctx, x, acts.lnf, acts.lnfMean, acts.lnfRstd, B);
    this.head.forward(ctx, acts.lnf, acts.logits, B);
  }

  #ctx(batch: Batch, acts: Activations): Ctx {
    const pass = acts.pass ?? { training: false, seed: 0 };
    return {
      gpu: this.gpu,
      batch,
      k: this.kernels,
      training: pass.training,
      seed: pass.seed,
      acts,
    };
  }

  /** After the embedding: the virtual rows, then dropout (virtual rows are input embeddings too). */
  #embedTail(ctx: Ctx, acts: Activations): void {
    this.#virtual?.embedForward?.(ctx, acts.encoded, acts.B, acts.T);
    if (ctx.training && this.#embdPdrop > 0) {
      ctx.k.dropout.forward(ctx.batch, acts.encoded, acts.encoded, this.#embdPdrop, ctx.seed);
    }
  }

  #embedTailBackward(ctx: Ctx, acts: Activations): void {
    const g = acts.grads!, batch = ctx.batch;
    const embedBackward = this.#virtual?.embedBackward;
    if (!this.wte.grad && !this.embeddings.wpe?.grad && !embedBackward) return;
    let dEmb = g.dres;
    if (this.#embdPdrop > 0) {
      batch.fill(g.dbranch, 0);
      ctx.k.dropout.backward(batch, g.dres, g.dbranch, this.#embdPdrop, ctx.seed);
      dEmb = g.dbranch;
    }
    // Virtual rows were written before the dropout, so their gradient is read after undoing it.
    embedBackward?.call(this.#virtual, ctx, dEmb, acts.B, acts.T);
    this.embeddings.backward(ctx, acts, dEmb);
  }

  /**
   * Targets from the labels (models/scoring.ts), then the head and the cross-entropy: the logits
   * and the fused loss over them where they fit the head's scratch (`acts.vocabChunk` = V), else
   * the two together over vocabulary chunks (plus the whole logits when `logits` asks).
   */
  #loss(
    ctx: Ctx,
    acts: Activations,
    labels: ArrayLike<number>,
    training: boolean,
    lossScale: number | undefined,
    logits: boolean,
  ): void {
    const batch = ctx.batch, tg = acts.hostTargets, M = acts.B * acts.T;
    shiftLabels(labels, acts.B, acts.realT, this.scoring, tg);
    const scale = lossScale ?? CrossEntropy.meanScale(tg, this.shape.V);
    batch.write(acts.targets, tg);
    if (acts.vocabChunk === this.shape.V) {
      this.head.forward(ctx, acts.lnf, acts.logits, M);
      this.kernels.crossentropy.forward(
        batch,
        acts.logits,
        acts.targets,
        acts.losses,
        training ? acts.logits : null,
        scale,
      );
    } else {
      this.head.lossForward(ctx, acts.lnf, acts);
      if (logits) this.head.forward(ctx, acts.lnf, acts.logits, M);
    }
    acts.lossScale = scale;
    acts.hasLogitGrad = training;
  }

  /** The logits of some positions only: their final-norm rows gathered, then the head. */
  #logitRows(ctx: Ctx, acts: Activations, want: { rows: readonly number[]; out: Tensor }): void {
    const C = this.shape.C, R = want.rows.length;
    const x = acts.scratch(`head.rows.${R}`, [R, C]);
    want.rows.forEach((row, i) => {
      ctx.batch.copy(
        { buffer: acts.lnf.buffer, offset: acts.lnf.byteOffset + row * C * 4, size: C * 4 },
        { buffer: x.buffer, offset: x.byteOffset + i * C * 4, size: C * 4 },
      );
    });
    this.head.forward(ctx, x, want.out, R);
  }

  #checkLogitRows(acts: Activations, want: { rows: readonly number[]; out: Tensor }): void {
    const V = this.shape.V, R = want.rows.length, M = acts.B * acts.T;
    if (want.out.size !== R * V) {
      throw new RangeError(
        `Cannot compute the logits of ${R} positions: tensor "${want.out.label}" has ${want.out.size} elements, expected (${R}, ${V})`,
      );
    }
    for (const row of want.rows) {
      if (!(Number.isInteger(row) && row >= 0 && row < M)) {
        throw new RangeError(
          `Cannot compute the logits of position ${row}: the activations hold positions 0..${
            M - 1
          }`,
        );
      }
    }
  }

  /** Scored targets in `labels` (B,T) under this model's virtual tokens (models/scoring.ts). */
  countTargets(labels: ArrayLike<number>, T: number): number {
    return countScoredLabels(labels, T, this.scoring);
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
    const ps = this.parameters().filter((p) => p.grad !== null);
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
