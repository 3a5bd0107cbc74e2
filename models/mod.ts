/**
 * Models: the GPT-2 and Llama-family decoders built from one set of modules, their configs and
 * Hugging Face checkpoints, safetensors I/O, tokenizers, chat templates and generation.
 *
 * Read the decoder top to bottom, one module a file, each with its forward and backward side by
 * side: `param.ts` (a parameter), `context.ts` (kernels and what a pass carries), `linear.ts`,
 * `norms.ts` (LayerNorm, RMSNorm), `attention.ts` (GPT-2's and the Llama family's), `mlp.ts` (GELU
 * and gated), `block.ts`, `embeddings.ts` (embedding and head), `activations.ts`, `scoring.ts`
 * (which label positions the loss scores), `decoder.ts` (forward, loss, backward), then the two
 * families: `gpt.ts` and `llama.ts`. Configs and files: `config.ts`, `llama_config.ts`,
 * `checkpoint.ts`, `llama_checkpoint.ts`, `safetensors.ts`; text: `tokenizer.ts`,
 * `chat_template.ts`; `generate.ts` samples with or without the KV cache.
 *
 * @module
 */
export {
  configFromHF,
  configToHF,
  GPT2_SMALL,
  type GPTConfig,
  gptConfig,
  headDim,
  innerSize,
  type PresetName,
  PRESETS,
  validateConfig,
} from "./config.ts";
export {
  decodeBF16,
  decodeF16,
  DTYPE_SIZES,
  encodeBF16,
  encodeF16,
  FLOAT_DTYPES,
  parseSafetensors,
  readSafetensors,
  Safetensors,
  type SafetensorsEntry,
  type SafetensorsWriteOptions,
  serializeSafetensors,
  type TensorData,
  type WriteDtype,
  writeFileAtomic,
  writeSafetensors,
} from "./safetensors.ts";
export {
  type Checkpoint,
  type CheckpointSource,
  gpt2ParameterShapes,
  gpt2TensorsFromSafetensors,
  HF_CONFIG_FILE,
  HF_WEIGHTS_FILE,
  loadHFCheckpoint,
  parseHFCheckpoint,
  type SaveCheckpointOptions,
  saveHFCheckpoint,
  serializeHFCheckpoint,
} from "./checkpoint.ts";
export { type ModelConfig, type ModelFamily, modelFamilyOf, readModelConfig } from "./config.ts";
export {
  LLAMA_PRESETS,
  type LlamaConfig,
  llamaConfig,
  llamaConfigFromHF,
  llamaConfigToHF,
  type LlamaModelType,
  type LlamaPresetName,
  projectionBiases,
  validateLlamaConfig,
} from "./llama_config.ts";
export {
  llamaParameterShapes,
  llamaTensorsFromSafetensors,
  serializeLlamaCheckpoint,
} from "./llama_checkpoint.ts";
export {
  loadModelCheckpoint,
  type ModelCheckpoint,
  parseModelCheckpoint,
  saveModelCheckpoint,
} from "./checkpoint.ts";
export {
  byteLevelAlphabet,
  ByteTokenizer,
  HuggingFaceTokenizer,
  TiktokenTokenizer,
  type Tokenizer,
} from "./tokenizer.ts";
export {
  ChatTemplate,
  type ChatTemplateMessage,
  type ChatTemplateRenderOptions,
} from "./chat_template.ts";
export {
  type FinishReason,
  generate,
  type GenerateOptions,
  type GenerateResult,
  sampleToken,
  type SamplingOptions,
} from "./generate.ts";
export { isTrainable, type Param, requireF32 } from "./param.ts";
export {
  type BaseDtype,
  defaultBaseDtype,
  HALF_BASE_METHODS,
  HALF_BASE_MIN_PARAMETERS,
  storedInBaseDtype,
} from "./base_dtype.ts";
export { type Ctx, Kernels, type KernelSet, type KvCache } from "./context.ts";
export { Linear, type LinearField, type LinearLike } from "./linear.ts";
export { LayerNormModule, type Norm, RMSNormModule } from "./norms.ts";
export {
  type AttentionModule,
  CausalSelfAttention,
  LlamaAttention,
  type VirtualTokens,
} from "./attention.ts";
export { GatedMLP, MLP, type MLPModule } from "./mlp.ts";
export { Block, type BranchAdapter } from "./block.ts";
export { Embeddings, LMHead } from "./embeddings.ts";
export {
  type ActivationOptions,
  Activations,
  type BlockActs,
  type DecoderShape,
  type GradScratch,
  qkvWidth,
} from "./activations.ts";
export {
  countScoredLabels,
  firstScoredLabel,
  PLAIN_SCORING,
  predictorPosition,
  type ScoringRule,
  shiftLabels,
} from "./scoring.ts";
export {
  Decoder,
  type DecoderOptions,
  type ForwardOptions,
  type Inputs,
  type LinearSlot,
} from "./decoder.ts";
export { GPT, type GPTBlock, type GPTOptions } from "./gpt.ts";
export { Llama, type LlamaBlock } from "./llama.ts";
