/** Plain-loop float64 reference of kernels/gelu.wgsl (tanh form, GPT-2's gelu_new). */

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const GELU_C = 0.044715;

/** out = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))). */
export function geluForward(x: Float64Array): Float64Array {
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    out[i] = 0.5 * v * (1 + Math.tanh(SQRT_2_OVER_PI * (v + GELU_C * v * v * v)));
  }
  return out;
}

/** dx += dout · gelu'(x), gelu'(x) = 0.5·(1 + t) + 0.5·x·(1 − t²)·u', t = tanh(u). */
export function geluBackward(x: Float64Array, dout: Float64Array, dx: Float64Array): void {
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    const t = Math.tanh(SQRT_2_OVER_PI * (v + GELU_C * v * v * v));
    const du = SQRT_2_OVER_PI * (1 + 3 * GELU_C * v * v);
    dx[i] += dout[i] * (0.5 * (1 + t) + 0.5 * v * (1 - t * t) * du);
  }
}
