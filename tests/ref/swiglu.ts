/**
 * Plain-loop float64 reference of kernels/swiglu.wgsl: out = silu(gate)·up, silu(g) = g·σ(g).
 * Written straight from the definitions (σ(g) = 1/(1 + e^(−g)), 1 − σ as a difference), not in the
 * kernel's cancellation-free form, so the two are independent. In float64 e^(−g) overflows to
 * Infinity only for g < −709, where σ = 1/Infinity = 0 is also the correctly rounded f32 value, so
 * no NaN appears for any finite g.
 */

function sigmoid(g: number): number {
  return 1 / (1 + Math.exp(-g));
}

/** out = silu(gate)·up. */
export function swigluForward(gate: Float64Array, up: Float64Array): Float64Array {
  const out = new Float64Array(gate.length);
  for (let i = 0; i < gate.length; i++) out[i] = gate[i] * sigmoid(gate[i]) * up[i];
  return out;
}

/** dgate = dout·up·silu'(gate), dup = dout·silu(gate), silu'(g) = σ(g)·(1 + g·(1 − σ(g))). */
export function swigluBackward(
  gate: Float64Array,
  up: Float64Array,
  dout: Float64Array,
): { dgate: Float64Array; dup: Float64Array } {
  const n = gate.length;
  const dgate = new Float64Array(n), dup = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const g = gate[i], s = sigmoid(g);
    dgate[i] = dout[i] * up[i] * s * (1 + g * (1 - s));
    dup[i] = dout[i] * g * s;
  }
  return { dgate, dup };
}
