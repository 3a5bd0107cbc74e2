/**
 * The memory plan of a training run, made before its first step: the bytes of the weights,
 * gradients, AdamW moments, activations, the LM head's logits chunk and the kernels' scratch,
 * tensor by tensor as whet allocates them (models/activations.ts, train/trainer.ts,
 * train/optimizer.ts, the kernels' own scratch) and as the buffer pool accounts them (each buffer
 * rounded up to 256 bytes, runtime/pool.ts), checked against the adapter's limits (no tensor over
 * `maxBufferSize`; none over one storage binding except those bound in chunks) and the memory
 * available. When a run does not fit, {@linkcode fitMemory} says which of gradient checkpointing,
 * a half-precision base, a smaller batch or a shorter sequence would make it fit, with the numbers,
 * and turns checkpointing on by itself when that alone is needed.
 *
 * What the plan leaves out: the GPU driver's and Deno's own memory, the host copies of a
 * checkpoint while it loads, buffers released earlier and kept by the pool for reuse (the trainer's
 * callers trim the pool first), and generation's KV cache. The matmul's packed operand textures
 * (CPU adapters) are outside the pool's accounting: the plan estimates them apart.
 *
 * @module
 */

import type { DecoderShape } from "../models/activations.ts";
import { qkvWidth } from "../models/activations.ts";
import type { Decoder } from "../models/decoder.ts";
import { HEAD_CHUNK_BYTES, HeadLoss } from "../kernels/mod.ts";
import type { Gpu } from "../runtime/gpu.ts";
import { IA3Linear } from "../peft/ia3.ts";
import { LoRALinear } from "../peft/lora.ts";
import { BottleneckAdapter } from "../peft/adapters.ts";
import { systemMemory } from "../io/deno_system.ts";

/** A parameter as the plan sees it. */
export interface PlanParam {
  /** Hugging Face name (token tables are bound in chunks; see {@linkcode isVocabTable}). */
  name: string;
  /** Shape. */
  shape: readonly number[];
  /** Trained: a gradient and two AdamW moments, all f32, and the value in f32. */
  trainable: boolean;
  /** Has a per-element gradient mask (selective fine-tuning), one f32 per element. */
  masked?: boolean;
  /**
   * Stored in the base dtype when frozen (models/base_dtype.ts `storedInBaseDtype`: the 2-D
   * matrices, not norms, biases or `wpe`). Default false: f32.
   */
  half?: boolean;
}

/** How frozen base matrices are stored: f32, or f16/bf16 packed two to a 4-byte word. */
export type PlanDtype = "f32" | "f16" | "bf16";

/** The device limits the plan checks. */
export interface PlanLimits {
  /** Largest buffer (`maxBufferSize`): a tensor over it cannot exist. */
  maxBufferSize: number;
  /** Largest storage binding (`maxStorageBufferBindingSize`, or a smaller forced limit). */
  maxBindingBytes: number;
  /** Storage binding offset alignment (chunked views start on it). */
  offsetAlignment: number;
}

/** Memory the run may use, and where that figure came from. */
export interface Available {
  /** Bytes. */
  bytes: number;
  /** Where the figure came from, e.g. `Deno.systemMemoryInfo().available`. */
  source: string;
}

/** Everything a plan depends on. */
export interface MemoryPlanInput {
  /** The model's sizes. */
  shape: DecoderShape;
  /** Every parameter: the base ones and those a PEFT method added. */
  params: readonly PlanParam[];
  /** Batch size B. */
  batchSize: number;
  /** Real tokens per sequence. */
  seqLen: number;
  /** Virtual tokens in front of each sequence (prompt and prefix tuning). Default 0. */
  nVirtual?: number;
  /** Activation (gradient) checkpointing. */
  gradientCheckpointing: boolean;
  /**
   * The dtype of frozen parameters marked `half` (default f32): f16 and bf16 take half the bytes.
   * Trained parameters are always f32.
   */
  baseDtype?: PlanDtype;
  /** Whether a half-precision frozen base can be suggested (default false). */
  halfBaseAvailable?: boolean;
  /** The head's scratch budget (ActivationOptions.headChunkBytes). Default HEAD_CHUNK_BYTES. */
  headChunkBytes?: number;
  /** Elements per token of the PEFT methods' activation scratch (see {@linkcode peftScratchPerToken}). */
  peftScratchPerToken?: number;
  /** Micro-batches whose losses the trainer logs at once: logEvery × gradAccum. Default 10. */
  lossLogBatches?: number;
  /** The matmul packs its operands into textures (CPU adapters): estimate them. Default false. */
  packedOperands?: boolean;
  /** The device's limits. */
  limits: PlanLimits;
  /** Memory available, when known. */
  available?: Available;
}

