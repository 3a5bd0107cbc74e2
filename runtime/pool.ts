/**
 * A pool of storage buffers keyed by byte size, with accounting of live (handed out) and reserved
 * (live plus pooled) bytes and their peaks. Training steps repeat the same shapes, so exact-size
 * reuse (rounded up to 256 bytes) wastes nothing and allocates nothing after the first step.
 *
 * @module
 */

/** Memory accounting of a {@linkcode BufferPool}, in bytes. */
export interface PoolStats {
  /** Bytes in buffers currently handed out. */
  live: number;
  /** Highest `live` seen. */
  peakLive: number;
  /** Bytes of GPU memory held: live plus free buffers kept for reuse. */
  reserved: number;
  /** Highest `reserved` seen: the GPU memory the process needed. */
  peakReserved: number;
  /** Buffers currently handed out. */
  liveBuffers: number;
}

const GRANULE = 256;
const USAGE = 0x0080 /* STORAGE */ | 0x0004 /* COPY_SRC */ | 0x0008; /* COPY_DST */

/**
 * Hands out storage buffers and takes them back for reuse.
 *
 * @example
 * ```ts
 * import { BufferPool, Gpu } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const pool = new BufferPool(gpu.device);
 * const a = pool.acquire(1000, "a"); // 1,024 bytes: sizes round up to 256
 * pool.release(a);
 * const b = pool.acquire(1000, "b"); // the same buffer again
 * if (a !== b || pool.stats().live !== 1024) throw new Error("not reused");
 * pool.release(b);
 * pool.trim(); // destroys the free buffers
 * if (pool.stats().reserved !== 0 || pool.stats().peakReserved !== 1024) throw new Error("trim");
 * ```
 */
export class BufferPool {
  readonly #device: GPUDevice;
  readonly #free = new Map<number, GPUBuffer[]>();
  #live = 0;
  #peakLive = 0;
  #reserved = 0;
  #peakReserved = 0;
  #liveBuffers = 0;

  /** A pool allocating from `device`. */
  constructor(device: GPUDevice) {
    this.#device = device;
  }

  /** A buffer of at least `bytes` bytes (storage, copy source and destination). */
  acquire(bytes: number, label: string): GPUBuffer {
    const size = Math.max(GRANULE, Math.ceil(bytes / GRANULE) * GRANULE);
    const list = this.#free.get(size);
    let buffer = list?.pop();
    if (!buffer) {
      buffer = this.#device.createBuffer({ size, usage: USAGE, label });
      this.#reserved += size;
      this.#peakReserved = Math.max(this.#peakReserved, this.#reserved);
    }
    this.#live += size;
    this.#liveBuffers++;
    this.#peakLive = Math.max(this.#peakLive, this.#live);
    return buffer;
  }

  /** Returns a buffer from {@linkcode acquire} to the pool. */
  release(buffer: GPUBuffer): void {
    const size = buffer.size;
    this.#live -= size;
    this.#liveBuffers--;
    let list = this.#free.get(size);
    if (!list) this.#free.set(size, list = []);
    list.push(buffer);
  }

  /** Destroys the pooled free buffers (live ones stay valid). */
  trim(): void {
    for (const list of this.#free.values()) {
      for (const b of list) {
        this.#reserved -= b.size;
        b.destroy();
      }
    }
    this.#free.clear();
  }

  /** Destroys the free buffers and forgets the accounting of live ones. */
  clear(): void {
    this.trim();
  }

  /** Current accounting. */
  stats(): PoolStats {
    return {
      live: this.#live,
      peakLive: this.#peakLive,
      reserved: this.#reserved,
      peakReserved: this.#peakReserved,
      liveBuffers: this.#liveBuffers,
    };
  }

  /** Restarts the peaks from the current values (e.g. before measuring one training run). */
  resetPeaks(): void {
    this.#peakLive = this.#live;
    this.#peakReserved = this.#reserved;
  }
}
