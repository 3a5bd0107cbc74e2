/**
 * The GPU runtime: one adapter and one device, every WebGPU error turned into a thrown error that
 * names the kernel, a pipeline cache, a buffer pool with accounting, batched dispatch and readback.
 *
 * WebGPU errors are silent unless captured (see ../shared/DESIGN.md), so this module captures them in
 * three places: shader compilation (`getCompilationInfo`, with line and column), pipeline creation
 * (a validation error scope), and every submit (validation and out-of-memory scopes, plus the
 * device's `uncapturederror` event as a last net). A lost device is reported on stderr and makes
 * every later call throw.
 *
 * @module
 */

import { BufferPool, type PoolStats } from "./pool.ts";
import { decodeHalf, halfBytes, type HalfDtype, Tensor, type TensorDtype } from "./tensor.ts";

/**
 * How a kernel binding is declared: a uniform parameter block, a read-only or a writable storage
 * buffer, a sampled float texture (`texture_2d<f32>`, unfilterable, read with `textureLoad`) or a
 * write-only storage texture (`texture_storage_2d<rgba32float, write>`). Texture kinds take a
 * `{ texture: GPUTextureView }` binding.
 */
export type BindingKind = "uniform" | "read" | "write" | "texture" | "storage-texture";

/** A compute kernel: one WGSL entry point with an explicit bind-group layout. */
export interface KernelSpec {
  /** Name used in every error message and as the pipeline label, e.g. `"matmul.forward"`. */
  name: string;
  /** WGSL source. */
  code: string;
  /** Entry point in `code`. */
  entry: string;
  /**
   * Binding kinds in binding order (0, 1, 2, …); `null` leaves a binding number out (for an entry
   * point that does not use a variable its file declares).
   */
  bindings: readonly (BindingKind | null)[];
  /** Source file for error messages, e.g. `"kernels/matmul.wgsl"`. */
  file?: string;
  /** Pipeline-overridable constants (`override` declarations in WGSL). */
  constants?: Record<string, number>;
  /**
   * Storage bindings (by position in `Batch.dispatch`'s `bindings`) that read a tensor stored as
   * packed halves, and which dtype: such a binding takes only a tensor of that dtype, and every
   * other binding only 4-byte tensors (a packed tensor read as f32 would be garbage).
   */
  packed?: Readonly<Record<number, HalfDtype>>;
}

/** A compiled kernel, ready to dispatch. Obtain with {@linkcode Gpu.kernel}. */
export interface Kernel {
  /** The name from its {@linkcode KernelSpec}. */
  readonly name: string;
  /** The compiled pipeline. */
  readonly pipeline: GPUComputePipeline;
  /** The explicit bind-group layout. */
  readonly layout: GPUBindGroupLayout;
  /** Binding kinds by binding number. */
  readonly bindings: readonly (BindingKind | null)[];
  /** Storage bindings that read packed halves (see {@linkcode KernelSpec.packed}). */
  readonly packed?: Readonly<Record<number, HalfDtype>>;
}

/** A buffer range (or, for the texture kinds of {@linkcode BindingKind}, a texture view) bound to a kernel. */
export type Binding =
  | Tensor
  | { buffer: GPUBuffer; offset?: number; size?: number }
  | { texture: GPUTextureView };

/** Counters that benchmarks report per training step. */
export interface GpuStats {
  /** Compute dispatches encoded since creation. */
  dispatches: number;
  /** Command buffers submitted. */
  submits: number;
  /** Times the CPU waited for the GPU (readbacks and explicit syncs); each costs ~11 ms here. */
  waits: number;
}

/** The GPU time of one dispatch, from timestamp queries (see {@linkcode Gpu.profile}). */
export interface ProfileEntry {
  /** The kernel's name, e.g. `"matmul.forward"`. */
  kernel: string;
  /** Milliseconds between the start and the end of its compute pass on the GPU's clock. */
  ms: number;
}

/**
 * One dispatch as recorded by {@linkcode Gpu.recorder}: enough to dispatch it again with
 * {@linkcode Batch.dispatch} (while its tensors are alive).
 */
export interface RecordedDispatch {
  /** The compiled kernel. */
  kernel: Kernel;
  /** Storage bindings in binding order. */
  bindings: readonly Binding[];
  /** The uniform parameters, if the kernel takes any. */
  params: ArrayBuffer | undefined;
  /** Workgroup counts. */
  groups: [number, number, number];
}

/** Options for {@linkcode Gpu.create}. */
export interface GpuOptions {
  /** Passed to `requestAdapter`; default `"high-performance"`. */
  powerPreference?: GPUPowerPreference;
  /** Ask for `shader-f16` when the adapter has it (default true). */
  f16?: boolean;
  /**
   * A storage-binding limit below the device's own (`maxStorageBufferBindingSize`), a positive
   * multiple of 4 bytes: {@linkcode Gpu.maxBindingBytes} reports it and every dispatch is held to
   * it. Tests force a small one so that the chunked paths for tensors over the limit run on small
   * models. Default: the device's limit.
   */
  maxBindingBytes?: number;
}

/** A range of rows, from {@linkcode Gpu.rowChunks}. */
export interface RowChunk {
  /** First row. */
  start: number;
  /** Rows in the chunk. */
  count: number;
}

/** Options of {@linkcode Gpu.rowChunks}. */
export interface RowChunkOptions {
  /** At most this many rows per chunk (default: as many as fit one binding). */
  maxRows?: number;
  /** Every chunk but the last holds a multiple of this many rows (default 1). */
  multiple?: number;
  /** Bytes of one element: 4 (default), or 2 for a tensor of packed halves. */
  elementBytes?: 2 | 4;
}