/** One tensor (or `count` equal tensors) of the plan. */
export interface PlanTensor {
  /** Name, as the tensor's label or a family of them (`h.*.fc`). */
  name: string;
  /** Bytes of one tensor as the pool holds it (rounded up to 256). */
  bytes: number;
  /** How many such tensors. */
  count: number;
  /** Section of the plan. */
  section: PlanSection;
  /** Bound in chunks where it is over one storage binding (token tables, their moments, logits). */
  chunked: boolean;
}

/** The sections of a plan. */
export type PlanSection =
  | "weights"
  | "gradients"
  | "optimizer"
  | "activations"
  | "head"
  | "scratch";

/** The sections of a plan, in order. */
export const PLAN_SECTIONS: readonly PlanSection[] = [
  "weights",
  "gradients",
  "optimizer",
  "activations",
  "head",
  "scratch",
];

/** A training run's memory, as planned. */
export interface MemoryPlan {
  /** What it was planned for. */
  input: MemoryPlanInput;
  /** Bytes per section (pool buffers). */
  sections: Record<PlanSection, number>;
  /** Pool bytes: the sum of the sections, what `gpu.memory.peakReserved` measures. */
  pool: number;
  /** Estimated bytes of the matmul's packed operand textures (0 unless `packedOperands`). */
  textures: number;
  /** pool + textures: what is compared with the available memory. */
  total: number;
  /** Activation bytes per token (B·T), all layers, without the head. */
  activationBytesPerToken: number;
  /** Every tensor. */
  tensors: PlanTensor[];
  /** Why the device cannot hold some tensors: sentences naming them (empty when it can). */
  refused: string[];
  /** True when nothing is refused and the total fits the available memory (when known). */
  fits: boolean;
}

const GRANULE = 256;

/** Bytes the pool holds for a tensor of `elements` 4-byte elements (runtime/pool.ts's rounding). */
function poolBytes(elements: number): number {
  return Math.max(GRANULE, Math.ceil((elements * 4) / GRANULE) * GRANULE);
}

/**
 * Whether `name` is a token table (embedding or untied LM head, first dimension the vocabulary):
 * those, their gradients and moments are bound in chunks when over one storage binding.
 *
 * @example
 * ```ts
 * import { isVocabTable } from "./memory_plan.ts";
 * if (!isVocabTable("wte.weight") || !isVocabTable("model.embed_tokens.weight")) throw new Error();
 * if (isVocabTable("h.0.mlp.c_fc.weight")) throw new Error();
 * ```
 */
export function isVocabTable(name: string): boolean {
  return /(^|\.)(wte|embed_tokens|lm_head)\.weight$/.test(name);
}

const product = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/**
 * Plans the memory of a training run tensor by tensor (see the module doc).
 *
 * @example
 * ```ts
 * import { gpt2ParameterShapes, gptConfig } from "../mod.ts";
 * import { planMemory, planParamsFromShapes, shapeOfConfig } from "./memory_plan.ts";
 * const config = gptConfig("tiny");
 * const plan = planMemory({
 *   shape: shapeOfConfig(config),
 *   params: planParamsFromShapes(gpt2ParameterShapes(config), true),
 *   batchSize: 4,
 *   seqLen: 32,
 *   gradientCheckpointing: false,
 *   limits: { maxBufferSize: 2 ** 31, maxBindingBytes: 2 ** 27, offsetAlignment: 256 },
 * });
 * // Full fine-tuning: gradients as large as the weights, AdamW's two moments twice that.
 * if (plan.sections.gradients !== plan.sections.weights) throw new Error("grads = weights");
 * if (!plan.fits || plan.total !== plan.pool) throw new Error("no textures unless asked");
 * ```
 */
