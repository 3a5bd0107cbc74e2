/**
 * Exporting a fine-tuned model as a plain Hugging Face checkpoint of its family (GPT-2, Llama,
 * Qwen2): mergeable methods (LoRA, IA³) are folded into the base weights for the export and
 * unfolded afterwards; methods that train base weights in place (full, selective, BitFit) are
 * exported as they are. Methods that add modules (adapters) or virtual tokens (prompt, prefix
 * tuning) have no plain-checkpoint equivalent and are refused with a clear error: save their
 * adapter files instead.
 *
 * @module
 */

import { saveModelCheckpoint } from "../models/checkpoint.ts";
import type { Decoder } from "../models/decoder.ts";
import type { PeftInstance } from "./method.ts";

/**
 * Writes `dir/config.json` + `dir/model.safetensors` holding the base model with `inst` merged in
 * (atomically, file by file), in the layout of the model's family. The model is left exactly as
 * it was (unmerged, bit for bit).
 *
 * @example
 * ```ts
 * import { GPT, gptConfig, Gpu, loadHFCheckpoint, lora, saveMergedCheckpoint } from "../mod.ts";
 * const model = await GPT.create(await Gpu.get(), gptConfig("tiny"), { seed: 1, trainable: false });
 * const inst = await lora.apply(model, lora.validate({ r: 2 }), 0);
 * const dir = await Deno.makeTempDir();
 * await saveMergedCheckpoint(model, inst, dir);
 * const back = await loadHFCheckpoint(dir);
 * if (back.config.n_embd !== 32) throw new Error();
 * await Deno.remove(dir, { recursive: true });
 * model.release();
 * ```
 */
export async function saveMergedCheckpoint(
  model: Decoder,
  inst: PeftInstance,
  dir: string,
): Promise<void> {
  const inPlace = inst.added.length === 0 && model.virtual === null;
  if (!inPlace && !inst.merge) {
    throw new Error(
      `Cannot export a merged model for PEFT method "${inst.method}": it adds modules or virtual tokens that a plain checkpoint cannot hold; save its adapter files instead`,
    );
  }
  // A half-precision base (LoRA and IA³ refuse to merge into one anyway) would be exported with
  // its rounding, as if it were the original checkpoint.
  if (model.baseDtype !== "f32") {
    throw new Error(
      `Cannot export a merged model: the frozen base is stored in ${model.baseDtype} (baseDtype), so the checkpoint would carry its rounding; load the base with baseDtype "f32", load the adapter, and export that`,
    );
  }
  if (inPlace) {
    await saveModelCheckpoint(dir, model.config, await model.exportWeights());
    return;
  }
  // Unmerging subtracts what merging added, which is not exact in f32: keep the original values
  // and write them back, so exporting leaves the model bit-identical.
  const original = await model.exportWeights();
  await inst.merge!();
  try {
    await saveModelCheckpoint(dir, model.config, await model.exportWeights());
  } finally {
    await inst.unmerge!();
    for (const [name, t] of original) model.params.get(name)!.value.write(t.data);
  }
}
