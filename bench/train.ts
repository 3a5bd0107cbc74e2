/**
 * The training part of `deno task bench`: tokens/s of a real training step (forward, backward and
 * AdamW recorded into one batch, submitted once) for model A and model B under full fine-tuning and
 * PEFT methods, peak GPU bytes, dispatches and GPU waits per step, a per-kernel-family GPU profile
 * from timestamp queries, and a plain-TypeScript CPU baseline of the same step.
 *
 * @module
 */

import process from "node:process";
import {
  adapters,
  type Decoder,
  GPT,
  type GPTConfig,
  gptConfig,
  type Gpu,
  Llama,
  type LlamaConfig,
  llamaConfig,
  lora,
  prompt,
  Trainer,
} from "../mod.ts";
import type { Param } from "../models/param.ts";
import { replayProfile } from "./replay.ts";
import { gpt2Ref, type Weights } from "../tests/ref/gpt2.ts";

/**
 * A model the benchmark trains: GPT-2 models A and B (and tiny for quick runs), and LA, a
 * Llama-style model of model A's size.
 */
export type BenchModel = "A" | "B" | "tiny" | "LA";
/** The GPT-2 models (those the TF.js peer and the plain-TS baseline also run). */
export type GPT2BenchModel = Exclude<BenchModel, "LA">;
/** A fine-tuning method the benchmark runs. */
export type BenchMethod = "full" | "lora" | "adapters" | "prompt";

/** One measured (model, method) pair. */
export interface TrainRow {
  /**
   * Model A (d 128, 4 layers, 4 heads), model B (d 256, 6 layers, 8 heads), tiny (quick runs) or
   * LA (Llama-style, model A's size).
   */
  model: BenchModel;
  /** Fine-tuning method. */
  method: BenchMethod;
  /** Activation checkpointing on (the Trainer's `gradientCheckpointing`). */
  checkpoint: boolean;
  /** Trainable parameters. */
  trainable: number;
  /** Batch × context (real tokens per step; prompt tuning's virtual tokens are not counted). */
  batch: number;
  context: number;
  /** Timed steps (after one warm-up step). */
  steps: number;
  /** Real tokens per wall second over the timed steps (one GPU wait at the end included). */
  tokensPerSecond: number;
  /** Real tokens per CPU second of this process (lavapipe runs in-process): robust to load. */
  tokensPerCpuSecond: number;
  /** Wall milliseconds per step. */
  msPerStep: number;
  /** Peak bytes of GPU buffers held during the timed run (pool trimmed and peaks reset before). */
  peakBytes: number;
  /** Compute dispatches per step. */
  dispatchesPerStep: number;
  /** Command-buffer submits per step. */
  submitsPerStep: number;
  /** GPU waits per step (the trainer reads the losses once per run here: `logEvery` = steps). */
  waitsPerStep: number;
}

/** GPU time of one kernel family per training step. */
export interface ProfileRow {
  /** Kernel family (`matmul`, `attention`, …) or, with `byKernel`, the kernel name. */
  name: string;
  /** Dispatches per step. */
  dispatches: number;
  /** GPU milliseconds per step (sum over the family's dispatches). */
  ms: number;
  /** Share of the summed GPU time of the step. */
  share: number;
  /** Replay profiles: CPU milliseconds of this process per step (lavapipe runs in-process). */
  cpuMs?: number;
  /** Replay profiles of GEMM kernels: floating-point operations per step. */
  flop?: number;
}

/** The CPU baseline: the same training step (forward + backward) in plain TypeScript. */
export interface CpuBaseline {
  model: BenchModel;
  /** What was timed. */
  what: string;
  /** Sequences actually run (scaled to the benchmark's batch). */
  measuredBatch: number;
  /** Estimated real tokens per second of the whole step at the benchmark's batch. */
  tokensPerSecond: number;
}

