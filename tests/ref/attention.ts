/**
 * Plain-loop float64 reference of kernels/attention.wgsl (llm.c's attention_forward/backward) with
 * grouped-query heads (Hugging Face's `repeat_kv`): H query heads of size hs = C/H, kvHeads = Hkv
 * key/value heads (Hkv divides H, default H), query head h reads key/value head ⌊h/g⌋,
 * g = H/Hkv. qkv is (B,T,W), W = (H + 2·Hkv)·hs: q heads at channels [0,C), k heads at
 * [C, C + Hkv·hs), v heads at [C + Hkv·hs, W), head j at j·hs of its part (with Hkv = H: (B,T,3C)
 * as GPT-2's `c_attn` writes it); out and dout are (B,T,C); att is (B,H,T,T).
 * With `dropout` the values are weighted by drop(att) = att·mask·scale, the mask of
 * tests/ref/dropout.ts over the flat att index ((b·H + h)·T + t)·T + t2; att stays undropped.
 */

import { dropoutMask, dropoutScale } from "./dropout.ts";

/** Attention-probability dropout: drop probability p, mask seed. */
export interface DropoutSpec {
  p: number;
  seed: number;
}

/** Attention-probability dropout in a whole-model reference: probability p, each layer's mask seed. */
export interface LayerDropout {
  p: number;
  seed: (layer: number) => number;
}

/**
 * The factor of each att element under dropout (mask·scale: 0 or 1/(1 − p) rounded to f32, as the
 * kernel receives it), or all ones without.
 */
export function attentionDropFactors(n: number, dropout?: DropoutSpec): Float64Array {
  if (!dropout || dropout.p === 0) return new Float64Array(n).fill(1);
  const scale = dropoutScale(dropout.p);
  return Float64Array.from(dropoutMask(n, dropout.p, dropout.seed), (m) => m * scale);
}

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
  dropout?: DropoutSpec,
): { out: Float64Array; att: Float64Array } {
  const hs = C / H, scale = 1 / Math.sqrt(hs), W = C + 2 * kvHeads * hs;
  const out = new Float64Array(B * T * C);
  const att = new Float64Array(B * H * T * T);
  const keep = attentionDropFactors(att.length, dropout);
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
          const v = (b * T + t2) * W + at.v, weight = att[row + t2] * keep[row + t2];
          for (let d = 0; d < hs; d++) out[o + d] += weight * qkv[v + d];
        }
      }
    }
  }
  return { out, att };
}

/**
 * Backward: dqkv (B,T,W) from dout (B,T,C), the inputs qkv and forward's (undropped) att; a
 * key/value head's dk and dv sum over the query heads that read it. `dropout` must be the forward's.
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
  dropout?: DropoutSpec,
): Float64Array {
  const hs = C / H, scale = 1 / Math.sqrt(hs), W = C + 2 * kvHeads * hs;
  const dqkv = new Float64Array(B * T * W);
  const dprob = new Float64Array(T);
  const keep = attentionDropFactors(att.length, dropout);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const at = heads(C, H, kvHeads, h);
      for (let t = 0; t < T; t++) {
        const row = ((b * H + h) * T + t) * T;
        const o = (b * T + t) * C + h * hs;
        const q = (b * T + t) * W + at.q;
        // out = Σ drop(att)·v: dv += drop(att)·dout, dprob = dL/d att = keep·(dout·v).
        let dot = 0;
        for (let t2 = 0; t2 <= t; t2++) {
          const v = (b * T + t2) * W + at.v, k = keep[row + t2];
          let s = 0;
          for (let d = 0; d < hs; d++) {
            s += dout[o + d] * qkv[v + d];
            dqkv[v + d] += att[row + t2] * k * dout[o + d];
          }
          dprob[t2] = s * k;
          dot += att[row + t2] * dprob[t2];
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
