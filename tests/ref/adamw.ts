/** Plain-loop float64 reference of kernels/adamw.wgsl (torch.optim.AdamW's operation order). */

/** Hyperparameters of one step (see kernels/adamw.ts). */
export interface AdamWRefHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  step: number;
}

/**
 * One AdamW step in place on param, m, v. Masks null = all ones; clipScale multiplies the
 * gradient. Elements with gradMask 0 are left unchanged.
 */
export function adamwStep(
  param: Float64Array,
  grad: Float64Array,
  m: Float64Array,
  v: Float64Array,
  gradMask: Float64Array | null,
  wdMask: Float64Array | null,
  clipScale: number,
  h: AdamWRefHyper,
): void {
  const bc1 = 1 - h.beta1 ** h.step;
  const bc2Sqrt = Math.sqrt(1 - h.beta2 ** h.step);
  const stepSize = h.lr / bc1;
  for (let i = 0; i < param.length; i++) {
    const gm = gradMask ? gradMask[i] : 1;
    if (gm === 0) continue;
    const g = grad[i] * gm * clipScale;
    const wm = wdMask ? wdMask[i] : 1;
    param[i] *= 1 - h.lr * h.weightDecay * wm;
    m[i] = m[i] + (1 - h.beta1) * (g - m[i]);
    v[i] = v[i] * h.beta2 + (1 - h.beta2) * g * g;
    param[i] -= stepSize * (m[i] / (Math.sqrt(v[i]) / bc2Sqrt + h.eps));
  }
}
