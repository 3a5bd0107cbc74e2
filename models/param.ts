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
  /**
   * The value on the GPU: f32, or packed f16/bf16 halves for a frozen base weight of a model
   * created with a half `baseDtype` (such a parameter is never trained; see {@linkcode requireF32}).
   */
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

/**
 * Throws unless `p` is stored in f32: a base weight stored in half precision (see
 * `DecoderOptions.baseDtype`) can be read but neither trained nor written (a merge would round the
 * merged weight to the half grid and unmerging would not give the base back). `action` completes
 * "Cannot …" in the error, which names the parameter and its dtype.
 *
 * @example
 * ```ts
 * import { GPT, gptConfig, Gpu, requireF32 } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const model = await GPT.create(gpu, gptConfig("tiny"), { trainable: false, baseDtype: "bf16" });
 * requireF32(model.params.get("ln_f.weight")!, "scale ln_f"); // norms stay f32
 * let message = "";
 * try {
 *   requireF32(model.wte, `merge into "${model.wte.name}"`);
 * } catch (e) {
 *   message = (e as Error).message;
 * }
 * if (!message.startsWith('Cannot merge into "wte.weight": it is stored in bf16')) throw new Error(message);
 * model.release();
 * ```
 */
export function requireF32(p: Param, action: string): void {
  if (p.value.dtype === "f32") return;
  throw new RangeError(
    `Cannot ${action}: it is stored in ${p.value.dtype} (baseDtype); this needs the base in f32 (create or load the model with baseDtype "f32")`,
  );
}
