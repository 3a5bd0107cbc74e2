/**
 * Shared test helpers: the GPU, poisoned outputs, tolerance checks that report the first differing
 * values and the max error, random data, and central finite differences in float64.
 *
 * @module
 */

import { Gpu, type Rng, type Tensor } from "../mod.ts";

/** The shared GPU. Tests fail (never skip) when there is no adapter. */
export function gpu(): Promise<Gpu> {
  return Gpu.get();
}

/** A tensor filled with NaN, so an element the kernel forgets to write fails the comparison. */
export function poisoned(g: Gpu, shape: readonly number[], label = "out"): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return g.tensor(shape, new Float32Array(n).fill(NaN), label);
}

/** A tensor filled with `data`. */
export function upload(
  g: Gpu,
  shape: readonly number[],
  data: ArrayLike<number>,
  label = "in",
): Tensor {
  return g.tensor(shape, Float32Array.from(data), label);
}

/** `n` samples of N(0, std²) in float64 (rounded to float32, so GPU and reference see equal inputs). */
export function randn(rng: Rng, n: number, std = 1): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.fround(rng.normal() * std);
  return out;
}

/** Tolerance: |actual − expected| ≤ atol + rtol·|expected| elementwise. */
export interface Tolerance {
  rtol: number;
  atol: number;
}

/**
 * Asserts that `actual` matches `expected` elementwise within the tolerance; NaN or a length
 * mismatch fails. On failure the message gives the max error and the first differing values.
 */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: Tolerance,
  name: string,
): void {
  if (actual.length !== expected.length) {
    throw new Error(`${name}: length ${actual.length}, expected ${expected.length}`);
  }
  let maxErr = 0;
  let maxAt = -1;
  const bad: string[] = [];
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i], e = expected[i];
    const err = Math.abs(a - e);
    const ok = Number.isFinite(a) && err <= tol.atol + tol.rtol * Math.abs(e);
    if (!(err <= maxErr) || Number.isNaN(err)) {
      maxErr = Number.isNaN(err) ? Infinity : Math.max(maxErr, err);
      maxAt = i;
    }
    if (!ok && bad.length < 5) bad.push(`[${i}] got ${a}, expected ${e}`);
  }
  if (bad.length > 0) {
    throw new Error(
      `${name}: ${
        bad.length === 5 ? "5+" : bad.length
      } elements outside rtol ${tol.rtol}, atol ${tol.atol}; ` +
        `max error ${maxErr} at [${maxAt}]; first: ${bad.join("; ")}`,
    );
  }
}

/**
 * Central finite difference of a scalar function of `x` with respect to `x[i]`, in float64:
 * (f(x + h·eᵢ) − f(x − h·eᵢ)) / 2h. `x` is restored afterwards.
 */
export function centralDiff(
  f: (x: Float64Array) => number,
  x: Float64Array,
  i: number,
  h = 1e-6,
): number {
  const x0 = x[i];
  x[i] = x0 + h;
  const fp = f(x);
  x[i] = x0 - h;
  const fm = f(x);
  x[i] = x0;
  return (fp - fm) / (2 * h);
}

/** Dot product in float64 (for building scalar losses L = Σ out·w from random weights w). */
export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** Releases tensors. */
export function release(...ts: Tensor[]): void {
  for (const t of ts) t.release();
}
