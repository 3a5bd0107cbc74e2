/**
 * Helpers shared by the kernel wrappers: uniform parameter blocks and workgroup grids.
 *
 * @module
 */

import type { Tensor } from "../runtime/tensor.ts";

/**
 * Builds a uniform parameter block field by field, in WGSL struct order, padded to 16 bytes.
 * Every field is 4 bytes (u32, i32 or f32), matching a WGSL struct of scalars.
 *
 * @example
 * ```ts
 * import { Params } from "../mod.ts";
 * // struct { n: u32, offset: i32, scale: f32 } → 16 bytes (padded)
 * const bytes = new Params(3).u32(7).i32(-1).f32(0.5).bytes;
 * const view = new DataView(bytes);
 * if (bytes.byteLength !== 16 || view.getInt32(4, true) !== -1 || view.getFloat32(8, true) !== 0.5) {
 *   throw new Error("bad layout");
 * }
 * ```
 */
export class Params {
  readonly #view: DataView;
  #offset = 0;

  /** Room for `fields` 4-byte fields. */
  constructor(fields = 16) {
    this.#view = new DataView(new ArrayBuffer(Math.ceil(fields / 4) * 16));
  }

  /** Appends an unsigned 32-bit integer. */
  u32(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) {
      throw new RangeError(`Cannot pass ${v} as a u32 parameter`);
    }
    this.#view.setUint32(this.#offset, v, true);
    this.#offset += 4;
    return this;
  }

  /** Appends a signed 32-bit integer. */
  i32(v: number): this {
    if (!Number.isInteger(v) || v < -0x80000000 || v > 0x7fffffff) {
      throw new RangeError(`Cannot pass ${v} as an i32 parameter`);
    }
    this.#view.setInt32(this.#offset, v, true);
    this.#offset += 4;
    return this;
  }

  /** Appends a 32-bit float. */
  f32(v: number): this {
    this.#view.setFloat32(this.#offset, v, true);
    this.#offset += 4;
    return this;
  }

  /** The bytes, padded to a multiple of 16. */
  get bytes(): ArrayBuffer {
    return this.#view.buffer.slice(
      0,
      Math.max(16, Math.ceil(this.#offset / 16) * 16),
    ) as ArrayBuffer;
  }
}

/** Largest workgroup count per grid dimension that every WebGPU device accepts. */
export const MAX_GROUPS = 65535;

/**
 * A grid of `ceil(n / perGroup)` workgroups folded into two dimensions when it exceeds 65,535.
 * Kernels recover the flat group index as `wid.x + wid.y * num_workgroups.x`.
 *
 * @example
 * ```ts
 * import { grid } from "../mod.ts";
 * if (grid(100, 64).join() !== "2,1") throw new Error("2 groups fit one dimension");
 * // 65,536 groups of 64 do not fit one dimension (65,535 at most): fold into x·y.
 * const [x, y] = grid(65536 * 64, 64);
 * if (x * y < 65536 || x > 65535) throw new Error("folded grid");
 * ```
 */
export function grid(n: number, perGroup: number): [number, number] {
  const groups = Math.ceil(n / perGroup);
  if (groups <= MAX_GROUPS) return [groups, 1];
  const y = Math.ceil(groups / MAX_GROUPS);
  return [Math.ceil(groups / y), y];
}

/** Mesa's CPU drivers stop a shader invocation after this many loop iterations, silently. */
export const LOOP_CAP = 65535;

/**
 * Throws when a kernel would loop more than {@linkcode LOOP_CAP} times in one invocation.
 *
 * @example
 * ```ts
 * import { checkLoops, LOOP_CAP } from "../mod.ts";
 * checkLoops("matmul", LOOP_CAP, "K = 65535"); // at the cap: fine
 * let threw = false;
 * try {
 *   checkLoops("matmul", LOOP_CAP + 1, "K = 65536");
 * } catch (e) {
 *   threw = e instanceof RangeError && e.message.includes('"matmul"');
 * }
 * if (!threw) throw new Error("over the cap must throw, naming the kernel");
 * ```
 */
export function checkLoops(kernel: string, iterations: number, what: string): void {
  if (iterations > LOOP_CAP) {
    throw new RangeError(
      `Cannot run kernel "${kernel}": ${what} needs ${iterations} loop iterations per invocation, over the ${LOOP_CAP} that Mesa's CPU drivers allow`,
    );
  }
}

/** Checks that tensors hold the same number of elements and returns it. */
export function sameSize(kernel: string, ...tensors: Tensor[]): number {
  const n = tensors[0].size;
  for (const t of tensors) {
    if (t.size !== n) {
      throw new RangeError(
        `Cannot run kernel "${kernel}": tensor "${t.label}" has ${t.size} elements, expected ${n}`,
      );
    }
  }
  return n;
}

/** Checks that a tensor holds at least `n` elements. */
export function needSize(kernel: string, t: Tensor, n: number, what: string): void {
  if (t.size < n) {
    throw new RangeError(
      `Cannot run kernel "${kernel}": tensor "${t.label}" (${what}) has ${t.size} elements, needs ${n}`,
    );
  }
}
