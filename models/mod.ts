/**
 * Models: GPT-2 configuration, safetensors I/O, Hugging Face GPT-2 checkpoints and tokenizers.
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
export {
  byteLevelAlphabet,
  ByteTokenizer,
  HuggingFaceTokenizer,
  TiktokenTokenizer,
  type Tokenizer,
} from "./tokenizer.ts";
export {
  type FinishReason,
  generate,
  type GenerateOptions,
  type GenerateResult,
  sampleToken,
  type SamplingOptions,
} from "./generate.ts";
export {
  Activations,
  Block,
  type BlockActs,
  type BranchAdapter,
  CausalSelfAttention,
  type Ctx,
  GPT,
  type GPTOptions,
  type GradScratch,
  type Inputs,
  isTrainable,
  Kernels,
  type KernelSet,
  LayerNormModule,
  Linear,
  type LinearLike,
  MLP,
  type Param,
  type VirtualTokens,
} from "./gpt.ts";
