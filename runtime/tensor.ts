/**
 * A GPU tensor: a pooled storage buffer with a shape. Elements are 4 bytes (f32 data, or u32/i32
 * indices). Tensors are released back to the pool explicitly; using one after release throws.
 *
 * @module
 */

import type { BufferPool } from "./pool.ts";

/** The part of the runtime a tensor needs to read and write itself. */
export interface TensorHost {
  write(t: Tensor, data: Float32Array | Uint32Array | Int32Array, offset?: number): void;
  read(tensors: readonly Tensor[]): Promise<Float32Array[]>;
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
  readonly #host: TensorHost;
  readonly #pool: BufferPool;
  #buffer: GPUBuffer | undefined;

  /** Use `gpu.tensor()`. */
  constructor(
    host: TensorHost,
    buffer: GPUBuffer,
    shape: readonly number[],
    byteLength: number,
    label: string,
    pool: BufferPool,
  ) {
    this.#host = host;
    this.#buffer = buffer;
    this.shape = [...shape];
    this.byteLength = byteLength;
    this.label = label;
    this.#pool = pool;
  }

  /** Number of elements. */
  get size(): number {
    return this.byteLength / 4;
  }

  /** True once the tensor was released (its buffer went back to the pool). */
  get released(): boolean {
    return !this.#buffer;
  }

  /** The underlying buffer; throws after {@linkcode release}. */
  get buffer(): GPUBuffer {
    if (!this.#buffer) throw new Error(`Cannot use tensor "${this.label}": it was released`);
    return this.#buffer;
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

  /** Returns the buffer to the pool. */
  release(): void {
    if (this.#buffer) this.#pool.release(this.#buffer);
    this.#buffer = undefined;
  }
}
