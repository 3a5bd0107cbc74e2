/**
 * `deno task train`: the main job. Until the decoder and trainer land (issue 3), it checks that
 * WebGPU works here and that the kernels compile and agree with a CPU computation, and says so.
 *
 * @module
 */

import { Gpu, Residual } from "../mod.ts";

if (import.meta.main) {
  const gpu = await Gpu.get();
  console.log(`whet: WebGPU adapter: ${gpu.adapterName}${gpu.isSoftware ? " (software)" : ""}`);
  const res = await Residual.create(gpu);
  const a = gpu.tensor([4], new Float32Array([1, 2, 3, 4]), "a");
  const out = gpu.tensor([4], undefined, "out");
  const batch = gpu.batch();
  res.forward(batch, a, a, out);
  await batch.submit();
  const y = await out.read();
  if (y.join() !== "2,4,6,8") {
    throw new Error(`Cannot verify the GPU: residual add gave ${y.join()}`);
  }
  console.log("whet: kernels compile and run correctly on this adapter.");
  console.log(
    "whet: training the embedded default model arrives with the decoder (issue 3); see README.md.",
  );
}