export function planMemory(input: MemoryPlanInput): MemoryPlan {
  const s = input.shape, B = input.batchSize, nVirtual = input.nVirtual ?? 0;
  const T = input.seqLen + nVirtual, M = B * T;
  const { C, H, Hkv, d, F, V, L } = s;
  const W = qkvWidth(s);
  const tensors: PlanTensor[] = [];
  const add = (
    section: PlanSection,
    name: string,
    elements: number,
    count = 1,
    opts: { chunked?: boolean } = {},
  ) => {
    if (count <= 0) return;
    tensors.push({
      name,
      bytes: poolBytes(elements),
      count,
      section,
      chunked: opts.chunked ?? false,
    });
  };

  // Weights, gradients and AdamW moments (train/optimizer.ts: m and v per trained parameter).
  const halfBase = (input.baseDtype ?? "f32") !== "f32";
  let gradSlots = 0, anyNormTrained = false, tableTrained = false;
  for (const p of input.params) {
    const n = product(p.shape), chunked = isVocabTable(p.name);
    // runtime/tensor.ts halfBytes: two halves to a 4-byte word.
    const packed = halfBase && !p.trainable && p.half;
    add("weights", p.name, packed ? Math.ceil(n / 2) : n, 1, { chunked });
    if (p.masked) add("weights", `${p.name}.mask`, n, 1, { chunked });
    if (!p.trainable) continue;
    add("gradients", `${p.name}.grad`, n, 1, { chunked });
    add("optimizer", `${p.name}.exp_avg`, n, 1, { chunked });
    add("optimizer", `${p.name}.exp_avg_sq`, n, 1, { chunked });
    // kernels/gradnorm.ts: one partial sum per 8,192 elements (per chunk of a chunked tensor).
    gradSlots += Math.ceil(n / 8192);
    if (/(ln_\d|ln_f|norm)\.weight$|(ln_\d|ln_f)\.bias$/.test(p.name)) anyNormTrained = true;
    if (chunked || /(^|\.)wpe\.weight$/.test(p.name)) tableTrained = true;
  }
  // Llama family: the rotary table (max positions, d/2, 2).
  if (s.split) add("weights", "rotary", s.maxPositions * d);
  if (input.params.some((p) => p.trainable)) {
    add("optimizer", "grad_norm", 2);
    add("optimizer", "gradnorm.partials", Math.max(gradSlots, 1));
  }

  // Activations (models/activations.ts), per block unless checkpointing shares one set.
  add("activations", "ids", M);
  add("activations", "targets", M);
  add("activations", "encoded", M * C);
  const sets = input.gradientCheckpointing ? 1 : L;
  const per = (name: string, elements: number) => add("activations", `h.*.${name}`, elements, sets);
  per("ln1", M * C);
  per("ln1.mean", M);
  per("ln1.rstd", M);
  per("qkv", M * W);
  if (s.split) {
    per("q", M * H * d);
    per("k", M * Hkv * d);
    per("v", M * Hkv * d);
    per("up", M * F);
  }
  per("att", B * H * T * T);
  per("atty", M * H * d);
  per("attproj", M * C);
  per("res2", M * C);
  per("ln2", M * C);
  per("ln2.mean", M);
  per("ln2.rstd", M);
  per("fc", M * F);
  per("fc.act", M * F);
  per("fcproj", M * C);
  add("activations", "h.*.res3", M * C, L);
  add("activations", "lnf", M * C);
  add("activations", "lnf.mean", M);
  add("activations", "lnf.rstd", M);
  add("activations", "losses", M);
  // Gradient scratch (Activations.ensureGrads): with checkpointing dln, datty and dfc live in
  // shared intermediates that are dead by then.
  const cp = input.gradientCheckpointing;
  add("activations", "dres", M * C);
  add("activations", "dbranch", M * C);
  if (!cp) add("activations", "dln", M * C);
  if (!(cp && H * d === C)) add("activations", "datty", M * H * d);
  add("activations", "dqkv", M * W);
  add("activations", "datt", B * H * T * T);
  if (!cp) add("activations", "dfc", M * F);
  add("activations", "dfc.act", M * F);
  if (s.split) {
    add("activations", "dq", M * H * d);
    add("activations", "dk", M * Hkv * d);
    add("activations", "dv", M * Hkv * d);
    add("activations", "dup", M * F);
    add("activations", "dln2", M * C);
  }
  // The trainer's loss log: logEvery × gradAccum micro-batches of M losses, plus the norm.
  add("activations", "loss_log", (input.lossLogBatches ?? 10) * M + 2);
  const peft = input.peftScratchPerToken ?? 0;
  if (peft > 0) add("activations", "peft scratch", peft * M);

  // The head: the (M,V) logits when they fit the head's budget, else one vocabulary chunk.
  const vc = vocabChunk(input.limits, M, V, C, input.headChunkBytes ?? HEAD_CHUNK_BYTES);
  if (vc === V) add("head", "logits", M * V, 1, { chunked: true });
  else {
    add("head", "head.logits_chunk", M * vc);
    add("head", "head.stats", M * 3);
  }

  // Kernel scratch: norm-weight gradients summed over row chunks (kernels/layernorm.ts,
  // rmsnorm.ts), the embedding backward's CSR index (kernels/embedding.ts: order, and segments of
  // three words per distinct id, at most min(M, V) of them), the matmul's stand-in bias.
  if (anyNormTrained) {
    const chunks = Math.ceil(M / Math.max(64, Math.ceil(M / 256)));
    add(
      "scratch",
      s.split ? "rmsnorm.scratch" : "layernorm.scratch",
      (s.split ? 1 : 2) * chunks * C,
    );
  }
  if (tableTrained) {
    add("scratch", "embedding.order", M);
    add("scratch", "embedding.segments", 3 * Math.min(M, V));
  }
  add("scratch", "matmul.noBias", 4);

  const sections = Object.fromEntries(PLAN_SECTIONS.map((k) => [k, 0])) as Record<
    PlanSection,
    number
  >;
  for (const t of tensors) sections[t.section] += t.bytes * t.count;
  const pool = PLAN_SECTIONS.reduce((a, k) => a + sections[k], 0);
  const textures = input.packedOperands ? textureBytes(input, M, vc) : 0;
  const total = pool + textures;
  const over = (t: PlanTensor) => t.bytes > input.limits.maxBufferSize;
  const unbound = (t: PlanTensor) =>
    !over(t) && !t.chunked && t.bytes > input.limits.maxBindingBytes;
  const refused = [
    refusal(tensors.filter(over), `this device's maxBufferSize of ${input.limits.maxBufferSize}`),
    refusal(
      tensors.filter(unbound),
      `this device's ${input.limits.maxBindingBytes}-byte storage binding limit (only token tables, their gradients and moments, and logits are bound in chunks)`,
    ),
  ].filter((r) => r !== "");
  const activationBytesPerToken = (sections.activations -
    tensors.filter((t) => t.name === "loss_log").reduce((a, t) => a + t.bytes, 0)) / M;
  const fits = refused.length === 0 &&
    (input.available === undefined || total <= input.available.bytes);
  return {
    input,
    sections,
    pool,
    textures,
    total,
    activationBytesPerToken,
    tensors,
    refused,
    fits,
  };
}

