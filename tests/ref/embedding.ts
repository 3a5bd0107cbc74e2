/** Plain-loop float64 reference of kernels/embedding.wgsl. */

/** out (B,T,C) = wte[ids[b,t]] (V,C) + wpe[t] (≥T,C), or wte[ids[b,t]] alone when wpe is null. */
export function embeddingForward(
  ids: ArrayLike<number>,
  wte: Float64Array,
  wpe: Float64Array | null,
  B: number,
  T: number,
  C: number,
): Float64Array {
  const out = new Float64Array(B * T * C);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const p = b * T + t;
      for (let c = 0; c < C; c++) out[p * C + c] = wte[ids[p] * C + c] + (wpe ? wpe[t * C + c] : 0);
    }
  }
  return out;
}

/** dwte[ids[b,t]] += dout[b,t]; dwpe[t] += dout[b,t] (either may be null). */
export function embeddingBackward(
  ids: ArrayLike<number>,
  dout: Float64Array,
  dwte: Float64Array | null,
  dwpe: Float64Array | null,
  B: number,
  T: number,
  C: number,
): void {
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const p = b * T + t;
      for (let c = 0; c < C; c++) {
        if (dwte) dwte[ids[p] * C + c] += dout[p * C + c];
        if (dwpe) dwpe[t * C + c] += dout[p * C + c];
      }
    }
  }
}