/** The benchmark models' configurations (shared with the TF.js peer, bench/tfjs.ts). */
export const BENCH_CONFIGS: Record<GPT2BenchModel, () => GPTConfig> = {
  A: () => gptConfig("modelA"),
  B: () => gptConfig("modelB"),
  tiny: () => gptConfig("tiny"),
};
/**
 * Model LA: model A's size in the Llama family's shape: d 128, 4 layers, 4 query heads on 2
 * key/value heads, a gated MLP of 344 (three matrices of 128×344 hold as many weights as GPT-2's
 * two of 128×512, to within 1%), context 128, byte vocabulary, tied head.
 */
export const BENCH_LLAMA: () => LlamaConfig = () =>
  llamaConfig("llama-tiny", {
    hidden_size: 128,
    intermediate_size: 344,
    num_hidden_layers: 4,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    max_position_embeddings: 128,
    vocab_size: 256,
    tie_word_embeddings: true,
  });
/** LoRA of the benchmark: r 8 on `c_attn` (GPT-2) or on q, k and v (Llama-style: the same weights). */
export const BENCH_LORA = lora.validate({ r: 8, target_modules: ["c_attn"] });
/** LoRA of the benchmark on model LA: r 8 on `q_proj`, `k_proj`, `v_proj`. */
export const BENCH_LORA_LLAMA = lora.validate({
  r: 8,
  target_modules: ["q_proj", "k_proj", "v_proj"],
});
/** Adapters of the benchmark: the method's defaults. */
export const BENCH_ADAPTERS = adapters.validate({});
/** Virtual tokens of the prompt-tuning benchmark. */
export const BENCH_VIRTUAL = 20;

/** Deterministic byte-level data: ids and labels for a (B,T) batch. */
export function benchData(B: number, T: number, V: number): number[] {
  return Array.from({ length: B * T }, (_, i) => (i * 7 + Math.floor(i / T) * 13) % V);
}

/** A model of `which` with `method` applied; returns the model and the trainable parameters. */
async function build(
  gpu: Gpu,
  which: BenchModel,
  method: BenchMethod,
): Promise<{ model: Decoder; params: Param[] | undefined; nVirtual: number }> {
  const model = which === "LA"
    ? await Llama.create(gpu, BENCH_LLAMA(), { seed: 1 })
    : await GPT.create(gpu, BENCH_CONFIGS[which](), { seed: 1 });
  switch (method) {
    case "full":
      return { model, params: undefined, nVirtual: 0 };
    case "lora":
      return {
        model,
        params: (await lora.apply(model, which === "LA" ? BENCH_LORA_LLAMA : BENCH_LORA, 1))
          .trainable(),
        nVirtual: 0,
      };
    case "adapters":
      return {
        model,
        params: (await adapters.apply(model, BENCH_ADAPTERS, 1)).trainable(),
        nVirtual: 0,
      };
    case "prompt": {
      const n = BENCH_VIRTUAL;
      const inst = await prompt.apply(model, prompt.validate({ num_virtual_tokens: n }), 1);
      return { model, params: inst.trainable(), nVirtual: n };
    }
  }
}

/** Shape of the benchmark batch for a model: batch 16 × its context (less the virtual tokens). */
function shape(which: BenchModel, nVirtual: number): { B: number; T: number } {
  const context = which === "LA"
    ? BENCH_LLAMA().max_position_embeddings
    : BENCH_CONFIGS[which]().n_positions;
  return { B: which === "tiny" ? 2 : 16, T: context - nVirtual };
}

function source(B: number, T: number, V: number) {
  const ids = benchData(B, T, V);
  return {
    batchesPerEpoch: 1,
    batch: () => ({ ids, labels: ids, batchSize: B, seqLen: T }),
  };
}

/** Options of {@linkcode benchTrain} and {@linkcode profileTrain}. */
export interface BenchTrainOptions {
  /** Train with activation checkpointing (the Trainer's `gradientCheckpointing`). Default false. */
  checkpoint?: boolean;
}

/**
 * Trains `which` with `method`: one warm-up step, then `steps` timed steps through the
 * {@linkcode Trainer} (losses read once, at the end).
 */
