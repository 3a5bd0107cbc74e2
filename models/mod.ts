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
  Activations,
  Block,
  CausalSelfAttention,
  type Ctx,
  GPT,
  type GPTOptions,
  type Inputs,
  isTrainable,
  Kernels,
  LayerNormModule,
  Linear,
  MLP,
  type Param,
} from "./gpt.ts";
