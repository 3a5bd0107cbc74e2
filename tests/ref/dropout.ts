/** Plain-loop float64 reference of kernels/dropout.wgsl. */

import { counterHash } from "../../mod.ts";

/** The keep mask: 1 where counterHash(seed, offset + i) >= round(p·2³²) (clamped to u32), else 0. */
export function dropoutMask(n: number, p: number, seed: number, offset = 0): Uint8Array {
  const threshold = Math.min(Math.round(p * 2 ** 32), 2 ** 32 - 1);
  const mask = new Uint8Array(n);
  for (let i = 0; i < n; i++) mask[i] = counterHash(seed, (offset + i) >>> 0) >= threshold ? 1 : 0;
  return mask;
}

/**
 * The scale applied to kept elements: 1/(1 − p), rounded to f32 because the kernel receives it as
 * an f32 parameter (so products x·scale round exactly as the GPU's do when cast to f32).
 */
export function dropoutScale(p: number): number {
  return Math.fround(1 / (1 - p));
}

/** out = x · mask · scale. */
export function dropoutForward(x: Float64Array, p: number, seed: number, offset = 0): Float64Array {
  const mask = dropoutMask(x.length, p, seed, offset);
  const scale = dropoutScale(p);
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i] * mask[i] * scale;
  return out;
}

/** dx += dout · mask · scale. */
export function dropoutBackward(
  dout: Float64Array,
  dx: Float64Array,
  p: number,
  seed: number,
  offset = 0,
): void {
  const mask = dropoutMask(dout.length, p, seed, offset);
  const scale = dropoutScale(p);
  for (let i = 0; i < dout.length; i++) dx[i] += dout[i] * mask[i] * scale;
}
