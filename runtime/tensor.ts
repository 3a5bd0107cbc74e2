/**
 * A GPU tensor: a pooled storage buffer with a shape, or a view of a range of another tensor's
 * buffer. Elements are 4 bytes (f32 data, or u32/i32 indices). Tensors are released back to the
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
  ) {
    this.#host = host;
    this.#buffer = buffer;
    this.shape = [...shape];
    this.byteLength = byteLength;
    this.label = label;
    this.#pool = pool;
    this.#owner = view?.owner ?? null;
    this.byteOffset = view?.byteOffset ?? 0;
  }

  /** Number of elements. */
  get size(): number {
    return this.byteLength / 4;
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
    const byteOffset = this.byteOffset + start * 4;
    const align = this.#host.offsetAlignment;
    if (byteOffset % align !== 0) {
      throw new RangeError(
        `Cannot view tensor "${this.label}" from element ${start}: byte offset ${byteOffset} is not a multiple of this device's ${align}-byte binding offset alignment`,
      );
    }
    return new Tensor(this.#host, this.buffer, shape, size * 4, label, this.#pool, {
      owner: this.#owner ?? this,
      byteOffset,
    });
  }

  /** Uploads data (element offset `offset`). */
  write(data: Float32Array | Uint32Array | Int32Array, offset = 0): void {
    if (offset + data.length > this.size) {
      throw new Error(
        `Cannot write ${data.length} elements at ${offset} into tensor "${this.label}" of ${this.size}`,
      );
    }
    this.#host.write(this, data, offset);
  }

  /** Reads the tensor back (one GPU wait). */
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
