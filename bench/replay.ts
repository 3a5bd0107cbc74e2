/**
 * Wall-clock profile of a training step by replay: the step's dispatches are recorded
 * ({@linkcode Gpu.recorder}), then each kernel's dispatches are submitted again on their own, many
 * times over in one batch with one wait, and timed by the wall clock and by this process's CPU
 * time. Unlike timestamp queries this needs no adapter feature and sees every kernel (on lavapipe
 * the timestamps miss the texture-sampling GEMMs); the price is that each kernel runs without its
 * neighbours in the cache, so the parts need not add up to the step exactly (the sum is reported
 * next to the measured step).
 *
 * @module
 */

import process from "node:process";
import { type Gpu, type RecordedDispatch, Tensor } from "../mod.ts";

/** Time of one kernel's recorded dispatches, all of them together. */
export interface ReplayRow {
  /** Kernel name, e.g. `matmul.gemm_texture.NN44.16x16.bias`. */
  name: string;
  /** Dispatches recorded. */
  dispatches: number;
  /** Wall milliseconds (the replay's fixed submit-and-wait cost subtracted). */
  ms: number;
  /** CPU milliseconds of this process (lavapipe's threads run in-process). */
  cpuMs: number;
  /** Floating-point operations, when the kernel is a GEMM (shape read from its parameters). */
  flop?: number;
}

/**
 * Replays `recorded` kernel by kernel. Each kernel's dispatches are encoded `reps` times into one
 * batch, submitted once and waited for once; the cost of a submit and wait of one dispatch,
 * measured the same way, is subtracted, and the time is divided by `reps`. The tensors the
 * dispatches bind must still be alive; dispatches that bound a since-released tensor are skipped.
 */
export async function replayProfile(
  gpu: Gpu,
  recorded: readonly RecordedDispatch[],
  reps = 3,
): Promise<ReplayRow[]> {
  const byKernel = new Map<string, RecordedDispatch[]>();
  for (const d of recorded) {
    // Transient tensors (e.g. the embedding's backward index) are gone after the step: skip.
    if (d.bindings.some((b) => b instanceof Tensor && b.released)) continue;
    const list = byKernel.get(d.kernel.name) ?? [];
    list.push(d);
    byKernel.set(d.kernel.name, list);
  }
  const time = async (list: readonly RecordedDispatch[], n: number) => {
    const batch = gpu.batch();
    for (let r = 0; r < n; r++) {
      for (const d of list) batch.dispatch(d.kernel, d.bindings, d.params, d.groups);
    }
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await batch.submit();
    await gpu.sync();
    const cpu = process.cpuUsage(c0);
    return { ms: performance.now() - t0, cpuMs: (cpu.user + cpu.system) / 1000 };
  };
  // The fixed cost of a submit and a wait (one trivial dispatch), best of 3.
  const trivial = recorded.slice(0, 1);
  let fixed = { ms: Infinity, cpuMs: Infinity };
  for (let i = 0; i < 3; i++) {
    const t = await time(trivial, 1);
    if (t.ms < fixed.ms) fixed = t;
  }
  const rows: ReplayRow[] = [];
  for (const [name, list] of byKernel) {
    await time(list, 1); // warm-up
    const t = await time(list, reps);
    const flop = list.reduce((a, d) => a + (gemmFlop(d) ?? NaN), 0);
    rows.push({
      name,
      dispatches: list.length,
      ms: Math.max(0, t.ms - fixed.ms) / reps,
      cpuMs: Math.max(0, t.cpuMs - fixed.cpuMs) / reps,
      ...(Number.isFinite(flop) ? { flop } : {}),
    });
  }
  return rows;
}

/**
 * 2·M·N·K·batch of a GEMM dispatch, read from the matmul parameter block (M, N, K are its first
 * three u32 words; the batch count is the z workgroup count), or undefined for other kernels.
 */
function gemmFlop(d: RecordedDispatch): number | undefined {
  const name = d.kernel.name;
  if (!name.startsWith("matmul.gemm") || !d.params) return undefined;
  if (d.params.byteLength < 12) return undefined;
  const [m, n, k] = new Uint32Array(d.params, 0, 3);
  return 2 * m * n * k * d.groups[2];
}
