/** Plain-loop float64 reference of kernels/residual.wgsl. */

/** out = a + b. */
export function residualForward(a: Float64Array, b: Float64Array): Float64Array {
  const out = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] + b[i];
  return out;
}

/** da += dout; db += dout. */
export function residualBackward(dout: Float64Array, da: Float64Array, db: Float64Array): void {
  for (let i = 0; i < dout.length; i++) {
    da[i] += dout[i];
    db[i] += dout[i];
  }
}
