/**
 * A GPU tensor: a pooled storage buffer with a shape, or a view of a range of another tensor's
 * buffer. Elements are 4 bytes (f32 data, or u32/i32 indices), or, for frozen base weights stored
 * in half precision ({@linkcode TensorDtype} `"f16"`/`"bf16"`), 2-byte halves packed two per u32
 * word (element 2i in the low 16 bits, 2i+1 in the high), which kernels unpack to f32 with
 * `unpack2x16float` or a shift: no `shader-f16` feature is needed. Tensors are released back to the
 * pool explicitly; using one after release throws.
 *
 * Views are how a tensor larger than one storage binding (`maxStorageBufferBindingSize`, 128 MiB
 * on lavapipe and in browsers) is bound: it is stored in one buffer, and each kernel binds views
 * of row chunks that fit (see `Gpu.rowChunks`). A view is a tensor like any other to the kernel
 * wrappers: it binds, reads, writes, copies and fills its own range only.
 *
 * @module
 */

import type { BufferPool } from "./pool.ts";

/**
 * How a tensor stores its elements: `"f32"` (4 bytes; also u32/i32 data), or IEEE half (`"f16"`)
 * or bfloat16 (`"bf16"`) packed two per u32 word. Only kernels that declare a packed binding read
 * the half forms (see `KernelSpec.packed`); every other dispatch refuses them.
 */
export type TensorDtype = "f32" | "f16" | "bf16";

/** The half-precision storage dtypes. */
export type HalfDtype = "f16" | "bf16";

/** The part of the runtime a tensor needs to read and write itself. */
export interface TensorHost {
  write(t: Tensor, data: Float32Array | Uint32Array | Int32Array, offset?: number): void;
  read(tensors: readonly Tensor[]): Promise<Float32Array[]>;
  /** Byte alignment a storage binding's offset needs on this device (a view starts on it). */
  readonly offsetAlignment: number;
}

/**
 * A shaped 4-byte-element GPU buffer. Create with `gpu.tensor(shape, data?)`.
 *
 * @example
 * ```ts
 * import { Gpu } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const t = gpu.tensor([2, 3], new Float32Array([1, 2, 3, 4, 5, 6]), "x");
 * const back = await t.read();
 * if (back[5] !== 6) throw new Error("round trip failed");
 * t.release();
 * ```
 */
export class Tensor {
  /** Dimensions, outermost first. */
  readonly shape: readonly number[];
  /** Name used in error messages. */
  readonly label: string;
  /** Bytes of data (the buffer may be larger). */
  readonly byteLength: number;
  /** Where the data starts in {@linkcode buffer}: 0, except for a view. */
  readonly byteOffset: number;
  /** Storage dtype: `"f32"` (4-byte elements) or a packed half (2-byte elements). */
  readonly dtype: TensorDtype;
  readonly #size: number;
  readonly #host: TensorHost;
  readonly #pool: BufferPool;
  /** The tensor whose buffer a view shares, or null for a tensor that owns its buffer. */
  readonly #owner: Tensor | null;
  #buffer: GPUBuffer | undefined;

  /** Use `gpu.tensor()` or {@linkcode view}. */
  constructor(
    host: TensorHost,
    buffer: GPUBuffer,
    shape: readonly number[],
    byteLength: number,
    label: string,
    pool: BufferPool,
    view: { owner: Tensor; byteOffset: number } | null = null,
    dtype: TensorDtype = "f32",
  ) {
    this.#host = host;
    this.#buffer = buffer;
    this.shape = [...shape];
    this.byteLength = byteLength;
    this.label = label;
    this.#pool = pool;
    this.#owner = view?.owner ?? null;
    this.byteOffset = view?.byteOffset ?? 0;
    this.dtype = dtype;
    this.#size = shape.reduce((a, b) => a * b, 1);
    if (dtype === "f32" ? byteLength !== this.#size * 4 : byteLength !== halfBytes(this.#size)) {
      throw new RangeError(
        `Cannot create tensor "${label}": ${byteLength} bytes do not hold shape [${
          shape.join(", ")
        }] in ${dtype}`,
      );
    }
  }

