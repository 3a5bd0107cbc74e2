/**
 * Plain-loop float64 reference of kernels/decode.wgsl. H query heads of size hs = C/H, kvHeads =
 * Hkv key/value heads (Hkv divides H), query head h reads key/value head ⌊h/g⌋, g = H/Hkv. qkv is
 * (B,Tn,W), W = C + 2·KV with KV = Hkv·hs (q heads at [0,C), k heads at [C, C+KV), v heads at
 * [C+KV, W)); cache is (B,S,2·KV), keys at [0,KV) and values at [KV,2·KV) of each position; start
 * is (B); out is (B,Tn,C).
 */

/**
 * cache[b, start[b]+t, :] = qkv[b, t, C:W], in place (other rows untouched). Only kvHeads/H
 * matters: the defaults (H = 1, kvHeads = H) are multi-head, W = 3C.
 */
export function decodeAppend(
  qkv: ArrayLike<number>,
  cache: Float64Array,
  start: ArrayLike<number>,
  B: number,
  Tn: number,
  S: number,
  C: number,
  H = 1,
  kvHeads = H,
): void {
  const KV = kvHeads * C / H, W = C + 2 * KV;
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < Tn; t++) {
      const dst = (b * S + start[b] + t) * 2 * KV, src = (b * Tn + t) * W + C;
      for (let c = 0; c < 2 * KV; c++) cache[dst + c] = qkv[src + c];
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
  kvHeads = H,
): Float64Array {
  const hs = C / H, scale = 1 / Math.sqrt(hs), KV = kvHeads * hs, W = C + 2 * KV;
  const out = new Float64Array(B * Tn * C);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < Tn; t++) {
      const L = start[b] + t + 1;
      for (let h = 0; h < H; h++) {
        const kv = Math.floor(h / (H / kvHeads)) * hs;
        const q = (b * Tn + t) * W + h * hs;
        const scores = new Float64Array(L);
        let max = -Infinity;
        for (let j = 0; j < L; j++) {
          const k = (b * S + j) * 2 * KV + kv;
          let s = 0;
          for (let d = 0; d < hs; d++) s += qkv[q + d] * cache[k + d];
          scores[j] = s * scale;
          max = Math.max(max, scores[j]);
        }
        let sum = 0;
        for (let j = 0; j < L; j++) sum += scores[j] = Math.exp(scores[j] - max);
        const o = (b * Tn + t) * C + h * hs;
        for (let j = 0; j < L; j++) {
          const v = (b * S + j) * 2 * KV + KV + kv;
          for (let d = 0; d < hs; d++) out[o + d] += scores[j] / sum * cache[v + d];
        }
      }
    }
  }
  return out;
}