/** One sentence naming the first three of `list` (and how many more) as over `limit`. */
function refusal(list: PlanTensor[], limit: string): string {
  if (list.length === 0) return "";
  const named = list.slice(0, 3).map((t) => `"${t.name}" (${t.bytes} bytes)`);
  const more = list.length > 3 ? ` and ${list.length - 3} more` : "";
  const one = list.length === 1;
  return `tensor${one ? "" : "s"} ${named.join(", ")}${more} ${one ? "is" : "are"} over ${limit}`;
}

/** HeadLoss.chunkColumns, the one rule for the head's chunk, over the plan's limits. */
function vocabChunk(limits: PlanLimits, M: number, V: number, C: number, budget: number): number {
  // chunkColumns reads only these two properties of its device.
  const device = {
    maxBindingBytes: limits.maxBindingBytes,
    offsetAlignment: limits.offsetAlignment,
  } as unknown as Gpu;
  return HeadLoss.chunkColumns(device, M, V, C, budget);
}

/**
 * An estimate of the matmul's packed operand textures (kernels/matmul.ts keeps one per operand
 * slot and packed size, for the life of the kernels): every distinct (rows, cols, batch) operand of
 * one training step's GEMMs, as 16-byte texels of rows rounded up to 4.
 */
function textureBytes(input: MemoryPlanInput, M: number, vc: number): number {
  const s = input.shape, B = input.batchSize, T = input.seqLen + (input.nVirtual ?? 0);
  const keys = new Map<string, number>();
  const pack = (slot: string, rows: number, cols: number, count = 1) => {
    const height = count * Math.ceil(rows / 4) * 4;
    keys.set(`${slot}:${Math.ceil(cols / 4)}x${height}`, height * Math.ceil(cols / 4) * 16);
  };
  const linears: [number, number][] = s.split
    ? [[s.C, s.H * s.d], [s.C, s.Hkv * s.d], [s.H * s.d, s.C], [s.C, s.F], [s.F, s.C]]
    : [[s.C, qkvWidth(s)], [s.C, s.C], [s.C, s.F], [s.F, s.C]];
  for (const [nIn, nOut] of linears) {
    pack("A", M, nIn); // x, forward and (transposed) weight gradient
    pack("A", M, nOut); // dy, input gradient
    pack("B", nIn, nOut); // W as stored (Conv1D (in,out); nn.Linear (out,in) is as large)
    pack("B", M, nOut); // dy, weight gradient
  }
  pack("A", M, s.C);
  pack("B", vc, s.C);
  pack("A", M, vc);
  pack("B", M, s.C);
  // The gemm attention variant: batched over [B, Hkv], (T,d) operands and (T,T) probabilities.
  const count = B * s.Hkv;
  pack("A", T, s.d, count);
  pack("B", T, s.d, count);
  pack("A", T, T, count);
  return [...keys.values()].reduce((a, b) => a + b, 0);
}