  /** Number of elements. */
  get size(): number {
    return this.#size;
  }

  /** Bytes of one element: 4, or 2 for the packed halves. */
  get elementBytes(): 2 | 4 {
    return this.dtype === "f32" ? 4 : 2;
  }

  /** True once the tensor (or, for a view, the tensor it views) was released. */
  get released(): boolean {
    return !this.#buffer || (this.#owner?.released ?? false);
  }

  /** The underlying buffer (a view shares its owner's); throws after {@linkcode release}. */
  get buffer(): GPUBuffer {
    if (this.released) throw new Error(`Cannot use tensor "${this.label}": it was released`);
    return this.#buffer!;
  }

  /**
   * A view of `shape`'s worth of elements from element `start` on, sharing this tensor's buffer:
   * kernels that take it bind only that range. `start` must put the view on the device's binding
   * offset alignment (`gpu.rowChunks` picks chunks that are).
   *
   * @example
   * ```ts
   * import { Gpu } from "../mod.ts";
   * const gpu = await Gpu.get();
   * const rows = 8, C = 64; // rows of 256 bytes: every row starts on the binding alignment
   * const t = gpu.tensor([rows, C], new Float32Array(rows * C).fill(1), "table");
   * const tail = t.view(4 * C, [4, C]); // rows 4..7
   * const batch = gpu.batch();
   * batch.fill(tail, 2);
   * await batch.submit();
   * const all = await t.read();
   * if (all[4 * C - 1] !== 1 || all[4 * C] !== 2) throw new Error("the view covers rows 4..7 only");
   * t.release();
   * ```
   */
  view(start: number, shape: readonly number[], label = `${this.label}[${start}:]`): Tensor {
    const size = shape.reduce((a, b) => a * b, 1);
    if (!(Number.isInteger(start) && start >= 0 && Number.isInteger(size) && size >= 0)) {
      throw new RangeError(
        `Cannot view tensor "${this.label}": bad start ${start} or shape [${shape.join(", ")}]`,
      );
    }
    if (start + size > this.size) {
      throw new RangeError(
        `Cannot view elements ${start}..${
          start + size
        } of tensor "${this.label}": it has ${this.size}`,
      );
    }
    const byteOffset = this.byteOffset + start * this.elementBytes;
    const align = this.#host.offsetAlignment;
    if (byteOffset % align !== 0) {
      throw new RangeError(
        `Cannot view tensor "${this.label}" from element ${start}: byte offset ${byteOffset} is not a multiple of this device's ${align}-byte binding offset alignment`,
      );
    }
    const bytes = this.dtype === "f32" ? size * 4 : halfBytes(size);
    return new Tensor(
      this.#host,
      this.buffer,
      shape,
      bytes,
      label,
      this.#pool,
      { owner: this.#owner ?? this, byteOffset },
      this.dtype,
    );
  }

  /**
   * Uploads data (element offset `offset`). A half tensor takes float32 values (rounded to
   * nearest even) or its dtype's raw bits as a `Uint16Array` (kept exactly), at an even offset;
   * an odd count only where it ends the tensor (the last word's high half is padding).
   */
  write(data: Float32Array | Uint32Array | Int32Array | Uint16Array, offset = 0): void {
    if (offset + data.length > this.size) {
      throw new Error(
        `Cannot write ${data.length} elements at ${offset} into tensor "${this.label}" of ${this.size}`,
      );
    }
    if (this.dtype === "f32") {
      if (data instanceof Uint16Array) {
        throw new TypeError(
          `Cannot write 16-bit data into tensor "${this.label}": it is stored in f32`,
        );
      }
      this.#host.write(this, data, offset);
      return;
    }
    if (data instanceof Uint32Array || data instanceof Int32Array) {
      throw new TypeError(
        `Cannot write integer data into tensor "${this.label}": it is stored in ${this.dtype} (write float32 values or ${this.dtype} bits as a Uint16Array)`,
      );
    }
    if (offset % 2 !== 0 || (data.length % 2 !== 0 && offset + data.length !== this.size)) {
      throw new RangeError(
        `Cannot write ${data.length} elements at ${offset} into tensor "${this.label}": a ${this.dtype} tensor packs two elements a word, so writes start at an even element and cover whole words`,
      );
    }
    const bits = data instanceof Uint16Array ? data : encodeHalf(data, this.dtype);
    this.#host.write(this, packHalves(bits), offset / 2);
  }

  /** Reads the tensor back (one GPU wait); half tensors come back widened to float32 (exactly). */
  async read(): Promise<Float32Array> {
    return (await this.#host.read([this]))[0];
  }

  /**
   * Returns the buffer to the pool. Releasing a view only ends the view (its owner keeps the
   * buffer); releasing the owner ends its views too.
   */
  release(): void {
    if (this.#buffer && !this.#owner) this.#pool.release(this.#buffer);
    this.#buffer = undefined;
  }
}

/** Bytes a packed half tensor of `n` elements takes: whole u32 words. */
export function halfBytes(n: number): number {
  return Math.ceil(n / 2) * 4;
}

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/**
 * Rounds float32 values to half-precision bits, to nearest even: IEEE half (`"f16"`: overflow to
 * ±Infinity, subnormals kept) or bfloat16 (`"bf16"`: the top 16 bits of the float32, rounded).
 * NaN stays NaN.
 *
 * @example
 * ```ts
 * import { encodeHalf } from "../mod.ts";
 * const bits = encodeHalf(new Float32Array([1, 0.1, -2]), "bf16");
 * if (bits[0] !== 0x3f80 || bits[1] !== 0x3dcd || bits[2] !== 0xc000) throw new Error("bf16 bits");
 * if (encodeHalf(new Float32Array([1]), "f16")[0] !== 0x3c00) throw new Error("f16 bits");
 * ```
 */
export function encodeHalf(data: ArrayLike<number>, dtype: HalfDtype): Uint16Array {
  if (dtype === "f16") {
    // Float16Array's conversion rounds to nearest even from the exact value (a float32 here, so
    // no double rounding).
    return new Uint16Array(Float16Array.from(data as ArrayLike<number>).buffer);
  }
  const out = new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) {
    F32[0] = data[i];
    const b = U32[0];
    out[i] = (b & 0x7fffffff) > 0x7f800000
      ? (b >>> 16) | 0x40 // NaN stays a (quiet) NaN
      : ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
  }
  return out;
}

/**
 * Widens half-precision bits (`"f16"` or `"bf16"`) to float32, exactly.
 *
 * @example
 * ```ts
 * import { decodeHalf } from "../mod.ts";
 * const x = decodeHalf(new Uint16Array([0x3c00, 0x0001]), "f16");
 * if (x[0] !== 1 || x[1] !== 2 ** -24) throw new Error("f16 values");
 * if (decodeHalf(new Uint16Array([0x4049]), "bf16")[0] !== 3.140625) throw new Error("bf16");
 * ```
 */
export function decodeHalf(bits: Uint16Array, dtype: HalfDtype): Float32Array {
  if (dtype === "f16") {
    return Float32Array.from(new Float16Array(bits.buffer, bits.byteOffset, bits.length));
  }
  const out = new Float32Array(bits.length);
  const u = new Uint32Array(out.buffer);
  for (let i = 0; i < bits.length; i++) u[i] = bits[i] << 16;
  return out;
}

/** Half bits packed two per u32 word, element 2i low (little-endian, as the kernels unpack). */
function packHalves(bits: Uint16Array): Uint32Array {
  const words = new Uint32Array(Math.ceil(bits.length / 2));
  new Uint16Array(words.buffer).set(bits); // WebGPU buffers, like the hosts Deno runs on, are little-endian
  return words;
}
