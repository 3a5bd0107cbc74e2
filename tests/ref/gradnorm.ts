/** Plain-loop float64 reference of kernels/gradnorm.wgsl. */

/** [norm, clipScale]: norm = √Σ (g·mask)² over all tensors; clipScale = min(1, maxNorm/(norm + 1e-6)), 1 if maxNorm ≤ 0 or ∞. */
export function gradNorm(
  grads: { grad: Float64Array; mask?: Float64Array | null }[],
  maxNorm: number,
): [number, number] {
  let sum = 0;
  for (const { grad, mask } of grads) {
    for (let i = 0; i < grad.length; i++) {
      const x = grad[i] * (mask ? mask[i] : 1);
      sum += x * x;
    }
  }
  const norm = Math.sqrt(sum);
  const clip = maxNorm > 0 && Number.isFinite(maxNorm);
  return [norm, clip ? Math.min(1, maxNorm / (norm + 1e-6)) : 1];
}
