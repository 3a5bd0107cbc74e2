/**
 * Learning-rate schedules: linear warmup then cosine decay to a floor.
 *
 * @module
 */

/** A warmup + cosine schedule. */
export interface ScheduleConfig {
  /** Peak learning rate. */
  lr: number;
  /** Steps of linear warmup from lr/warmup to lr (0: none). */
  warmupSteps: number;
  /** Total optimizer steps; the cosine reaches the floor at the last one. */
  totalSteps: number;
  /** Floor as a fraction of lr (default 0.1, as nanoGPT's min_lr = lr/10). */
  minLrRatio?: number;
}

/**
 * The learning rate at optimizer step `step` (1-based): `lr·step/warmup` during warmup, then
 * `floor + (lr − floor)·(1 + cos(π·progress))/2` with progress from 0 to 1 over the remaining steps.
 *
 * @example
 * ```ts
 * import { learningRate } from "../mod.ts";
 * const s = { lr: 1e-3, warmupSteps: 10, totalSteps: 100 };
 * if (learningRate(s, 10) !== 1e-3 || Math.abs(learningRate(s, 100) - 1e-4) > 1e-12) throw new Error();
 * ```
 */
export function learningRate(s: ScheduleConfig, step: number): number {
  const floor = s.lr * (s.minLrRatio ?? 0.1);
  if (s.warmupSteps > 0 && step <= s.warmupSteps) return (s.lr * step) / s.warmupSteps;
  const span = s.totalSteps - s.warmupSteps;
  if (span <= 0) return s.lr;
  const progress = Math.min(1, Math.max(0, (step - s.warmupSteps) / span));
  return floor + (s.lr - floor) * 0.5 * (1 + Math.cos(Math.PI * progress));
}
