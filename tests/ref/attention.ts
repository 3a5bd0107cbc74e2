/**
 * Plain-loop float64 reference of kernels/attention.wgsl (llm.c's attention_forward/backward) with
 * grouped-query heads (Hugging Face's `repeat_kv`): H query heads of size hs = C/H, kvHeads = Hkv
 * key/value heads (Hkv divides H, default H), query head h reads key/value head ⌊h/g⌋,
 * g = H/Hkv. qkv is (B,T,W), W = (H + 2·Hkv)·hs: q heads at channels [0,C), k heads at
 * [C, C + Hkv·hs), v heads at [C + Hkv·hs, W), head j at j·hs of its part (with Hkv = H: (B,T,3C)
 * as GPT-2's `c_attn` writes it); out and dout are (B,T,C); att is (B,H,T,T).
 */

/** Channel offsets of query head h's q and of its key/value head's k and v within a qkv row. */
function heads(C: number, H: number, kvHeads: number, h: number) {
  const hs = C / H, kv = Math.floor(h / (H / kvHeads));
  return { q: h * hs, k: C + kv * hs, v: C + (kvHeads + kv) * hs };
}

/** Forward: out (B,T,C) and the causal softmax probabilities att (B,H,T,T), 0 above the diagonal. */
export function attentionForward(
  qkv: Float64Array,
  B: number,
  T: number,
  C: number,
  H: number,
  kvHeads = H,
): { out: Float64Array; att: Float64Array } {
  const hs = C / H, scale = 1 / Math.sqrt(hs), W = C + 2 * kvHeads * hs;
  const out = new Float64Array(B * T * C);
  const att = new Float64Array(B * H * T * T);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const at = heads(C, H, kvHeads, h);
      for (let t = 0; t < T; t++) {
        const q = (b * T + t) * W + at.q;
        const row = ((b * H + h) * T + t) * T;
        let max = -Infinity;
        for (let t2 = 0; t2 <= t; t2++) {
          const k = (b * T + t2) * W + at.k;
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
          const v = (b * T + t2) * W + at.v;
          for (let d = 0; d < hs; d++) out[o + d] += att[row + t2] * qkv[v + d];
        }
      }
    }
  }
  return { out, att };
}

/**
 * Backward: dqkv (B,T,W) from dout (B,T,C), the inputs qkv and forward's att; a key/value head's
 * dk and dv sum over the query heads that read it.
 */
export function attentionBackward(
  dout: Float64Array,
  qkv: Float64Array,
  att: Float64Array,
  B: number,
  T: number,
  C: number,
  H: number,
  kvHeads = H,
): Float64Array {
  const hs = C / H, scale = 1 / Math.sqrt(hs), W = C + 2 * kvHeads * hs;
  const dqkv = new Float64Array(B * T * W);
  const dprob = new Float64Array(T);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const at = heads(C, H, kvHeads, h);
      for (let t = 0; t < T; t++) {
        const row = ((b * H + h) * T + t) * T;
        const o = (b * T + t) * C + h * hs;
        const q = (b * T + t) * W + at.q;
        // out = Σ att·v: dv += att·dout, dprob = dout·v.
        let dot = 0;
        for (let t2 = 0; t2 <= t; t2++) {
          const v = (b * T + t2) * W + at.v;
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
          const k = (b * T + t2) * W + at.k;
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
