/**
 * A model parameter: its value, its gradient and how the optimizer treats it.
 *
 * @module
 */

import type { Tensor } from "../runtime/tensor.ts";

/** A named parameter: its value, its gradient (null while frozen) and how the optimizer treats it. */
export interface Param {
  /** Hugging Face name, e.g. `h.0.attn.c_attn.weight` or `model.layers.0.self_attn.q_proj.weight`. */
  readonly name: string;
  /** Shape as Hugging Face stores it (GPT-2's Conv1D weights are (in, out), `nn.Linear` (out, in)). */
  readonly shape: readonly number[];
  /** The value on the GPU. */
  value: Tensor;
  /** The gradient (accumulated `+=`; zeroed by the trainer), or null when frozen. */
  grad: Tensor | null;
  /** Whether weight decay applies (not to biases, norm parameters or embeddings). */
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
