/**
 * Plain-loop float64 reference of the log-sum-exp that kernels/flash_attention.ts saves: for query
 * row t of head h, lse = log Σ_{t2 ≤ t} exp(scale · q_t·k_t2), scale = 1/√hs, in the qkv layout of
 * tests/ref/attention.ts (query head h reads key/value head ⌊h/g⌋). Its out and dqkv are those of
 * attentionForward / attentionBackward there.
 */

/** lse (B,H,T) of the causal scores. */
export function attentionLse(
  qkv: Float64Array,
  B: number,
  T: number,
  C: number,
  H: number,
  kvHeads = H,
): Float64Array {
  const hs = C / H, scale = 1 / Math.sqrt(hs), W = C + 2 * kvHeads * hs, g = H / kvHeads;
  const lse = new Float64Array(B * H * T);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const kOff = C + Math.floor(h / g) * hs;
      for (let t = 0; t < T; t++) {
        const scores: number[] = [];
        for (let t2 = 0; t2 <= t; t2++) {
          let s = 0;
          for (let d = 0; d < hs; d++) {
            s += qkv[(b * T + t) * W + h * hs + d] * qkv[(b * T + t2) * W + kOff + d];
          }
          scores.push(s * scale);
        }
        const max = Math.max(...scores);
        lse[(b * H + h) * T + t] = max +
          Math.log(scores.reduce((a, s) => a + Math.exp(s - max), 0));
      }
    }
  }
  return lse;
}
