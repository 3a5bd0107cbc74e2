/** Plain-loop float64 reference of kernels/rmsnorm.wgsl (Hugging Face LlamaRMSNorm). */

/** What the forward pass returns: out (N,C), and rstd (N) saved for backward. */
export interface RMSNormOut {
  out: Float64Array;
  rstd: Float64Array;
}

/** x is (N,C), weight (C): out = weight·(x·rstd), rstd = 1/√(mean(x²) + eps). */
export function rmsnormForward(
  x: Float64Array,
  weight: Float64Array,
  N: number,
  C: number,
  eps: number,
): RMSNormOut {
  const out = new Float64Array(N * C), rstd = new Float64Array(N);
  for (let n = 0; n < N; n++) {
    const row = n * C;
    let ms = 0;
    for (let c = 0; c < C; c++) ms += x[row + c] ** 2;
    ms /= C;
    const s = 1 / Math.sqrt(ms + eps);
    for (let c = 0; c < C; c++) out[row + c] = weight[c] * (x[row + c] * s);
    rstd[n] = s;
  }
  return { out, rstd };
}

/**
 * dx (N,C) += (dnorm − norm·mean(dnorm·norm))·rstd with norm = x·rstd, dnorm = weight·dout;
 * dweight (C) += Σ dout·norm (skipped when null).
 */
export function rmsnormBackward(
  dout: Float64Array,
  x: Float64Array,
  weight: Float64Array,
  rstd: Float64Array,
  dx: Float64Array,
  dweight: Float64Array | null,
  N: number,
  C: number,
): void {
  for (let n = 0; n < N; n++) {
    const row = n * C;
    let dnormNormMean = 0;
    for (let c = 0; c < C; c++) {
      dnormNormMean += weight[c] * dout[row + c] * x[row + c] * rstd[n];
    }
    dnormNormMean /= C;
    for (let c = 0; c < C; c++) {
      const norm = x[row + c] * rstd[n];
      const dnorm = weight[c] * dout[row + c];
      dx[row + c] += (dnorm - norm * dnormNormMean) * rstd[n];
      if (dweight) dweight[c] += dout[row + c] * norm;
    }
  }
}