export async function benchTrain(
  gpu: Gpu,
  which: BenchModel,
  method: BenchMethod,
  steps: number,
  options: BenchTrainOptions = {},
): Promise<TrainRow> {
  gpu.trimMemory();
  const { model, params, nVirtual } = await build(gpu, which, method);
  const { B, T } = shape(which, nVirtual);
  const src = source(B, T, model.shape.V);
  const checkpoint = options.checkpoint ?? false;
  const opts = { lr: 1e-3, warmupSteps: 0, gradientCheckpointing: checkpoint };
  const warm = await Trainer.create(model, src, { ...opts, steps: 1, logEvery: 1 }, { params });
  await warm.run();
  warm.release();
  gpu.trimMemory();
  const timed = await Trainer.create(model, src, { ...opts, steps, logEvery: steps }, { params });
  const before = { ...gpu.stats };
  const c0 = process.cpuUsage();
  const r = await timed.run(); // resets the peak accounting at its start
  const cpu = process.cpuUsage(c0);
  const peakBytes = gpu.memory.peakReserved;
  const after = gpu.stats;
  const realTokens = steps * B * T;
  const row: TrainRow = {
    model: which,
    method,
    checkpoint,
    trainable: model.countParameters().trainable,
    batch: B,
    context: T,
    steps,
    tokensPerSecond: realTokens / r.seconds,
    tokensPerCpuSecond: realTokens / ((cpu.user + cpu.system) / 1e6),
    msPerStep: (r.seconds * 1000) / steps,
    peakBytes,
    dispatchesPerStep: (after.dispatches - before.dispatches) / steps,
    submitsPerStep: (after.submits - before.submits) / steps,
    waitsPerStep: (after.waits - before.waits) / steps,
  };
  timed.release();
  model.release();
  return row;
}

/**
 * GPU time per kernel family (or per kernel with `byKernel`) of one training step of `which` with
 * `method`, from timestamp queries around every dispatch (`gpu.profile`), averaged over `steps`
 * steps after a warm-up step. Also returns the wall milliseconds of a profiled step, which include
 * the CPU's encoding and the per-pass overhead of profiling.
 */
export async function profileTrain(
  gpu: Gpu,
  which: BenchModel,
  method: BenchMethod,
  steps: number,
  options: BenchTrainOptions & { replay?: boolean } = {},
): Promise<
  {
    families: ProfileRow[];
    kernels: ProfileRow[];
    gpuMs: number;
    wallMs: number;
    mode: "timestamps" | "replay";
  }
> {
  const mode = options.replay ? "replay" : "timestamps";
  if (mode === "timestamps" && !gpu.canProfile) {
    throw new Error(
      `Cannot profile: the adapter "${gpu.adapterName}" has no timestamp-query feature (use the replay profile)`,
    );
  }
  const { model, params } = await build(gpu, which, method);
  const { B, T } = shape(which, model.virtual?.n ?? 0);
  const src = source(B, T, model.shape.V);
  const opts = { lr: 1e-3, warmupSteps: 0, gradientCheckpointing: options.checkpoint ?? false };
  const warm = await Trainer.create(model, src, { ...opts, steps: 1, logEvery: 1 }, { params });
  await warm.run();
  warm.release();
  const timed = await Trainer.create(model, src, { ...opts, steps, logEvery: steps }, { params });
  // One entry per dispatch (timestamps) or per kernel with its dispatch count (replay).
  let entries: { kernel: string; ms: number; cpuMs?: number; flop?: number; dispatches?: number }[];
  let wallMs;
  try {
    if (mode === "timestamps") {
      gpu.profile = true;
      const t0 = performance.now();
      await timed.run();
      wallMs = (performance.now() - t0) / steps;
      entries = await gpu.readProfile();
    } else {
      gpu.recorder = [];
      const t0 = performance.now();
      await timed.run();
      wallMs = (performance.now() - t0) / steps;
      const recorded = gpu.recorder;
      gpu.recorder = null;
      // Replayed while the step's tensors are still alive.
      entries = (await replayProfile(gpu, recorded)).map((r) => ({ ...r, kernel: r.name }));
    }
  } finally {
    gpu.profile = false;
    gpu.recorder = null;
    timed.release();
    model.release();
  }
  const group = (key: (name: string) => string): ProfileRow[] => {
    const m = new Map<string, { n: number; ms: number; cpuMs: number; flop: number }>();
    for (const e of entries) {
      const k = key(e.kernel);
      const g = m.get(k) ?? { n: 0, ms: 0, cpuMs: 0, flop: 0 };
      g.n += e.dispatches ?? 1;
      g.ms += e.ms;
      g.cpuMs += e.cpuMs ?? 0;
      g.flop += e.flop ?? NaN;
      m.set(k, g);
    }
    const total = [...m.values()].reduce((a, g) => a + g.ms, 0);
    return [...m].map(([name, g]) => ({
      name,
      dispatches: g.n / steps,
      ms: g.ms / steps,
      share: g.ms / total,
      ...(mode === "replay" ? { cpuMs: g.cpuMs / steps } : {}),
      ...(Number.isFinite(g.flop) ? { flop: g.flop / steps } : {}),
    })).sort((a, b) => b.ms - a.ms);
  };
  const families = group((k) => k.split(".")[0]);
  const kernels = group((k) => k);
  const gpuMs = families.reduce((a, f) => a + f.ms, 0);
  return { families, kernels, gpuMs, wallMs, mode };
}

