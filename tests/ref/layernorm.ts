/** Plain-loop float64 reference of kernels/layernorm.wgsl (GPT-2 LayerNorm, biased variance). */

/** What the forward pass returns: out (N,C), and mean (N), rstd (N) saved for backward. */
export interface LayerNormOut {
  out: Float64Array;
  mean: Float64Array;
  rstd: Float64Array;
}

/** x is (N,C), weight and bias (C): out = (x − mean)·rstd·weight + bias, rstd = 1/√(var + eps). */
export function layernormForward(
  x: Float64Array,
  weight: Float64Array,
  bias: Float64Array,
  N: number,
  C: number,
  eps = 1e-5,
): LayerNormOut {
  const out = new Float64Array(N * C), mean = new Float64Array(N), rstd = new Float64Array(N);
  for (let n = 0; n < N; n++) {
    const row = n * C;
    let m = 0;
    for (let c = 0; c < C; c++) m += x[row + c];
    m /= C;
    let v = 0;
    for (let c = 0; c < C; c++) v += (x[row + c] - m) ** 2;
    v /= C;
    const s = 1 / Math.sqrt(v + eps);
    for (let c = 0; c < C; c++) out[row + c] = (x[row + c] - m) * s * weight[c] + bias[c];
    mean[n] = m;
    rstd[n] = s;
  }
  return { out, mean, rstd };
}

/**
 * dx (N,C) += (dnorm − mean(dnorm) − norm·mean(dnorm·norm))·rstd with dnorm = weight·dout;
 * dweight (C) += Σ dout·norm; dbias (C) += Σ dout (each skipped when null).
 */
export function layernormBackward(
  dout: Float64Array,
  x: Float64Array,
  weight: Float64Array,
  mean: Float64Array,
  rstd: Float64Array,
  dx: Float64Array,
  dweight: Float64Array | null,
  dbias: Float64Array | null,
  N: number,
  C: number,
): void {
  for (let n = 0; n < N; n++) {
    const row = n * C;
    let dnormMean = 0, dnormNormMean = 0;
    for (let c = 0; c < C; c++) {
      const norm = (x[row + c] - mean[n]) * rstd[n];
      const dnorm = weight[c] * dout[row + c];
      dnormMean += dnorm;
      dnormNormMean += dnorm * norm;
    }
    dnormMean /= C;
    dnormNormMean /= C;
    for (let c = 0; c < C; c++) {
      const norm = (x[row + c] - mean[n]) * rstd[n];
      const dnorm = weight[c] * dout[row + c];
      dx[row + c] += (dnorm - dnormMean - norm * dnormNormMean) * rstd[n];
      if (dweight) dweight[c] += dout[row + c] * norm;
      if (dbias) dbias[c] += dout[row + c];
    }
  }
}
