/**
 * Plain-loop float64 reference of kernels/rope.wgsl (Hugging Face Llama's rotary embedding). The
 * angles are computed as Hugging Face computes them, in f32; the rotation itself is in float64.
 */

/** The shape of a fused qkv buffer (B,T,(H + 2·Hkv)·d) and the position of its t = 0. */
export interface RopeShape {
  B: number;
  T: number;
  H: number;
  Hkv: number;
  d: number;
  offset: number;
  theta: number;
}

/**
 * angle(pos, i) as Hugging Face computes it: `inv_freq = 1.0 / (θ ** (arange(0, d, 2).float() / d))`
 * with every operation in f32, then `pos·inv_freq[i]` as one f32 product.
 */
export function ropeAngle(theta: number, d: number, pos: number, i: number): number {
  const invFreq = Math.fround(1 / Math.fround(Math.fround(theta) ** Math.fround((2 * i) / d)));
  return Math.fround(Math.fround(pos) * invFreq);
}

/**
 * Returns a copy of qkv (B,T,(H + 2·Hkv)·d) with each q and k head rotated by `sign`·angle:
 * x[i] = x1·cos − x2·sin·sign, x[i + d/2] = x2·cos + x1·sin·sign (x1 = x[i], x2 = x[i + d/2]).
 */
function rotate(qkv: Float64Array, s: RopeShape, sign: number): Float64Array {
  const { B, T, H, Hkv, d, offset, theta } = s;
  const half = d / 2, rowLen = (H + 2 * Hkv) * d;
  const out = qkv.slice();
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      for (let i = 0; i < half; i++) {
        const angle = ropeAngle(theta, d, offset + t, i);
        const c = Math.cos(angle), sn = sign * Math.sin(angle);
        // The H q heads and then the Hkv k heads; the v heads after them are copied unchanged.
        for (let h = 0; h < H + Hkv; h++) {
          const a = (b * T + t) * rowLen + h * d + i;
          const x1 = qkv[a], x2 = qkv[a + half];
          out[a] = x1 * c - x2 * sn;
          out[a + half] = x2 * c + x1 * sn;
        }
      }
    }
  }
  return out;
}

/** q' = q·cos + rotate_half(q)·sin, the same for k, v unchanged: returns the new (B,T,(H+2Hkv)·d). */
export function ropeForward(qkv: Float64Array, s: RopeShape): Float64Array {
  return rotate(qkv, s, 1);
}

/** The transpose of ropeForward applied to dqkv (rotation by −angle; dv unchanged): returns dx. */
export function ropeBackward(dqkv: Float64Array, s: RopeShape): Float64Array {
  return rotate(dqkv, s, -1);
}
