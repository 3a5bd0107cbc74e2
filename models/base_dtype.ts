/**
 * Frozen base weights stored in half precision: which parameters may be, and when it is on by
 * default. Storing the base in f16 or bf16 halves its bytes; compute and accumulation stay f32
 * (the kernels widen each half exactly as they read it, runtime/tensor.ts), so the only cost is the
 * rounding of each weight once (bench/RESULTS.md measures it).
 *
 * @module
 */

import type { TensorDtype } from "../runtime/tensor.ts";

/** How a model stores its frozen base weights: f32, or packed f16 / bf16 halves. */
export type BaseDtype = TensorDtype;

/**
 * PEFT methods (by registry name) that train no base weight matrix: LoRA, IA³, prompt and prefix
 * tuning and bottleneck adapters add their own f32 parameters; BitFit trains biases, which stay f32.
 * Full and selective fine-tuning train base matrices, so their base stays f32.
 */
export const HALF_BASE_METHODS: readonly string[] = [
  "lora",
  "ia3",
  "prompt",
  "prefix",
  "adapters",
  "bitfit",
];

/** Models above this many parameters store their base in half precision by default (see below). */
export const HALF_BASE_MIN_PARAMETERS = 100e6;

/**
 * The base dtype a run gets unless it asks for one: `"f16"` for a method of
 * {@linkcode HALF_BASE_METHODS} on a model of more than 100M parameters, `"f32"` otherwise (full
 * and selective fine-tuning, small models, unknown methods). f16 rather than bf16: its 11
 * significant bits against 8 give about 8× less rounding of the weights (bench/RESULTS.md), and
 * bf16 checkpoints' values are exact in f16 within its range; a weight beyond ±65,504 is refused at
 * load, naming it, with the advice to ask for bf16.
 *
 * @example
 * ```ts
 * import { defaultBaseDtype } from "../mod.ts";
 * if (defaultBaseDtype("lora", 124_439_808) !== "f16") throw new Error("GPT-2 small LoRA: f16 base");
 * if (defaultBaseDtype("full", 124_439_808) !== "f32") throw new Error("full fine-tuning: f32");
 * if (defaultBaseDtype("lora", 7_000_000) !== "f32") throw new Error("small models: f32");
 * ```
 */
export function defaultBaseDtype(method: string, parameterCount: number): BaseDtype {
  return HALF_BASE_METHODS.includes(method) && parameterCount > HALF_BASE_MIN_PARAMETERS
    ? "f16"
    : "f32";
}

/**
 * Whether a base parameter is stored in the model's base dtype: the 2-D weights read by the
 * matmuls and the token lookup (linear layers, the token embedding, an untied `lm_head`). Norm
 * weights, biases and GPT-2's position table (`wpe`, a few MB, read by row copies) stay f32.
 */
export function storedInBaseDtype(name: string, shape: readonly number[]): boolean {
  return shape.length === 2 && name !== "wpe.weight";
}
