/**
 * Plain-loop float64 reference of kernels/attention.wgsl (llm.c's attention_forward/backward).
 * qkv is (B,T,3C) with q, k, v at channels [0,C), [C,2C), [2C,3C); head h owns channels
 * h·hs..(h+1)·hs of each, hs = C/H; out and dout are (B,T,C); att is (B,H,T,T).
 */

/** Forward: out (B,T,C) and the causal softmax probabilities att (B,H,T,T), 0 above the diagonal. */
export function attentionForward(
  qkv: Float64Array,
  B: number,
  T: number,
  C: number,
  H: number,
): { out: Float64Array; att: Float64Array } {
  const hs = C / H, scale = 1 / Math.sqrt(hs), C3 = 3 * C;
  const out = new Float64Array(B * T * C);
  const att = new Float64Array(B * H * T * T);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let t = 0; t < T; t++) {
        const q = (b * T + t) * C3 + h * hs;
        const row = ((b * H + h) * T + t) * T;
        let max = -Infinity;
        for (let t2 = 0; t2 <= t; t2++) {
          const k = (b * T + t2) * C3 + C + h * hs;
          let s = 0;
          for (let d = 0; d < hs; d++) s += qkv[q + d] * qkv[k + d];
          att[row + t2] = s * scale;
          max = Math.max(max, s * scale);
        }
        let sum = 0;
        for (let t2 = 0; t2 <= t; t2++) {
          att[row + t2] = Math.exp(att[row + t2] - max);
          sum += att[row + t2];
        }
        for (let t2 = 0; t2 <= t; t2++) att[row + t2] /= sum;
        const o = (b * T + t) * C + h * hs;
        for (let t2 = 0; t2 <= t; t2++) {
          const v = (b * T + t2) * C3 + 2 * C + h * hs;
          for (let d = 0; d < hs; d++) out[o + d] += att[row + t2] * qkv[v + d];
        }
      }
    }
  }
  return { out, att };
}

/** Backward: dqkv (B,T,3C) from dout (B,T,C), the inputs qkv and forward's att. */
export function attentionBackward(
  dout: Float64Array,
  qkv: Float64Array,
  att: Float64Array,
  B: number,
  T: number,
  C: number,
  H: number,
): Float64Array {
  const hs = C / H, scale = 1 / Math.sqrt(hs), C3 = 3 * C;
  const dqkv = new Float64Array(B * T * C3);
  const dprob = new Float64Array(T);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let t = 0; t < T; t++) {
        const row = ((b * H + h) * T + t) * T;
        const o = (b * T + t) * C + h * hs;
        const q = (b * T + t) * C3 + h * hs;
        // out = Σ att·v: dv += att·dout, dprob = dout·v.
        let dot = 0;
        for (let t2 = 0; t2 <= t; t2++) {
          const v = (b * T + t2) * C3 + 2 * C + h * hs;
          let s = 0;
          for (let d = 0; d < hs; d++) {
            s += dout[o + d] * qkv[v + d];
            dqkv[v + d] += att[row + t2] * dout[o + d];
          }
          dprob[t2] = s;
          dot += att[row + t2] * s;
        }
        // Softmax backward, then the scaled dot product q·k.
        for (let t2 = 0; t2 <= t; t2++) {
          const dscore = att[row + t2] * (dprob[t2] - dot) * scale;
          const k = (b * T + t2) * C3 + C + h * hs;
          for (let d = 0; d < hs; d++) {
            dqkv[q + d] += dscore * qkv[k + d];
            dqkv[k + d] += dscore * qkv[q + d];
          }
        }
      }
    }
  }
  return dqkv;
}