/**
 * The sizes of a Hugging Face config's model, as `Decoder.shape` has them, without building it.
 *
 * @example
 * ```ts
 * import { gptConfig } from "../mod.ts";
 * import { shapeOfConfig } from "./memory_plan.ts";
 * const s = shapeOfConfig(gptConfig("gpt2"));
 * if (s.C !== 768 || s.L !== 12 || s.V !== 50257 || s.F !== 3072 || s.split) throw new Error();
 * ```
 */
export function shapeOfConfig(
  config:
    | {
      n_embd: number;
      n_layer: number;
      n_head: number;
      vocab_size: number;
      n_positions: number;
      n_inner?: number | null;
    }
    | {
      hidden_size: number;
      num_hidden_layers: number;
      num_attention_heads: number;
      num_key_value_heads: number;
      head_dim: number;
      intermediate_size: number;
      vocab_size: number;
      max_position_embeddings: number;
    },
): DecoderShape {
  if ("n_embd" in config) {
    return {
      C: config.n_embd,
      L: config.n_layer,
      H: config.n_head,
      Hkv: config.n_head,
      d: config.n_embd / config.n_head,
      F: config.n_inner ?? 4 * config.n_embd,
      V: config.vocab_size,
      maxPositions: config.n_positions,
      split: false,
    };
  }
  return {
    C: config.hidden_size,
    L: config.num_hidden_layers,
    H: config.num_attention_heads,
    Hkv: config.num_key_value_heads,
    d: config.head_dim,
    F: config.intermediate_size,
    V: config.vocab_size,
    maxPositions: config.max_position_embeddings,
    split: true,
  };
}

/**
 * Plan parameters from a checkpoint's parameter shapes (`gpt2ParameterShapes`,
 * `llamaParameterShapes`): all trained (full fine-tuning) or all frozen (a PEFT method's base,
 * before the method adds its own).
 *
 * @example
 * ```ts
 * import { gpt2ParameterShapes, gptConfig } from "../mod.ts";
 * import { planParamsFromShapes } from "./memory_plan.ts";
 * const params = planParamsFromShapes(gpt2ParameterShapes(gptConfig("tiny")), false);
 * if (params.some((p) => p.trainable) || params[0].name !== "wte.weight") throw new Error();
 * ```
 */
export function planParamsFromShapes(
  shapes: ReadonlyMap<string, readonly number[]>,
  trainable: boolean,
): PlanParam[] {
  return [...shapes].map(([name, shape]) => ({ name, shape, trainable }));
}

/**
 * Elements per token of the activation scratch the model's PEFT modules allocate in training:
 * LoRA's x·Aᵀ and its gradient (2r per layer, plus 2·in with dropout: the dropped input and its
 * gradient), IA³'s scaled input or output and its gradient, a bottleneck adapter's input, its
 * down-projection, activation and their gradients.
 *
 * @example
 * ```ts
 * import { GPT, gptConfig, Gpu, lora } from "../mod.ts";
 * import { peftScratchPerToken } from "./memory_plan.ts";
 * const gpu = await Gpu.get();
 * const model = await GPT.create(gpu, gptConfig("tiny"), { seed: 1 });
 * await lora.apply(model, lora.validate({ r: 4, target_modules: ["c_attn"] }), 0);
 * // u and du, (M, r) each, in each of the 2 layers' c_attn.
 * if (peftScratchPerToken(model) !== 2 * 2 * 4) throw new Error(String(peftScratchPerToken(model)));
 * model.release();
 * ```
 */
export function peftScratchPerToken(model: Decoder): number {
  let n = 0;
  for (const slot of model.linearSlots()) {
    const m = slot.current;
    if (m instanceof LoRALinear) {
      const a = m.active === null || m.merged.has(m.active) ? undefined : m.adapters.get(m.active);
      if (a) n += 2 * a.r + (a.dropout > 0 ? 2 * m.nIn : 0);
    } else if (m instanceof IA3Linear && m.active && !m.merged) {
      n += 2 * (m.feedforward ? m.nIn : m.nOut);
    }
  }
  for (const block of model.blocks) {
    for (const a of [block.attnAdapter, block.mlpAdapter]) {
      if (a instanceof BottleneckAdapter && a.active) n += 2 * model.shape.C + 4 * a.r;
    }
  }
  return n;
}

