/**
 * Seeded random numbers. {@linkcode Rng} is a CPU generator (xoshiro128**, seeded with splitmix32)
 * whose whole state can be saved and restored, so a resumed run draws the same numbers as an
 * uninterrupted one. {@linkcode counterHash} is the counter-based generator shared with the GPU
 * kernels (dropout): the same `(seed, index)` gives the same 32 bits in TS and in WGSL, so a mask can
 * be recomputed in the backward pass instead of stored.
 *
 * @module
 */

/**
 * One round of the "lowbias32" integer hash (good avalanche, two multiplies).
 *
 * @example
 * ```ts
 * import { mix32 } from "../mod.ts";
 * if (mix32(0) !== 0 || mix32(1) !== 0x688990c0) throw new Error("lowbias32");
 * ```
 */
export function mix32(x: number): number {
  x = (x ^ (x >>> 16)) >>> 0;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x = (x ^ (x >>> 15)) >>> 0;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

/**
 * The counter-based generator used by GPU kernels: 32 random bits for element `index` of stream
 * `seed`. Mirrors `counter_hash` in kernels/dropout.wgsl exactly.
 *
 * @example
 * ```ts
 * import { counterHash } from "../mod.ts";
 * if (counterHash(1, 0) === counterHash(2, 0)) throw new Error("streams collide");
 * ```
 */
export function counterHash(seed: number, index: number): number {
  const s = seed >>> 0;
  return mix32((mix32((index + Math.imul(s, 0x9e3779b9)) >>> 0) ^ s) >>> 0);
}

/** The saved state of an {@linkcode Rng}. */
export type RngState = [number, number, number, number];

/**
 * A seeded CPU random number generator (xoshiro128**).
 *
 * @example
 * ```ts
 * import { Rng } from "../mod.ts";
 * const a = new Rng(42), b = new Rng(42);
 * if (a.normal() !== b.normal()) throw new Error("not reproducible");
 * ```
 */
export class Rng {
  #s = new Uint32Array(4);
  #spare: number | undefined;

  /** A generator for `seed` (any 32-bit integer). */
  constructor(seed: number) {
    let x = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0; // splitmix32
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      this.#s[i] = (z ^ (z >>> 16)) >>> 0;
    }
    if (this.#s.every((v) => v === 0)) this.#s[0] = 1;
  }

  /** The next 32 random bits as an unsigned integer. */
  u32(): number {
    const s = this.#s;
    const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Uniform in [0, 1) with 32 bits of resolution. */
  float(): number {
    return this.u32() / 4294967296;
  }

  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.float();
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.float() * n);
  }

  /** Standard normal (Box–Muller; the second value of each pair is kept for the next call). */
  normal(): number {
    if (this.#spare !== undefined) {
      const v = this.#spare;
      this.#spare = undefined;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.float();
    const v = this.float();
    const r = Math.sqrt(-2 * Math.log(u));
    this.#spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** Fills `out` with N(mean, std²) samples and returns it. */
  fillNormal(out: Float32Array | Float64Array, std = 1, mean = 0): typeof out {
    for (let i = 0; i < out.length; i++) out[i] = mean + std * this.normal();
    return out;
  }

  /** Fills `out` with U(lo, hi) samples and returns it. */
  fillUniform(out: Float32Array | Float64Array, lo: number, hi: number): typeof out {
    for (let i = 0; i < out.length; i++) out[i] = this.uniform(lo, hi);
    return out;
  }

  /** Shuffles `items` in place (Fisher–Yates) and returns it. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [items[i], items[j]] = [items[j], items[i]];
    }
    return items;
  }

  /** The generator's state, for checkpoints. A pending Box–Muller value is dropped. */
  get state(): RngState {
    return [this.#s[0], this.#s[1], this.#s[2], this.#s[3]];
  }

  /** Restores a state from {@linkcode state}. */
  set state(s: RngState) {
    this.#s.set(s);
    this.#spare = undefined;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
