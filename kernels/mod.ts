/**
 * WGSL kernels, forward and backward, each behind a thin TypeScript wrapper.
 *
 * @module
 */
export { AdamW, type AdamWHyper, type AdamWTensors } from "./adamw.ts";
export {
  Attention,
  type AttentionDropout,
  type AttentionOptions,
  type AttentionVariant,
} from "./attention.ts";
export { type ColumnBlock, Columns } from "./columns.ts";
export { checkLoops, grid, LOOP_CAP, MAX_GROUPS, Params } from "./common.ts";
export {
  CrossEntropy,
  type CrossEntropyOptions,
  type CrossEntropyVariant,
  IGNORE_INDEX,
  type VocabChunk,
} from "./crossentropy.ts";
export { DecodeAttention } from "./decode.ts";
export { Dropout } from "./dropout.ts";
export { Embedding, EmbeddingIndex } from "./embedding.ts";
export { Gelu } from "./gelu.ts";
export { GradNorm, type MaskedGrad } from "./gradnorm.ts";
export {
  HEAD_CHUNK_BYTES,
  HeadLoss,
  type HeadLossGrads,
  type HeadLossTensors,
} from "./headloss.ts";
export { LayerNorm, type LayerNormOptions, type LayerNormVariant } from "./layernorm.ts";
export {
  type GemmSpec,
  type LinearGrads,
  Matmul,
  type MatmulOptions,
  type MatmulVariant,
  type TiedGrads,
} from "./matmul.ts";
export { DoraKernels, type DoraShape } from "./dora.ts";
export { ADAPTER_ACTIVATIONS, type AdapterActivation, PeftKernels, type RowsSpec } from "./peft.ts";
export { Residual } from "./residual.ts";
export { RMSNorm, type RMSNormOptions, type RMSNormVariant } from "./rmsnorm.ts";
export { Rotary, type RowStarts } from "./rope.ts";
export { SwiGLU } from "./swiglu.ts";
