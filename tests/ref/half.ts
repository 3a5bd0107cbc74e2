/**
 * Plain float64 reference of half-precision storage (runtime/tensor.ts `encodeHalf`, and the
 * kernels' unpacking): rounding a value to the nearest f16 or bf16, ties to even, written from the
 * formats' definitions (not from the bit tricks the runtime uses).
 */

/** Significand bits (with the implicit one), smallest normal exponent and largest finite value. */
const FORMATS = {
  f16: { p: 11, eMin: -14, max: 65504 },
  bf16: { p: 8, eMin: -126, max: (2 - 2 ** -7) * 2 ** 127 },
} as const;

/** x rounded to the nearest `dtype` value, ties to even; beyond the largest finite, ±Infinity. */
export function roundHalfRef(x: number, dtype: "f16" | "bf16"): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const { p, eMin, max } = FORMATS[dtype];
  const e = Math.max(Math.floor(Math.log2(Math.abs(x))), eMin);
  // log2 may be off by one near powers of two: fix e so that 2^e ≤ |x| < 2^(e+1) (or e = eMin).
  let exp = e;
  if (exp > eMin && 2 ** exp > Math.abs(x)) exp--;
  if (2 ** (exp + 1) <= Math.abs(x)) exp++;
  const ulp = 2 ** (Math.max(exp, eMin) - (p - 1));
  const q = x / ulp, fl = Math.floor(q), frac = q - fl;
  const n = frac > 0.5 || (frac === 0.5 && fl % 2 !== 0) ? fl + 1 : fl;
  const r = n * ulp;
  // IEEE overflow: round to Infinity from halfway past the largest finite value on.
  if (Math.abs(r) > max) return x > 0 ? Infinity : -Infinity;
  return r === 0 ? (x < 0 ? -0 : 0) : r;
}

/** Every element rounded with {@linkcode roundHalfRef}. */
export function roundAllRef(x: ArrayLike<number>, dtype: "f16" | "bf16"): Float64Array {
  return Float64Array.from(x, (v) => roundHalfRef(v, dtype));
}