/**
 * The device limits of `gpu` for a plan.
 *
 * @example
 * ```ts
 * import { Gpu } from "../mod.ts";
 * import { planLimits } from "./memory_plan.ts";
 * const limits = planLimits(await Gpu.get());
 * if (!(limits.maxBindingBytes <= limits.maxBufferSize)) throw new Error(JSON.stringify(limits));
 * ```
 */
export function planLimits(gpu: Gpu): PlanLimits {
  return {
    maxBufferSize: gpu.device.limits.maxBufferSize,
    maxBindingBytes: gpu.maxBindingBytes,
    offsetAlignment: gpu.offsetAlignment,
  };
}

/**
 * The input of a plan for training `model` as it is now (its parameters, trained or frozen, and
 * its PEFT modules) on (B, T) batches.
 *
 * @example
 * ```ts
 * import { GPT, gptConfig, Gpu } from "../mod.ts";
 * import { planInputFromModel, planMemory } from "./memory_plan.ts";
 * const gpu = await Gpu.get();
 * const model = await GPT.create(gpu, gptConfig("tiny"), { seed: 1 });
 * const plan = planMemory(planInputFromModel(model, 2, 16, { gradientCheckpointing: false }));
 * if (!(plan.sections.optimizer > plan.sections.weights)) throw new Error("m and v");
 * model.release();
 * ```
 */
export function planInputFromModel(
  model: Decoder,
  batchSize: number,
  seqLen: number,
  options:
    & Pick<MemoryPlanInput, "gradientCheckpointing" | "lossLogBatches" | "available">
    & {
      /** Which frozen parameters a half base would store in half (storedInBaseDtype). */
      halfEligible?: (name: string, shape: readonly number[]) => boolean;
    },
): MemoryPlanInput {
  const gpu = model.gpu;
  const params = model.parameters();
  const stored = params.find((p) => p.value.dtype !== "f32")?.value.dtype ?? "f32";
  const eligible = options.halfEligible;
  return {
    shape: model.shape,
    params: params.map((p) => ({
      name: p.name,
      shape: p.shape,
      trainable: p.grad !== null,
      masked: p.gradMask !== null,
      half: p.value.dtype !== "f32" || (eligible?.(p.name, p.shape) ?? false),
    })),
    baseDtype: stored,
    halfBaseAvailable: eligible !== undefined,
    batchSize,
    seqLen,
    nVirtual: model.virtual?.n ?? 0,
    gradientCheckpointing: options.gradientCheckpointing,
    peftScratchPerToken: peftScratchPerToken(model),
    lossLogBatches: options.lossLogBatches,
    packedOperands: model.kernels.matmul.variant === "texture",
    limits: planLimits(gpu),
    available: options.available,
  };
}

/**
 * The memory a training run may use, when it can be known. On a CPU adapter (lavapipe, llvmpipe)
 * GPU memory is this process's memory: `Deno.systemMemoryInfo().available` (needs
 * `--allow-sys=systemMemoryInfo`; without it, undefined). WebGPU has no query for a discrete
 * GPU's free memory: undefined, and only the device's limits are checked.
 *
 * @example
 * ```ts
 * import { Gpu } from "../mod.ts";
 * import { availableMemory } from "./memory_plan.ts";
 * const gpu = await Gpu.get();
 * const a = availableMemory(gpu); // undefined without --allow-sys=systemMemoryInfo
 * if (a !== undefined && !(a.bytes > 0)) throw new Error(a.source);
 * ```
 */
export function availableMemory(gpu: Gpu): Available | undefined {
  if (!gpu.isSoftware) return undefined;
  // Deno's figure through io/ (in a browser bundle: none, pages cannot query free memory).
  return systemMemory();
}

/** A change that makes a run fit, and the plan with it. */
export interface Remedy {
  /** What changes. */
  change: "gradientCheckpointing" | "halfBase" | "batchSize" | "seqLen";
  /** The new value (true, "f16", or the largest batch size / length that fits). */
  value: number | boolean | string;
  /** The plan with the change. */
  plan: MemoryPlan;
}

/**
 * The changes that would make `input` fit, each alone where one suffices: gradient checkpointing,
 * a half-precision frozen base (where available and something is frozen), the largest smaller
 * batch size, the largest shorter sequence (these two with checkpointing as given). Empty when
 * none does.
 *
 * @example
 * ```ts
 * import { gpt2ParameterShapes, gptConfig } from "../mod.ts";
 * import { planMemory, planParamsFromShapes, remedies, shapeOfConfig } from "./memory_plan.ts";
 * const config = gptConfig("tiny");
 * const input = {
 *   shape: shapeOfConfig(config),
 *   params: planParamsFromShapes(gpt2ParameterShapes(config), true),
 *   batchSize: 16,
 *   seqLen: 64,
 *   gradientCheckpointing: false,
 *   limits: { maxBufferSize: 2 ** 31, maxBindingBytes: 2 ** 27, offsetAlignment: 256 },
 * };
 * const half = planMemory({ ...input, batchSize: 8 }).total;
 * const found = remedies({ ...input, available: { bytes: half, source: "test" } });
 * const batch = found.find((r) => r.change === "batchSize");
 * if (batch?.value !== 8) throw new Error(JSON.stringify(found.map((r) => [r.change, r.value])));
 * ```
 */