/**
 * The error thrown for any WebGPU failure; `kernel` names what was running.
 *
 * @example
 * ```ts
 * import { Gpu, GpuError } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const spec = {
 *   name: "broken.forward",
 *   file: "kernels/broken.wgsl",
 *   code: "@compute @workgroup_size(1) fn main() { let x: u32 = 1.5; }",
 *   entry: "main",
 *   bindings: [],
 * };
 * try {
 *   await gpu.kernel(spec);
 *   throw new Error("bad WGSL must not compile");
 * } catch (e) {
 *   // Compile errors name the kernel and point at file:line:column.
 *   if (!(e instanceof GpuError) || e.kernel !== "broken.forward") throw e;
 *   if (!e.message.includes("kernels/broken.wgsl:1:")) throw e;
 * }
 * ```
 */
export class GpuError extends Error {
  /** The kernel (or operation) that failed. */
  readonly kernel: string;
  /** Creates an error naming the kernel. */
  constructor(kernel: string, message: string) {
    super(message);
    this.name = "GpuError";
    this.kernel = kernel;
  }
}

const UNIFORM_ALIGN = 256;
/** Dispatches per timestamp query set in profiling mode (4096 queries, the WebGPU maximum). */
const PROFILE_SET = 2048;

type Op =
  | {
    kind: "dispatch";
    kernel: Kernel;
    bindings: readonly Binding[];
    params?: ArrayBuffer;
    groups: [number, number, number];
  }
  | { kind: "copy"; src: Binding; dst: Binding; size: number }
  | { kind: "fill"; dst: Tensor }
  | { kind: "upload"; dst: Binding; data: Uint8Array; offset: number }
  | { kind: "texture"; src: Tensor; dst: GPUTexture; copies: TextureCopy[] };

/**
 * One rectangle of a buffer-to-texture copy (see {@linkcode Batch.copyToTexture}): `height` rows
 * of `width` texels from byte `offset` of the source, `bytesPerRow` apart, to texture row `y`.
 */
export interface TextureCopy {
  /** Byte offset in the source tensor; a multiple of the texel size (16 for rgba32float). */
  offset: number;
  /** Source row stride in bytes; a multiple of 256 (WebGPU's copy alignment). */
  bytesPerRow: number;
  /** Texels per row. */
  width: number;
  /** Rows. */
  height: number;
  /** First texture row written. */
  y: number;
}

const FILL_WGSL = `
struct Params { n: u32, value: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) g: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let i = g.x + g.y * nw.x * 256u;
  if (i < p.n) { out[i] = p.value; }
}`;

function fillGroups(n: number): [number, number] {
  const groups = Math.ceil(n / 256);
  const x = Math.min(groups, 65535);
  return [x, Math.ceil(groups / x)];
}

/**
 * A batch of dispatches and copies, encoded into one command buffer and submitted once.
 *
 * @example
 * ```ts
 * import { Gpu } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const t = gpu.tensor([4], new Float32Array([1, 2, 3, 4]));
 * const b = gpu.batch();
 * b.fill(t, 0);
 * await b.submit();
 * const [out] = await gpu.read([t]);
 * if (out[3] !== 0) throw new Error("fill failed");
 * t.release();
 * ```
 */
