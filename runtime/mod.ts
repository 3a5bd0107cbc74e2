/**
 * The GPU runtime: device, errors, buffer pool, tensors, batched dispatch, seeded RNG.
 *
 * @module
 */
export {
  Batch,
  type Binding,
  type BindingKind,
  Gpu,
  GpuError,
  type GpuOptions,
  type GpuStats,
  type Kernel,
  type KernelSpec,
  type ProfileEntry,
  type RecordedDispatch,
  type RowChunk,
  type RowChunkOptions,
  type TextureCopy,
} from "./gpu.ts";
export { BufferPool, type PoolStats } from "./pool.ts";
export {
  decodeHalf,
  encodeHalf,
  halfBytes,
  type HalfDtype,
  Tensor,
  type TensorDtype,
} from "./tensor.ts";
export { counterHash, mix32, Rng, type RngState } from "./rng.ts";