export function remedies(input: MemoryPlanInput): Remedy[] {
  const out: Remedy[] = [];
  const fits = (i: MemoryPlanInput) => planMemory(i);
  if (!input.gradientCheckpointing) {
    const plan = fits({ ...input, gradientCheckpointing: true });
    if (plan.fits) out.push({ change: "gradientCheckpointing", value: true, plan });
  }
  if (
    input.halfBaseAvailable && (input.baseDtype ?? "f32") === "f32" &&
    input.params.some((p) => !p.trainable && p.half)
  ) {
    const plan = fits({ ...input, baseDtype: "f16" });
    if (plan.fits) out.push({ change: "halfBase", value: "f16", plan });
  }
  const largest = (key: "batchSize" | "seqLen") => {
    // Memory grows with both: the largest value that fits, by bisection.
    let lo = 0, hi = input[key];
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (fits({ ...input, [key]: mid }).fits) lo = mid;
      else hi = mid;
    }
    if (lo > 0) out.push({ change: key, value: lo, plan: fits({ ...input, [key]: lo }) });
  };
  largest("batchSize");
  largest("seqLen");
  return out;
}

/**
 * Bytes as GiB or MiB with two decimals.
 *
 * @example
 * ```ts
 * import { formatBytes } from "./memory_plan.ts";
 * if (formatBytes(3 * 2 ** 29) !== "1.50 GiB" || formatBytes(2 ** 20) !== "1.00 MiB") throw new Error();
 * ```
 */
export function formatBytes(bytes: number): string {
  return bytes >= 2 ** 30
    ? `${(bytes / 2 ** 30).toFixed(2)} GiB`
    : `${(bytes / 2 ** 20).toFixed(2)} MiB`;
}

/**
 * One line: the plan's total and its sections, and the memory available.
 *
 * @example
 * ```ts
 * import { gpt2ParameterShapes, gptConfig } from "../mod.ts";
 * import { describePlan, planMemory, planParamsFromShapes, shapeOfConfig } from "./memory_plan.ts";
 * const config = gptConfig("tiny");
 * const line = describePlan(planMemory({
 *   shape: shapeOfConfig(config),
 *   params: planParamsFromShapes(gpt2ParameterShapes(config), true),
 *   batchSize: 1,
 *   seqLen: 8,
 *   gradientCheckpointing: false,
 *   limits: { maxBufferSize: 2 ** 31, maxBindingBytes: 2 ** 27, offsetAlignment: 256 },
 * }));
 * if (!line.startsWith("memory plan: ") || !line.includes("weights ")) throw new Error(line);
 * ```
 */
export function describePlan(plan: MemoryPlan): string {
  const parts = PLAN_SECTIONS.map((k) => `${k} ${formatBytes(plan.sections[k])}`);
  if (plan.textures > 0) {
    parts.push(`packed matmul operands ${formatBytes(plan.textures)} (estimated)`);
  }
  const i = plan.input, cp = i.gradientCheckpointing ? ", gradient checkpointing" : "";
  const avail = i.available
    ? `${formatBytes(i.available.bytes)} available (${i.available.source})`
    : "free memory not checked (WebGPU has no query for it; on a CPU adapter, --allow-sys=systemMemoryInfo)";
  return `memory plan: ${formatBytes(plan.total)} for batch ${i.batchSize} × ${i.seqLen}${cp} (${
    parts.join(", ")
  }); ${avail}`;
}

/** How the caller names each remedy's setting (e.g. `schedule.batch_size` in a run config). */
export type RemedyNames = Record<Remedy["change"], string>;