/**
 * The same training step as plain TypeScript: the float64 reference of the whole GPT-2 forward and
 * backward (tests/ref/gpt2.ts, plain loops over Float64Array, no AdamW) on `measuredBatch`
 * sequences of the model's full context, timed best of `trials`, scaled linearly to batch 16
 * (every part of the step is linear in the batch at a fixed context). A float32 version of the same
 * loops would be somewhat faster; the reference is what the repository has.
 */
export function cpuBaseline(
  which: GPT2BenchModel,
  measuredBatch: number,
  trials: number,
): CpuBaseline {
  const cfg = BENCH_CONFIGS[which]();
  const { B: fullB, T } = shape(which, 0);
  const B = measuredBatch;
  const w: Weights = new Map();
  let seed = 1;
  const rand = () => {
    seed = (seed * 1664525 + 1013904223) >>> 0;
    return (seed / 2 ** 32 - 0.5) * 0.04;
  };
  const C = cfg.n_embd, F = 4 * C;
  const shapes: [string, number][] = [
    ["wte.weight", cfg.vocab_size * C],
    [
      "wpe.weight",
      cfg.n_positions * C,
    ],
    ["ln_f.weight", C],
    ["ln_f.bias", C],
  ];
  for (let l = 0; l < cfg.n_layer; l++) {
    const h = `h.${l}.`;
    shapes.push(
      [h + "ln_1.weight", C],
      [h + "ln_1.bias", C],
      [h + "attn.c_attn.weight", C * 3 * C],
      [h + "attn.c_attn.bias", 3 * C],
      [h + "attn.c_proj.weight", C * C],
      [h + "attn.c_proj.bias", C],
      [h + "ln_2.weight", C],
      [h + "ln_2.bias", C],
      [h + "mlp.c_fc.weight", C * F],
      [h + "mlp.c_fc.bias", F],
      [h + "mlp.c_proj.weight", F * C],
      [h + "mlp.c_proj.bias", C],
    );
  }
  for (const [name, n] of shapes) {
    const a = new Float64Array(n);
    if (/ln_\d\.weight$|ln_f\.weight$/.test(name)) a.fill(1);
    else if (!name.endsWith(".bias")) { for (let i = 0; i < n; i++) a[i] = rand(); }
    w.set(name, a);
  }
  const ids = benchData(B, T, cfg.vocab_size);
  let best = Infinity;
  for (let t = 0; t < trials; t++) {
    const t0 = performance.now();
    gpt2Ref(cfg, w, ids, ids, B, T, true);
    best = Math.min(best, performance.now() - t0);
  }
  const stepMs = best * (fullB / B);
  return {
    model: which,
    what:
      `float64 reference forward+backward (tests/ref/gpt2.ts), ${B}×${T} tokens, best of ${trials}, scaled ×${
        fullB / B
      }`,
    measuredBatch: B,
    tokensPerSecond: (fullB * T) / (stepMs / 1000),
  };
}