export class Batch {
  readonly #gpu: Gpu;
  readonly #ops: Op[] = [];
  readonly #after: (() => void)[] = [];
  /** Kernels dispatched in this batch, for error messages. */
  get kernels(): string[] {
    return [...new Set(this.#ops.map((o) => o.kind === "dispatch" ? o.kernel.name : o.kind))];
  }
  /** Number of operations recorded. */
  get length(): number {
    return this.#ops.length;
  }

  /** Use {@linkcode Gpu.batch}. */
  constructor(gpu: Gpu) {
    this.#gpu = gpu;
  }

  /**
   * Records a dispatch. `bindings` are in binding order, skipping the uniform slot, which takes
   * `params` (required when the kernel declares a uniform binding).
   */
  dispatch(
    kernel: Kernel,
    bindings: readonly Binding[],
    params: ArrayBuffer | ArrayBufferView | undefined,
    groups: number | [number, number?, number?],
  ): this {
    const g = typeof groups === "number"
      ? [groups, 1, 1]
      : [groups[0], groups[1] ?? 1, groups[2] ?? 1];
    const maxGroups = this.#gpu.device.limits.maxComputeWorkgroupsPerDimension;
    for (const n of g) {
      if (!Number.isInteger(n) || n < 0 || n > maxGroups) {
        throw new GpuError(
          kernel.name,
          `Cannot dispatch kernel "${kernel.name}": workgroup count ${
            g.join("×")
          } is outside 0..${maxGroups}`,
        );
      }
    }
    const storageCount = kernel.bindings.filter((k) => k !== null && k !== "uniform").length;
    if (bindings.length !== storageCount) {
      throw new GpuError(
        kernel.name,
        `Cannot dispatch kernel "${kernel.name}": it takes ${storageCount} storage bindings, got ${bindings.length}`,
      );
    }
    bindings.forEach((b, i) => {
      const want = kernel.packed?.[i] ?? "f32";
      if (b instanceof Tensor && b.dtype !== want) {
        throw new GpuError(
          kernel.name,
          `Cannot dispatch kernel "${kernel.name}": tensor "${b.label}" is stored in ${b.dtype}, and its binding ${i} reads ${want}`,
        );
      }
    });
    const limit = this.#gpu.maxBindingBytes;
    for (const b of bindings) {
      const size = rangeSize(b);
      if (size > limit) {
        const name = b instanceof Tensor ? `tensor "${b.label}"` : "a buffer range";
        throw new GpuError(
          kernel.name,
          `Cannot dispatch kernel "${kernel.name}": ${name} is ${size} bytes, over this device's ${limit}-byte storage binding limit (maxStorageBufferBindingSize); bind it in chunks (Tensor.view over gpu.rowChunks)`,
        );
      }
    }
    const hasUniform = kernel.bindings.includes("uniform");
    if (hasUniform !== (params !== undefined)) {
      throw new GpuError(
        kernel.name,
        `Cannot dispatch kernel "${kernel.name}": ${
          hasUniform ? "missing" : "unexpected"
        } uniform parameters`,
      );
    }
    let p: ArrayBuffer | undefined;
    if (params !== undefined) {
      p = params instanceof ArrayBuffer ? params : (params.buffer.slice(
        params.byteOffset,
        params.byteOffset + params.byteLength,
      ) as ArrayBuffer);
    }
    if (g[0] * g[1] * g[2] === 0) return this;
    this.#gpu.recorder?.push({
      kernel,
      bindings,
      params: p,
      groups: g as [number, number, number],
    });
    this.#ops.push({
      kind: "dispatch",
      kernel,
      bindings,
      params: p,
      groups: g as [number, number, number],
    });
    return this;
  }

  /** Records a buffer-to-buffer copy of `size` bytes (default: all of `src`). */
  copy(src: Binding, dst: Binding, size?: number): this {
    const n = size ?? rangeSize(src);
    this.#ops.push({ kind: "copy", src, dst, size: n });
    return this;
  }

  /**
   * Records copies from `src` into `dst` (a texture with `COPY_DST` usage), ordered with the other
   * operations of this batch. Each rectangle must satisfy WebGPU's buffer-to-texture alignment
   * (offset a multiple of the texel size, `bytesPerRow` a multiple of 256) and lie inside both.
   */
  copyToTexture(src: Tensor, dst: GPUTexture, copies: TextureCopy[]): this {
    for (const c of copies) {
      const last = c.offset + (c.height - 1) * c.bytesPerRow + c.width * 16;
      if (
        c.offset % 16 !== 0 || c.bytesPerRow % 256 !== 0 || last > src.byteLength ||
        c.width > dst.width || c.y + c.height > dst.height
      ) {
        throw new RangeError(
          `Cannot copy tensor "${src.label}" into texture "${dst.label}": rectangle ${
            JSON.stringify(c)
          } is misaligned or out of bounds (tensor ${src.byteLength} bytes, texture ${dst.width}×${dst.height})`,
        );
      }
    }
    this.#ops.push({ kind: "texture", src, dst, copies });
    return this;
  }

  /**
   * Records filling a tensor with one value (0 uses `clearBuffer`, others a small kernel, over
   * chunks of a tensor larger than one binding).
   */
  fill(dst: Tensor, value: number): this {
    if (dst.dtype !== "f32") {
      throw new RangeError(`Cannot fill tensor "${dst.label}": it is stored in ${dst.dtype}`);
    }
    if (value === 0 && !Object.is(value, -0)) {
      this.#ops.push({ kind: "fill", dst });
      return this;
    }
    for (const { start, count } of this.#gpu.rowChunks(dst.size, 1)) {
      const part = count === dst.size ? dst : dst.view(start, [count]);
      const params = new ArrayBuffer(8);
      new Uint32Array(params)[0] = count;
      new Float32Array(params)[1] = value;
      this.dispatch(this.#gpu.fillKernel, [part], params, fillGroups(count));
    }
    return this;
  }

  /**
   * Records an upload of `data` into `dst` at element `offset`, ordered with the other operations
   * of this batch (unlike `gpu.write`, which lands before the whole batch runs). The data is copied
   * now, so the caller may reuse its array.
   */
  write(dst: Binding, data: Float32Array | Uint32Array | Int32Array, offset = 0): this {
    if (dst instanceof Tensor && dst.dtype !== "f32") {
      throw new RangeError(
        `Cannot record a write into tensor "${dst.label}": it is stored in ${dst.dtype} (use Tensor.write, which rounds or takes its bits)`,
      );
    }
    if (offset * 4 + data.byteLength > rangeSize(dst)) {
      const name = dst instanceof Tensor ? `tensor "${dst.label}"` : "a buffer";
      throw new RangeError(
        `Cannot write ${data.length} elements at ${offset} into ${name} of ${rangeSize(dst) / 4}`,
      );
    }
    const bytes = new Uint8Array(data.byteLength);
    bytes.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    this.#ops.push({ kind: "upload", dst, data: bytes, offset: offset * 4 });
    return this;
  }

  /** Runs `fn` right after this batch is submitted (e.g. to release tensors it used). */
  afterSubmit(fn: () => void): this {
    this.#after.push(fn);
    return this;
  }

  /**
   * Encodes everything into one command buffer, submits it, and throws a {@linkcode GpuError} naming
   * the kernels of this batch if WebGPU reported an error. Does not wait for the GPU to finish.
   */
  async submit(): Promise<void> {
    try {
      await this.#gpu.submitOps(this.#ops, this.kernels);
    } finally {
      this.#ops.length = 0;
      for (const fn of this.#after.splice(0)) fn();
    }
  }
}

function rangeSize(b: Binding): number {
  if (b instanceof Tensor) return b.byteLength;
  if ("texture" in b) return 0;
  return b.size ?? b.buffer.size - (b.offset ?? 0);
}

function bindingResource(b: Binding): GPUBufferBinding {
  if (b instanceof Tensor) return { buffer: b.buffer, offset: b.byteOffset, size: b.byteLength };
  if ("texture" in b) throw new TypeError("a texture view is not a buffer range");
  return { buffer: b.buffer, offset: b.offset ?? 0, size: b.size };
}

let shared: Promise<Gpu> | undefined;
/** The instance `shared` resolved to, so that destroying another instance leaves it alone. */
let sharedGpu: Gpu | undefined;

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/**
 * The WebGPU device and everything that runs on it.
 *
 * @example
 * ```ts
 * import { Gpu } from "../mod.ts";
 * const gpu = await Gpu.get();
 * console.log(gpu.adapterName, gpu.isSoftware ? "(software)" : "(hardware)");
 * ```
 */
export class Gpu {
  /** The adapter the device came from. */
  readonly adapter: GPUAdapter;
  /** The device, requested with the adapter's own limits. */
  readonly device: GPUDevice;
  /** Human-readable adapter name, e.g. `"llvmpipe (LLVM 15.0.6, 256 bits)"`. */
  readonly adapterName: string;
  /** True for CPU (software) adapters such as Mesa's lavapipe and llvmpipe. */
  readonly isSoftware: boolean;
  /** True when the device has `shader-f16`. */
  readonly hasF16: boolean;
  /** Dispatch, submit and wait counters. */
  readonly stats: GpuStats = { dispatches: 0, submits: 0, waits: 0 };
  readonly #pool: BufferPool;
  readonly #pipelines = new Map<string, Promise<Kernel>>();
  readonly #uncaptured: string[] = [];
  #lost: GPUDeviceLostInfo | undefined;
  #fill: Kernel | undefined;
  #destroyed = false;
  #pendingUploadBytes = 0;
  readonly #maxBindingBytes: number;
  #profiles: { kernels: string[]; read: GPUBuffer }[] = [];
  readonly #afterSubmit: (() => void)[] = [];

  /**
   * Profiling mode (off by default; needs the `timestamp-query` feature, see
   * {@linkcode canProfile}): while true, every submitted dispatch runs in its own compute pass with
   * timestamps written at its start and end, and {@linkcode readProfile} returns the time of each.
   * One pass per dispatch adds a little time of its own, so profile runs are not timing runs; with
   * the mode off nothing changes.
   */
  profile = false;

  /**
   * When set, every dispatch recorded into any batch is also appended here (benchmarks replay
   * them kernel by kernel to time each one by the wall clock, where timestamp queries are missing
   * or unreliable). Off (`null`) by default.
   */
  recorder: RecordedDispatch[] | null = null;

  private constructor(adapter: GPUAdapter, device: GPUDevice, maxBindingBytes: number) {
    this.adapter = adapter;
    this.device = device;
    this.#maxBindingBytes = maxBindingBytes;
    const info = adapter.info;
    this.adapterName = info.description || info.device || info.vendor || "unknown adapter";
    this.isSoftware = info.isFallbackAdapter ||
      /llvmpipe|lavapipe|swiftshader|softpipe|warp/i.test(this.adapterName);
    this.hasF16 = device.features.has("shader-f16");
    this.#pool = new BufferPool(device);
    device.addEventListener("uncapturederror", (e) => {
      this.#uncaptured.push((e as GPUUncapturedErrorEvent).error.message);
    });
    device.lost.then((info) => {
      if (this.#destroyed) return;
      this.#lost = info;
      console.error(`whet: the GPU device was lost (${info.reason}): ${info.message}`);
    });
  }

  /**
   * Requests an adapter and a device with the adapter's own limits. Throws a clear error when there
   * is no WebGPU adapter.
   */
  static async create(options: GpuOptions = {}): Promise<Gpu> {
    const forced = options.maxBindingBytes;
    if (forced !== undefined && !(Number.isInteger(forced) && forced > 0 && forced % 4 === 0)) {
      throw new RangeError(
        `Cannot start WebGPU: maxBindingBytes ${forced} is not a positive multiple of 4`,
      );
    }
    const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
    if (!gpu) {
      throw new GpuError(
        "adapter",
        "Cannot start WebGPU: navigator.gpu is missing in this runtime (whet needs Deno 2 or a browser with WebGPU)",
      );
    }
    const adapter = await gpu.requestAdapter({
      powerPreference: options.powerPreference ?? "high-performance",
    });
    if (!adapter) {
      throw new GpuError(
        "adapter",
        "Cannot find a WebGPU adapter: navigator.gpu.requestAdapter() returned null. On Linux without a GPU, " +
          "install Mesa's software Vulkan driver (`apt-get install -y mesa-vulkan-drivers`, which provides lavapipe) " +
          "or its OpenGL driver (`libgl1-mesa-dri`, llvmpipe), and set XDG_RUNTIME_DIR=/tmp",
      );
    }
    const requiredLimits: Record<string, number> = {};
    const limits = adapter.limits as unknown as Record<string, unknown>;
    for (const key in limits) {
      const v = limits[key];
      if (typeof v === "number") requiredLimits[key] = v;
    }
    const requiredFeatures: GPUFeatureName[] = [];
    if (options.f16 !== false && adapter.features.has("shader-f16")) {
      requiredFeatures.push("shader-f16");
    }
    if (adapter.features.has("timestamp-query")) requiredFeatures.push("timestamp-query");
    const device = await adapter.requestDevice({ requiredLimits, requiredFeatures, label: "whet" });
    const limit = device.limits.maxStorageBufferBindingSize;
    const g = new Gpu(adapter, device, Math.min(limit, forced ?? limit));
    g.#fill = await g.kernel({
      name: "fill",
      code: FILL_WGSL,
      entry: "main",
      bindings: ["uniform", "write"],
    });
    return g;
  }

  /** The process-wide shared instance, created on first use. */
  static get(): Promise<Gpu> {
    shared ??= Gpu.create().then((g) => sharedGpu = g, (e) => {
      shared = undefined;
      throw e;
    });
    return shared;
  }

  /** @internal The built-in fill kernel. */
  get fillKernel(): Kernel {
    return this.#fill!;
  }

  /** Live and peak bytes of pooled buffers. */
  get memory(): PoolStats {
    return this.#pool.stats();
  }

  /** Destroys the pooled free buffers (live tensors stay valid), so `reserved` is what is in use. */
  trimMemory(): void {
    this.#pool.trim();
  }

  /** Restarts the peak-memory accounting from the current values (e.g. before a measured run). */
  resetPeakMemory(): void {
    this.#pool.resetPeaks();
  }

  /** True when the device has timestamp queries, so {@linkcode profile} can be switched on. */
  get canProfile(): boolean {
    return this.device.features.has("timestamp-query");
  }

  /**
   * The GPU time of every dispatch submitted with {@linkcode profile} on since the last call, in
   * submission order (one wait for all of them; counts in `stats.waits`).
   */
  async readProfile(): Promise<ProfileEntry[]> {
    const pending = this.#profiles.splice(0);
    if (pending.length === 0) return [];
    this.stats.waits++;
    const out: ProfileEntry[] = [];
    try {
      await Promise.all(pending.map((p) => p.read.mapAsync(GPUMapMode.READ)));
      this.check("readProfile");
      for (const p of pending) {
        const t = new BigUint64Array(p.read.getMappedRange().slice(0));
        p.kernels.forEach((kernel, i) => {
          const ns = t[2 * i + 1] >= t[2 * i] ? Number(t[2 * i + 1] - t[2 * i]) : 0;
          out.push({ kernel, ms: ns / 1e6 });
        });
        p.read.unmap();
      }
    } finally {
      for (const p of pending) p.read.destroy();
    }
    return out;
  }

  /**
   * Largest buffer range one storage binding may cover on this device (or the smaller limit
   * forced with {@linkcode GpuOptions.maxBindingBytes}).
   */
  get maxBindingBytes(): number {
    return this.#maxBindingBytes;
  }

  /**
   * Byte alignment of a storage binding's offset: the device's `minStorageBufferOffsetAlignment`,
   * and at least 16 so that a view starts on a vec4.
   */
  get offsetAlignment(): number {
    return Math.max(16, this.device.limits.minStorageBufferOffsetAlignment);
  }

  /**
   * Rows `start … start + count` of `t` (rows of `t.size / t.shape[0]` elements) for a kernel
   * that takes an element offset: `t` itself at offset `start · rowElems` when `t` fits one
   * binding, else a view from the binding offset alignment at or before those rows to their end,
   * with the offset of the first row in it (at most {@linkcode offsetAlignment} − 4 bytes more
   * than the rows themselves to bind).
   *
   * @example
   * ```ts
   * import { Gpu } from "../mod.ts";
   * const gpu = await Gpu.create({ maxBindingBytes: 1024 });
   * const small = gpu.tensor([4, 8]), big = gpu.tensor([64, 7]); // 128 and 1,792 bytes
   * if (gpu.rowRange(small, 2, 2).offset !== 16) throw new Error("a tensor that fits: an offset");
   * const r = gpu.rowRange(big, 33, 16); // rows of 28 bytes: row 33 starts at byte 924
   * const align = gpu.offsetAlignment;
   * if (r.tensor.byteOffset !== Math.floor(924 / align) * align) throw new Error("aligned view");
   * if (r.tensor.byteOffset + 4 * r.offset !== 924 || r.tensor.size !== r.offset + 16 * 7) throw new Error();
   * gpu.destroy();
   * ```
   */
  rowRange(t: Tensor, start: number, count: number): { tensor: Tensor; offset: number } {
    const rowElems = t.shape.length > 0 && t.shape[0] > 0 ? t.size / t.shape[0] : 1;
    const first = start * rowElems;
    if (t.byteLength <= this.#maxBindingBytes) return { tensor: t, offset: first };
    // In elements of t's dtype (2 bytes for packed halves, whose views start on the alignment too).
    const e = t.elementBytes, unit = this.offsetAlignment / e;
    const from = Math.floor((t.byteOffset / e + first) / unit) * unit - t.byteOffset / e;
    const offset = first - from;
    return { tensor: t.view(from, [offset + count * rowElems]), offset };
  }

  /**
   * Splits `rows` rows of `rowElems` 4-byte elements into consecutive chunks that each fit one
   * storage binding ({@linkcode maxBindingBytes}) and start on the binding offset alignment, so
   * that `t.view(start · rowElems, [count, rowElems])` of a (rows, rowElems) tensor can be bound.
   * One chunk when everything fits. Throws when not even the alignment's worth of rows fits.
   *
   * @example
   * ```ts
   * import { Gpu } from "../mod.ts";
   * const gpu = await Gpu.create({ maxBindingBytes: 4096 });
   * // 100 rows of 16 floats (64 bytes): 64 rows fit 4,096 bytes.
   * const chunks = gpu.rowChunks(100, 16);
   * if (chunks.length !== 2 || chunks[0].count !== 64 || chunks[1].start !== 64) throw new Error();
   * gpu.destroy();
   * ```
   */
  rowChunks(rows: number, rowElems: number, options: RowChunkOptions = {}): RowChunk[] {
    const rowBytes = rowElems * (options.elementBytes ?? 4), align = this.offsetAlignment;
    const multiple = options.multiple ?? 1;
    let per = Math.floor(this.#maxBindingBytes / rowBytes);
    if (options.maxRows !== undefined) per = Math.min(per, options.maxRows);
    if (per >= rows) return [{ start: 0, count: rows }];
    // Rows per chunk: a multiple of `multiple` and of the rows that make a whole alignment unit.
    const unit = align / gcd(rowBytes, align);
    const step = unit * multiple / gcd(unit, multiple);
    per = Math.floor(per / step) * step;
    if (!(per > 0)) {
      throw new RangeError(
        `Cannot bind rows of ${rowBytes} bytes in chunks: ${step} rows (the binding offset alignment of ${align} bytes${
          multiple > 1 ? ` and a multiple of ${multiple}` : ""
        }) exceed the ${this.#maxBindingBytes}-byte storage binding limit${
          options.maxRows !== undefined ? ` or ${options.maxRows} rows` : ""
        }`,
      );
    }
    const out: RowChunk[] = [];
    for (let start = 0; start < rows; start += per) {
      out.push({ start, count: Math.min(per, rows - start) });
    }
    return out;
  }

  /** Throws if the device was lost or an uncaptured error is pending. */
  check(what: string): void {
    if (this.#lost) {
      throw new GpuError(
        what,
        `Cannot run "${what}": the GPU device was lost (${this.#lost.reason}): ${this.#lost.message}`,
      );
    }
    if (this.#uncaptured.length > 0) {
      const msgs = this.#uncaptured.splice(0);
      throw new GpuError(
        what,
        `WebGPU reported an error before or during "${what}": ${msgs.join("\n")}`,
      );
    }
  }

  /**
   * Compiles (once; cached by name, source and constants) a kernel. Compile errors throw with the
   * file, line and column; pipeline validation errors throw naming the kernel.
   */
  kernel(spec: KernelSpec): Promise<Kernel> {
    const key = `${spec.name}\u0000${spec.entry}\u0000${
      JSON.stringify(spec.constants ?? {})
    }\u0000${JSON.stringify(spec.packed ?? {})}\u0000${spec.code}`;
    let k = this.#pipelines.get(key);
    if (!k) {
      k = this.#compile(spec);
      this.#pipelines.set(key, k);
      k.catch(() => this.#pipelines.delete(key));
    }
    return k;
  }

  async #compile(spec: KernelSpec): Promise<Kernel> {
    this.check(spec.name);
    const device = this.device;
    device.pushErrorScope("validation");
    const module = device.createShaderModule({ code: spec.code, label: spec.name });
    const info = await module.getCompilationInfo();
    const scoped = await device.popErrorScope();
    const errors = info.messages.filter((m) => m.type === "error");
    if (errors.length > 0 || scoped) {
      const where = spec.file ?? spec.name;
      const detail = errors.length > 0
        ? errors.map((m) => `${where}:${m.lineNum}:${m.linePos}: ${m.message.trim()}`).join("\n")
        : scoped!.message;
      throw new GpuError(spec.name, `Cannot compile kernel "${spec.name}":\n${detail}`);
    }
    const layout = device.createBindGroupLayout({
      label: spec.name,
      entries: spec.bindings.flatMap((kind, binding) =>
        kind === null ? [] : [
          kind === "texture"
            ? {
              binding,
              visibility: GPUShaderStage.COMPUTE,
              texture: { sampleType: "unfilterable-float", viewDimension: "2d" },
            } as GPUBindGroupLayoutEntry
            : kind === "storage-texture"
            ? {
              binding,
              visibility: GPUShaderStage.COMPUTE,
              storageTexture: { access: "write-only", format: "rgba32float", viewDimension: "2d" },
            } as GPUBindGroupLayoutEntry
            : {
              binding,
              visibility: GPUShaderStage.COMPUTE,
              buffer: {
                type: kind === "uniform"
                  ? "uniform"
                  : kind === "read"
                  ? "read-only-storage"
                  : "storage",
              },
            } as GPUBindGroupLayoutEntry,
        ]
      ),
    });
    device.pushErrorScope("validation");
    const pipeline = device.createComputePipeline({
      label: spec.name,
      layout: device.createPipelineLayout({ bindGroupLayouts: [layout], label: spec.name }),
      compute: { module, entryPoint: spec.entry, constants: spec.constants },
    });
    const err = await device.popErrorScope();
    if (err) {
      throw new GpuError(
        spec.name,
        `Cannot create the pipeline of kernel "${spec.name}": ${err.message.trim()}`,
      );
    }
    return { name: spec.name, pipeline, layout, bindings: spec.bindings, packed: spec.packed };
  }

  /** A new, empty batch. */
  batch(): Batch {
    return new Batch(this);
  }

  /**
   * A tensor of float32 (or u32/i32 data, same 4-byte element) from the pool; contents are
   * undefined unless `data` is given. With `dtype` `"f16"` or `"bf16"` the elements are stored as
   * packed halves (half the bytes; for frozen weights that only packed-reading kernels take):
   * float32 `data` is rounded to nearest even, a `Uint16Array` is taken as that dtype's bits.
   */
  tensor(
    shape: readonly number[],
    data?: Float32Array | Uint32Array | Int32Array | Uint16Array,
    label = "tensor",
    dtype: TensorDtype = "f32",
  ): Tensor {
    const size = shape.reduce((a, b) => a * b, 1);
    if (!Number.isInteger(size) || size < 0) {
      throw new GpuError(label, `Cannot create tensor "${label}": bad shape [${shape.join(", ")}]`);
    }
    if (data && data.length !== size) {
      throw new GpuError(
        label,
        `Cannot create tensor "${label}": shape [${
          shape.join(", ")
        }] holds ${size} elements, data has ${data.length}`,
      );
    }
    const byteLength = dtype === "f32" ? size * 4 : halfBytes(size);
    if (byteLength > this.device.limits.maxBufferSize) {
      throw new GpuError(
        label,
        `Cannot create tensor "${label}" of ${byteLength} bytes: this device's maxBufferSize is ${this.device.limits.maxBufferSize}`,
      );
    }
    const buffer = this.#pool.acquire(byteLength, label);
    const t = new Tensor(this, buffer, shape, byteLength, label, this.#pool, null, dtype);
    if (data) t.write(data);
    return t;
  }

  /**
   * Uploads `data` into `t` (at element offset `offset`). A tensor of packed halves takes only its
   * u32 words here (word offset): `Tensor.write` rounds float32 values and packs them.
   */
  write(t: Binding, data: Float32Array | Uint32Array | Int32Array, offset = 0): void {
    if (t instanceof Tensor && t.dtype !== "f32" && !(data instanceof Uint32Array)) {
      throw new RangeError(
        `Cannot write float or int32 data into tensor "${t.label}": it is stored in ${t.dtype} (use Tensor.write)`,
      );
    }
    const r = bindingResource(t);
    this.device.queue.writeBuffer(
      r.buffer,
      (r.offset ?? 0) + offset * 4,
      data.buffer as ArrayBuffer,
      data.byteOffset,
      data.byteLength,
    );
    // writeBuffer keeps its staging memory until the next submit: flush large uploads.
    this.#pendingUploadBytes += data.byteLength;
    if (this.#pendingUploadBytes > 64 << 20) {
      this.device.queue.submit([]);
      this.#pendingUploadBytes = 0;
    }
  }

  /**
   * Reads tensors back to the CPU with one copy and one wait (each wait costs ~11 ms on Deno, so
   * read rarely and read several tensors at once). Tensors of packed halves come back widened to
   * float32 (exactly), one value per element.
   */
  async read(tensors: readonly Binding[]): Promise<Float32Array[]> {
    this.check("read");
    const sizes = tensors.map(rangeSize);
    const offsets: number[] = [];
    let total = 0;
    for (const s of sizes) {
      offsets.push(total);
      total += Math.ceil(s / 4) * 4;
    }
    if (total === 0) return tensors.map(() => new Float32Array(0));
    const staging = this.device.createBuffer({
      size: total,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      label: "readback",
    });
    try {
      const enc = this.device.createCommandEncoder({ label: "readback" });
      tensors.forEach((t, i) => {
        const r = bindingResource(t);
        if (sizes[i] > 0) {
          enc.copyBufferToBuffer(r.buffer, r.offset ?? 0, staging, offsets[i], sizes[i]);
        }
      });
      await this.#submitChecked([enc.finish()], ["read"]);
      this.stats.waits++;
      await staging.mapAsync(GPUMapMode.READ);
      this.check("read");
      const all = new Float32Array(staging.getMappedRange().slice(0));
      staging.unmap();
      return sizes.map((s, i) => {
        const t = tensors[i];
        if (t instanceof Tensor && t.dtype !== "f32") {
          const bits = new Uint16Array(all.buffer, offsets[i], t.size);
          return decodeHalf(bits, t.dtype as HalfDtype);
        }
        return all.slice(offsets[i] / 4, (offsets[i] + s) / 4);
      });
    } finally {
      staging.destroy();
    }
  }

  /** Waits until the GPU has finished all submitted work (counts as a wait). */
  async sync(): Promise<void> {
    this.stats.waits++;
    await this.device.queue.onSubmittedWorkDone();
    this.check("sync");
  }

  /** Releases every pooled buffer and destroys the device. The shared instance is recreated on next use. */
  destroy(): void {
    this.#destroyed = true;
    this.#pool.clear();
    this.device.destroy();
    if (sharedGpu === this) shared = sharedGpu = undefined;
  }

  /** @internal Encodes and submits a batch's operations. */
  async submitOps(ops: readonly Op[], kernels: string[]): Promise<void> {
    if (ops.length === 0) return;
    this.check(kernels.join(", "));
    const device = this.device;
    // One uniform buffer for the whole batch, one 256-byte-aligned slot per dispatch.
    let uniformBytes = 0;
    for (const op of ops) {
      if (op.kind === "dispatch" && op.params) {
        uniformBytes += Math.ceil(op.params.byteLength / UNIFORM_ALIGN) * UNIFORM_ALIGN;
      }
    }
    let uniform: GPUBuffer | undefined;
    let uniformData: Uint8Array<ArrayBuffer> | undefined;
    if (uniformBytes > 0) {
      uniform = device.createBuffer({
        size: uniformBytes,
        usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
        label: "params",
      });
      uniformData = new Uint8Array(uniformBytes);
    }
    // One mapped staging buffer carries every recorded upload, copied in order with the dispatches.
    let uploadBytes = 0;
    for (const op of ops) {
      if (op.kind === "upload") uploadBytes += Math.ceil(op.data.byteLength / 4) * 4;
    }
    device.pushErrorScope("out-of-memory");
    device.pushErrorScope("validation");
    let staging: GPUBuffer | undefined;
    let stagingData: Uint8Array | undefined;
    if (uploadBytes > 0) {
      staging = device.createBuffer({
        size: uploadBytes,
        usage: GPUBufferUsage.COPY_SRC,
        mappedAtCreation: true,
        label: "uploads",
      });
      stagingData = new Uint8Array(staging.getMappedRange());
    }
    let sOffset = 0;
    const enc = device.createCommandEncoder({ label: kernels.join(",") });
    let pass: GPUComputePassEncoder | undefined;
    let uOffset = 0;
    let dispatches = 0;
    // Profiling: one pass per dispatch, timestamps at its start and end (query sets hold at most
    // 4096 queries, so a new set every 2048 dispatches).
    const profiling = this.profile && this.canProfile;
    const profiled: string[] = [];
    const querySets: GPUQuerySet[] = [];
    for (const op of ops) {
      if (op.kind === "dispatch") {
        const entries: GPUBindGroupEntry[] = [];
        let s = 0;
        op.kernel.bindings.forEach((kind, binding) => {
          if (kind === null) return;
          if (kind === "uniform") {
            const size = op.params!.byteLength;
            uniformData!.set(new Uint8Array(op.params!), uOffset);
            entries.push({ binding, resource: { buffer: uniform!, offset: uOffset, size } });
            uOffset += Math.ceil(size / UNIFORM_ALIGN) * UNIFORM_ALIGN;
          } else {
            const b = op.bindings[s++];
            const resource = !(b instanceof Tensor) && "texture" in b
              ? b.texture
              : bindingResource(b);
            entries.push({ binding, resource });
          }
        });
        const group = device.createBindGroup({
          layout: op.kernel.layout,
          entries,
          label: op.kernel.name,
        });
        if (profiling) {
          const q = profiled.length % PROFILE_SET;
          if (q === 0) {
            querySets.push(device.createQuerySet({ type: "timestamp", count: 2 * PROFILE_SET }));
          }
          pass?.end();
          pass = enc.beginComputePass({
            label: op.kernel.name,
            timestampWrites: {
              querySet: querySets[querySets.length - 1],
              beginningOfPassWriteIndex: 2 * q,
              endOfPassWriteIndex: 2 * q + 1,
            },
          });
          profiled.push(op.kernel.name);
        }
        pass ??= enc.beginComputePass({ label: "whet" });
        pass.setPipeline(op.kernel.pipeline);
        pass.setBindGroup(0, group);
        pass.dispatchWorkgroups(op.groups[0], op.groups[1], op.groups[2]);
        dispatches++;
      } else {
        pass?.end();
        pass = undefined;
        if (op.kind === "copy") {
          const s = bindingResource(op.src);
          const d = bindingResource(op.dst);
          enc.copyBufferToBuffer(s.buffer, s.offset ?? 0, d.buffer, d.offset ?? 0, op.size);
        } else if (op.kind === "upload") {
          const d = bindingResource(op.dst);
          stagingData!.set(op.data, sOffset);
          enc.copyBufferToBuffer(
            staging!,
            sOffset,
            d.buffer,
            (d.offset ?? 0) + op.offset,
            op.data.byteLength,
          );
          sOffset += Math.ceil(op.data.byteLength / 4) * 4;
        } else if (op.kind === "texture") {
          for (const c of op.copies) {
            enc.copyBufferToTexture(
              {
                buffer: op.src.buffer,
                offset: op.src.byteOffset + c.offset,
                bytesPerRow: c.bytesPerRow,
              },
              { texture: op.dst, origin: [0, c.y] },
              [c.width, c.height],
            );
          }
        } else {
          enc.clearBuffer(op.dst.buffer, op.dst.byteOffset, op.dst.byteLength);
        }
      }
    }
    pass?.end();
    if (profiled.length > 0) {
      const bytes = profiled.length * 16;
      const resolve = device.createBuffer({
        size: bytes,
        usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
        label: "profile.resolve",
      });
      const profileRead = device.createBuffer({
        size: bytes,
        usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
        label: "profile.read",
      });
      querySets.forEach((qs, i) => {
        const n = Math.min(PROFILE_SET, profiled.length - i * PROFILE_SET);
        enc.resolveQuerySet(qs, 0, 2 * n, resolve, i * PROFILE_SET * 16);
      });
      enc.copyBufferToBuffer(resolve, 0, profileRead, 0, bytes);
      this.#profiles.push({ kernels: profiled, read: profileRead });
      this.#afterSubmit.push(() => {
        resolve.destroy();
        for (const qs of querySets) qs.destroy();
      });
    }
    if (uniform) device.queue.writeBuffer(uniform, 0, uniformData!);
    staging?.unmap();
    await this.#submitChecked([enc.finish()], kernels, true);
    uniform?.destroy();
    staging?.destroy();
    for (const fn of this.#afterSubmit.splice(0)) fn();
    this.stats.dispatches += dispatches;
    this.#pendingUploadBytes = 0;
  }

  async #submitChecked(
    buffers: GPUCommandBuffer[],
    kernels: string[],
    scoped = false,
  ): Promise<void> {
    const device = this.device;
    if (!scoped) {
      device.pushErrorScope("out-of-memory");
      device.pushErrorScope("validation");
    }
    device.queue.submit(buffers);
    this.stats.submits++;
    const validation = await device.popErrorScope();
    const oom = await device.popErrorScope();
    const what = kernels.join(", ");
    if (oom) {
      throw new GpuError(
        what,
        `Cannot run kernels [${what}]: the GPU is out of memory: ${oom.message.trim()}`,
      );
    }
    if (validation) {
      throw new GpuError(what, `Cannot run kernels [${what}]: ${validation.message.trim()}`);
    }
    this.check(what);
  }
}