/**
 * The error of a run that does not fit: what does not, and what would.
 *
 * @example
 * ```ts
 * import { gpt2ParameterShapes, gptConfig } from "../mod.ts";
 * import { fitMemory, MemoryPlanError, planParamsFromShapes, shapeOfConfig } from "./memory_plan.ts";
 * const config = gptConfig("tiny");
 * const names = { gradientCheckpointing: "cp", halfBase: "dtype", batchSize: "B", seqLen: "T" };
 * try {
 *   fitMemory({
 *     shape: shapeOfConfig(config),
 *     params: planParamsFromShapes(gpt2ParameterShapes(config), true),
 *     batchSize: 64,
 *     seqLen: 64,
 *     gradientCheckpointing: true,
 *     limits: { maxBufferSize: 2 ** 31, maxBindingBytes: 2 ** 27, offsetAlignment: 256 },
 *     available: { bytes: 16 << 20, source: "a test's 16 MiB" },
 *   }, names);
 *   throw new Error("fitted");
 * } catch (e) {
 *   // Refused before anything is allocated, naming the batch size that fits.
 *   if (!(e instanceof MemoryPlanError) || !/B=\d+ \(/.test(e.message)) throw e;
 * }
 * ```
 */
export class MemoryPlanError extends RangeError {
  /** The plan that does not fit. */
  readonly plan: MemoryPlan;
  /** What would make it fit. */
  readonly remedies: Remedy[];
  /** Creates the error. */
  constructor(message: string, plan: MemoryPlan, remedies: Remedy[]) {
    super(message);
    this.name = "MemoryPlanError";
    this.plan = plan;
    this.remedies = remedies;
  }
}

/** What {@linkcode fitMemory} decided. */
export interface FitResult {
  /** The plan the run goes ahead with. */
  plan: MemoryPlan;
  /** True when gradient checkpointing was off and the run fits only with it: turned on. */
  checkpointingTurnedOn: boolean;
}

/**
 * Plans `input` and decides: it fits as it is; or it fits only with gradient checkpointing, which
 * is then turned on (`checkpointingTurnedOn`); or it does not fit, and a
 * {@linkcode MemoryPlanError} says why and which changes (named as `names` has them) would make it
 * fit, with each one's total.
 *
 * @example
 * ```ts
 * import { gpt2ParameterShapes, gptConfig } from "../mod.ts";
 * import { fitMemory, planMemory, planParamsFromShapes, shapeOfConfig } from "./memory_plan.ts";
 * const config = gptConfig("tiny");
 * const input = {
 *   shape: shapeOfConfig(config),
 *   params: planParamsFromShapes(gpt2ParameterShapes(config), true),
 *   batchSize: 8,
 *   seqLen: 64,
 *   gradientCheckpointing: false,
 *   limits: { maxBufferSize: 2 ** 31, maxBindingBytes: 2 ** 27, offsetAlignment: 256 },
 * };
 * const full = planMemory(input).total, lean = planMemory({ ...input, gradientCheckpointing: true }).total;
 * // Between the two: fits only with checkpointing, which is turned on.
 * const available = { bytes: (full + lean) / 2, source: "test" };
 * const fit = fitMemory({ ...input, available }, {
 *   gradientCheckpointing: "gradientCheckpointing",
 *   halfBase: "baseDtype",
 *   batchSize: "batchSize",
 *   seqLen: "seqLen",
 * });
 * if (!fit.checkpointingTurnedOn || !fit.plan.input.gradientCheckpointing) throw new Error();
 * ```
 */
export function fitMemory(input: MemoryPlanInput, names: RemedyNames): FitResult {
  const plan = planMemory(input);
  if (plan.fits) return { plan, checkpointingTurnedOn: false };
  const found = remedies(input);
  const cp = found.find((r) => r.change === "gradientCheckpointing");
  if (cp) return { plan: cp.plan, checkpointingTurnedOn: true };
  const why = plan.refused.length > 0
    ? plan.refused.join("; ")
    : `it needs ${formatBytes(plan.total)} (${
      PLAN_SECTIONS.map((k) => `${k} ${formatBytes(plan.sections[k])}`).join(", ")
    }${plan.textures > 0 ? `, packed matmul operands ${formatBytes(plan.textures)}` : ""}) and ${
      formatBytes(plan.input.available!.bytes)
    } is available (${plan.input.available!.source})`;
  const how = found.length === 0
    ? "no single change of batch size, sequence length, gradient checkpointing or base precision makes it fit"
    : `it would fit with ${
      found.map((r) => {
        const setting = r.change === "halfBase"
          ? `${names.halfBase}=f16 (or bf16)`
          : `${names[r.change]}=${r.value}`;
        return `${setting} (${formatBytes(r.plan.total)})`;
      }).join(", or ")
    }`;
  throw new MemoryPlanError(
    `Cannot train with batch ${input.batchSize} × ${input.seqLen} tokens${
      input.gradientCheckpointing ? " and gradient checkpointing" : ""
    }: ${why}; ${how}`,
    plan,
    found,
  );
}
