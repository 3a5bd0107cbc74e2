/**
 * Plain-loop float64 reference of kernels/decode.wgsl. qkv is (B,Tn,3C) (q, k, v at channels
 * [0,C), [C,2C), [2C,3C); head h owns channels h·hs..(h+1)·hs, hs = C/H); cache is (B,S,2C), key
 * at [0,C) and value at [C,2C) of each position; start is (B); out is (B,Tn,C).
 */

/** cache[b, start[b]+t, :] = qkv[b, t, C:3C], in place (other rows untouched). */
export function decodeAppend(
  qkv: ArrayLike<number>,
  cache: Float64Array,
  start: ArrayLike<number>,
  B: number,
  Tn: number,
  S: number,
  C: number,
): void {
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < Tn; t++) {
      const dst = (b * S + start[b] + t) * 2 * C, src = (b * Tn + t) * 3 * C + C;
      for (let c = 0; c < 2 * C; c++) cache[dst + c] = qkv[src + c];
    }
  }
}

/** out (B,Tn,C): row t of sequence b attends to cached positions 0..start[b]+t. */
export function decodeAttend(
  qkv: ArrayLike<number>,
  cache: ArrayLike<number>,
  start: ArrayLike<number>,
  B: number,
  Tn: number,
  S: number,
  C: number,
  H: number,
): Float64Array {
  const hs = C / H, scale = 1 / Math.sqrt(hs);
  const out = new Float64Array(B * Tn * C);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < Tn; t++) {
      const L = start[b] + t + 1;
      for (let h = 0; h < H; h++) {
        const q = (b * Tn + t) * 3 * C + h * hs;
        const scores = new Float64Array(L);
        let max = -Infinity;
        for (let j = 0; j < L; j++) {
          const k = (b * S + j) * 2 * C + h * hs;
          let s = 0;
          for (let d = 0; d < hs; d++) s += qkv[q + d] * cache[k + d];
          scores[j] = s * scale;
          max = Math.max(max, scores[j]);
        }
        let sum = 0;
        for (let j = 0; j < L; j++) sum += scores[j] = Math.exp(scores[j] - max);
        const o = (b * Tn + t) * C + h * hs;
        for (let j = 0; j < L; j++) {
          const v = (b * S + j) * 2 * C + C + h * hs;
          for (let d = 0; d < hs; d++) out[o + d] += scores[j] / sum * cache[v + d];
        }
      }
    }
  }
  return out;
}
