/**
 * GPT-2 small (124M, random weights) LoRA fine-tuning throughput with whet, for the comparison
 * with Hugging Face PEFT + PyTorch on the same GPU (bench/gpu_lora_torch.py). Prints one JSON line.
 *
 *     deno run bench/gpu_lora.ts [B] [T] [steps]
 *
 * @module
 */

import { GPT, gptConfig, Gpu, lora, Rng, Trainer } from "../mod.ts";

const [B, T, steps] = [
  Number(Deno.args[0] ?? 8),
  Number(Deno.args[1] ?? 256),
  Number(Deno.args[2] ?? 10),
];
const gpu = await Gpu.get();
const cfg = gptConfig("gpt2", { resid_pdrop: 0, embd_pdrop: 0, attn_pdrop: 0 });
const t0 = performance.now();
const model = await GPT.create(gpu, cfg, { seed: 0, trainable: false });
const inst = await lora.apply(
  model,
  lora.validate({ r: 8, lora_alpha: 16, target_modules: ["c_attn"] }),
  0,
);
const rng = new Rng(1);
const ids = Array.from({ length: B * T }, () => rng.int(cfg.vocab_size));
const source = { batchesPerEpoch: 1, batch: () => ({ ids, labels: ids, batchSize: B, seqLen: T }) };
const setup = (performance.now() - t0) / 1000;
const warm = await Trainer.create(model, source, { steps: 2, lr: 1e-4, logEvery: 2 }, {
  params: inst.trainable(),
});
await warm.run();
warm.release();
gpu.trimMemory();
gpu.resetPeakMemory();
const timed = await Trainer.create(model, source, { steps, lr: 1e-4, logEvery: steps }, {
  params: inst.trainable(),
});
const r = await timed.run();
console.log(JSON.stringify({
  framework: "whet",
  adapter: gpu.adapterName,
  B,
  T,
  steps,
  setupSeconds: setup,
  seconds: r.seconds,
  tokensPerSecond: r.tokensPerSecond,
  peakBytes: r.peakBytes,
  loss: [r.losses[0], r.losses[steps - 1]],
}));
timed.release();
model.release();
