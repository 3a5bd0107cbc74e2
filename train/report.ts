/**
 * What a fine-tuning setup costs: parameter counts as Hugging Face PEFT's
 * `print_trainable_parameters` prints them, and GPU memory split into weights, gradients,
 * optimizer state and activations, from the runtime's accounting.
 *
 * @module
 */

import type { Decoder } from "../models/decoder.ts";
import type { Optimizer } from "./optimizer.ts";

/** Trainable and total parameters. */
export interface ParameterReport {
  /** Parameters with a gradient. */
  trainable: number;
  /** Every parameter (base and added). */
  total: number;
  /** 100 · trainable / total. */
  percent: number;
  /** `trainable params: 16,384 || all params: 858,880 || trainable%: 1.9076`, as PEFT prints it. */
  line: string;
}

/**
 * Parameter counts of a model (with any PEFT method applied).
 *
 * @example
 * ```ts
 * import { GPT, gptConfig, Gpu, parameterReport } from "../mod.ts";
 * const model = await GPT.create(await Gpu.get(), gptConfig("tiny"), { seed: 1 });
 * if (!parameterReport(model).line.endsWith("trainable%: 100.0000")) throw new Error();
 * model.release();
 * ```
 */
export function parameterReport(model: Decoder): ParameterReport {
  const { trainable, total } = model.countParameters();
  const percent = (100 * trainable) / total;
  return {
    trainable,
    total,
    percent,
    line: `trainable params: ${trainable.toLocaleString("en-US")} || all params: ${
      total.toLocaleString("en-US")
    } || trainable%: ${percent.toFixed(4)}`,
  };
}

/** GPU bytes by role. */
export interface MemoryReport {
  /** Parameter values (base and added) and element masks. */
  weights: number;
  /** Gradient buffers (trainable parameters only). */
  gradients: number;
  /** AdamW moments (trainable parameters only). */
  optimizer: number;
  /** The rest of the peak: activations, their gradients and scratch. */
  activations: number;
  /** Peak bytes the buffer pool held (`gpu.memory.peakReserved`). */
  peak: number;
}

/**
 * Splits the peak GPU memory of a training run into weights, gradients, optimizer state and
 * activations. Call `gpu.trimMemory(); gpu.resetPeakMemory()` before the run so that `peak` is the
 * run's own.
 *
 * @example
 * ```ts
 * import { GPT, gptConfig, Gpu, memoryReport, Optimizer } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const model = await GPT.create(gpu, gptConfig("tiny"), { seed: 1 });
 * const opt = await Optimizer.create(gpu, model.parameters());
 * const m = memoryReport(model, opt, gpu.memory.peakReserved);
 * if (m.optimizer !== 2 * m.gradients) throw new Error("two moments per gradient");
 * opt.release();
 * model.release();
 * ```
 */
export function memoryReport(model: Decoder, optimizer: Optimizer, peak: number): MemoryReport {
  const ps = model.parameters();
  const weights = ps.reduce((a, p) => a + p.value.byteLength + (p.gradMask?.byteLength ?? 0), 0);
  const gradients = ps.reduce((a, p) => a + (p.grad?.byteLength ?? 0), 0);
  const opt = optimizer.stateBytes;
  return {
    weights,
    gradients,
    optimizer: opt,
    activations: Math.max(0, peak - weights - gradients - opt),
    peak,
  };
}
