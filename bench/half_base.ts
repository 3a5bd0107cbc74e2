/**
 * The accuracy cost of a frozen base stored in f16 or bf16 (DecoderOptions.baseDtype), measured:
 * for each model, the logits and mean loss of one batch with the base in f32 and in each half
 * dtype (same weights, same inputs), max and mean |Δlogit|, the loss difference, and the bytes of
 * the base weights on the GPU. Also the base bytes of GPT-2 small and SmolLM2-135M/-360M from their
 * shapes. Writes a Markdown table to stdout (bench/RESULTS.md keeps it).
 *
 *     XDG_RUNTIME_DIR=/tmp DENO_WEBGPU_BACKEND=vulkan deno run --config bench/deno.json \
 *       --allow-read=. bench/half_base.ts
 *
 * With `--lora-step` (and `--allow-run=deno`) it measures instead the first GPT-2 small LoRA training
 * step (r 8 on `c_attn`, batch 2 × 256, random weights, as bench/big.ts's LoRA job but batch 2) with an f32,
 * an f16 and a bf16 base, each in a process of its own: peak GPU buffer bytes (the pool's peak
 * reserved), the matmul's scratch textures (outside the pool), peak RSS, and the step's time.
 *
 * @module
 */

import process from "node:process";
import { fileURLToPath } from "node:url";
import {
  type BaseDtype,
  type Decoder,
  GPT,
  gpt2ParameterShapes,
  gptConfig,
  Gpu,
  Llama,
  llamaConfig,
  llamaParameterShapes,
  loadModelCheckpoint,
  Matmul,
  packDocuments,
  pretrainCorpus,
  Rng,
  storedInBaseDtype,
  type TensorData,
} from "../mod.ts";
import { lora, Trainer } from "../mod.ts";
import { benchData } from "./train.ts";

/** Sequences per LoRA step (bench/big.ts's job takes 8; 2 keeps this measurement to minutes). */
const LORA_BATCH = 2;

if (Deno.args[0] === "--lora-step-child") {
  console.log(JSON.stringify(await loraStep(Deno.args[1] as BaseDtype)));
  Deno.exit(0);
}
if (Deno.args[0] === "--gemm") {
  await gemmTimes();
  Deno.exit(0);
}
if (Deno.args[0] === "--lora-step") {
  console.log(
    `| GPT-2 small LoRA, first step (${LORA_BATCH}×256) | base bytes | peak GPU buffers | matmul textures | peak RSS | first step |`,
  );
  console.log("| --- | ---: | ---: | ---: | ---: | ---: |");
  for (const dtype of ["f32", "f16", "bf16"]) {
    const out = await new Deno.Command("deno", {
      args: [
        "run",
        "--config",
        "bench/deno.json",
        "--allow-read=.",
        fileURLToPath(import.meta.url),
        "--lora-step-child",
        dtype,
      ],
      stderr: "inherit",
    }).output();
    if (!out.success) throw new Error(`Cannot measure the ${dtype} LoRA step: the child failed`);
    const r = JSON.parse(new TextDecoder().decode(out.stdout));
    const gb = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;
    console.log(
      `| ${dtype} base | ${gb(r.baseBytes)} | ${gb(r.peakGpuBytes)} | ${gb(r.textureBytes)} | ${
        gb(r.peakRss)
      } | ${r.seconds.toFixed(1)} s (loss ${r.loss.toFixed(4)}) |`,
    );
  }
  Deno.exit(0);
}

/**
 * GEMMs of GPT-2 small's c_attn at 512 tokens with W in f32, f16 and bf16 (default matmul variant):
 * forward `x·W` (512×768 · 768×2304) and the input gradient `dy·Wᵀ`; 4 GEMMs a batch, one submit
 * and sync, median of 3 after a warm-up, wall and process CPU time per GEMM.
 */
async function gemmTimes() {
  const gpu = await Gpu.get();
  const mm = await Matmul.create(gpu, { halfB: ["f16", "bf16"] });
  const [M, K, N] = [512, 768, 2304], reps = 4;
  const r = new Rng(1);
  const x = gpu.tensor([M, K], r.fillNormal(new Float32Array(M * K), 1) as Float32Array, "x");
  const dy = gpu.tensor([M, N], r.fillNormal(new Float32Array(M * N), 1) as Float32Array, "dy");
  const w = r.fillNormal(new Float32Array(K * N), 0.02) as Float32Array;
  const y = gpu.tensor([M, N]), dx = gpu.tensor([M, K]);
  console.log(
    `| W dtype | x·W ms (CPU ms) | dy·Wᵀ ms (CPU ms) | (${mm.variant} variant, ${M}×${K}×${N}) |`,
  );
  console.log("| --- | ---: | ---: | --- |");
  for (const dtype of ["f32", "f16", "bf16"] as BaseDtype[]) {
    const W = gpu.tensor([K, N], w, "W", dtype);
    const time = async (backward: boolean) => {
      const trial = async () => {
        const c0 = process.cpuUsage(), t0 = performance.now();
        const batch = gpu.batch();
        for (let i = 0; i < reps; i++) {
          if (backward) mm.gemm(batch, { a: dy, b: W, c: dx, m: M, n: K, k: N, transB: true });
          else mm.gemm(batch, { a: x, b: W, c: y, m: M, n: N, k: K });
        }
        await batch.submit();
        await gpu.sync();
        const c = process.cpuUsage(c0);
        return [(performance.now() - t0) / reps, (c.user + c.system) / 1000 / reps];
      };
      await trial();
      const runs = [await trial(), await trial(), await trial()].sort((a, b) => a[0] - b[0]);
      return `${runs[1][0].toFixed(1)} (${runs[1][1].toFixed(1)})`;
    };
    console.log(`| ${dtype} | ${await time(false)} | ${await time(true)} | |`);
    W.release();
  }
  for (const t of [x, dy, y, dx]) t.release();
}

/** One GPT-2 small LoRA step (the first) with the base in `dtype`. */
async function loraStep(dtype: BaseDtype) {
  const gpu = await Gpu.get();
  const cfg = gptConfig("gpt2", { resid_pdrop: 0, embd_pdrop: 0, attn_pdrop: 0 });
  const model = await GPT.create(gpu, cfg, { seed: 1, trainable: false, baseDtype: dtype });
  const params = (await lora.apply(
    model,
    lora.validate({ r: 8, lora_alpha: 16, target_modules: ["c_attn"] }),
    1,
  )).trainable();
  const [B, T] = [LORA_BATCH, 256];
  const ids = benchData(B, T, model.shape.V);
  const src = { batchesPerEpoch: 1, batch: () => ({ ids, labels: ids, batchSize: B, seqLen: T }) };
  // Trainer.run restarts the peak GPU accounting at its start.
  const step = async () => {
    const trainer = await Trainer.create(model, src, {
      lr: 1e-3,
      warmupSteps: 0,
      steps: 1,
      logEvery: 1,
    }, { params });
    const t0 = performance.now();
    const r = await trainer.run();
    const seconds = (performance.now() - t0) / 1000;
    trainer.release();
    return { seconds, loss: r.losses[0], peak: gpu.memory.peakReserved };
  };
  // One step only (the first, pipelines compiled in it): its memory is what this measures, and
  // GPT-2 small steps cost ~90 CPU-seconds per 2,048 tokens here.
  const timed = await step();
  let baseBytes = 0;
  for (const p of model.params.values()) {
    if (storedInBaseDtype(p.name, p.shape)) baseBytes += p.value.byteLength;
  }
  const out = {
    baseBytes,
    peakGpuBytes: timed.peak,
    textureBytes: model.kernels.matmul.scratchBytes,
    peakRss: process.resourceUsage().maxRSS * 1024,
    seconds: timed.seconds,
    loss: timed.loss,
  };
  model.release();
  return out;
}

interface Run {
  logits: Float32Array;
  loss: number;
  baseBytes: number;
}

/** Logits and mean next-token loss of one batch, and the bytes of the base weights. */
async function run(model: Decoder, ids: number[], B: number, T: number): Promise<Run> {
  const acts = model.activations(B, T);
  const batch = model.gpu.batch();
  model.forward(batch, acts, { ids, labels: ids }, { logits: true });
  await batch.submit();
  const [logits] = await model.gpu.read([acts.logits]);
  const loss = await model.meanLoss(acts);
  acts.release();
  let baseBytes = 0;
  for (const p of model.params.values()) {
    if (storedInBaseDtype(p.name, p.shape)) baseBytes += p.value.byteLength;
  }
  return { logits, loss, baseBytes };
}

interface Case {
  label: string;
  make: (dtype: BaseDtype) => Promise<Decoder>;
  ids: number[];
  B: number;
  T: number;
}

const gpu = await Gpu.get();
const rng = new Rng(7);
const randomIds = (n: number, V: number) => Array.from({ length: n }, () => rng.int(V));

// The embedded base model (pretrained, byte vocabulary) on fresh text from its corpus generator.
const base = await loadModelCheckpoint("models/base");
if (base.family !== "gpt2") throw new Error("models/base is a GPT-2 checkpoint");
const text = packDocuments(
  pretrainCorpus({ seed: 99, documents: 60, heldOutExamples: 0 }),
  (s) => [...new TextEncoder().encode(s)],
  128,
).slice(0, 8).flat();

/** Random weights as the family's init draws them, shared by the f32 and half models. */
function randomWeights(shapes: Map<string, readonly number[]>, seed: number, std: number) {
  const r = new Rng(seed), out = new Map<string, TensorData>();
  for (const [name, shape] of shapes) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = /norm|ln_/.test(name)
      ? new Float32Array(n).fill(1)
      : name.endsWith(".bias")
      ? new Float32Array(n)
      : r.fillNormal(new Float32Array(n), std) as Float32Array;
    out.set(name, { shape, data });
  }
  return out;
}

const gpt2Two = gptConfig("gpt2", { n_layer: 2 });
const gpt2TwoWeights = randomWeights(gpt2ParameterShapes(gpt2Two), 3, 0.02);
const smol = llamaConfig("smollm-tiny");
const smolWeights = randomWeights(llamaParameterShapes(smol), 4, 0.3);
const cases: Case[] = [
  {
    label: "models/base (GPT-2, 0.84M, pretrained), 8×128 corpus tokens",
    make: (baseDtype) =>
      GPT.create(gpu, base.config, { weights: base.weights, trainable: false, baseDtype }),
    ids: text,
    B: 8,
    T: 128,
  },
  {
    label: "GPT-2 small shapes, 2 of 12 layers (53M), random (std 0.02), 2×64 random ids",
    make: (baseDtype) =>
      GPT.create(gpu, gpt2Two, { weights: gpt2TwoWeights, trainable: false, baseDtype }),
    ids: randomIds(128, gpt2Two.vocab_size),
    B: 2,
    T: 64,
  },
  {
    label: "smollm-tiny (Llama), random (std 0.3), 4×32 random ids",
    make: (baseDtype) =>
      Llama.create(gpu, smol, { weights: smolWeights, trainable: false, baseDtype }),
    ids: randomIds(128, smol.vocab_size),
    B: 4,
    T: 32,
  },
];

console.log(
  "| model | base | base bytes | max abs Δlogit | mean abs Δlogit | mean abs logit | loss | Δloss |",
);
console.log("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
for (const c of cases) {
  let ref: Run | undefined;
  for (const dtype of ["f32", "f16", "bf16"] as BaseDtype[]) {
    const model = await c.make(dtype);
    const r = await run(model, c.ids, c.B, c.T);
    model.release();
    ref ??= r;
    let max = 0, sum = 0, mag = 0;
    for (let i = 0; i < r.logits.length; i++) {
      const d = Math.abs(r.logits[i] - ref.logits[i]);
      max = Math.max(max, d);
      sum += d;
      mag += Math.abs(ref.logits[i]);
    }
    const n = r.logits.length;
    console.log(
      `| ${c.label} | ${dtype} | ${r.baseBytes.toLocaleString("en")} | ${max.toExponential(2)} | ${
        (sum / n).toExponential(2)
      } | ${(mag / n).toFixed(3)} | ${r.loss.toFixed(6)} | ${
        (r.loss - ref.loss).toExponential(2)
      } |`,
    );
  }
}

// Bytes of the base (the matrices storedInBaseDtype picks) at real sizes, from the shapes alone.
console.log("\n| model | parameters | base matrices | f32 bytes | f16/bf16 bytes | saved |");
console.log("| --- | ---: | ---: | ---: | ---: | ---: |");
const real: [string, Map<string, readonly number[]>][] = [
  ["GPT-2 small", gpt2ParameterShapes(gptConfig("gpt2"))],
  [
    "GPT-2 medium",
    gpt2ParameterShapes(gptConfig("gpt2", { n_embd: 1024, n_layer: 24, n_head: 16 })),
  ],
  ["SmolLM2-135M", llamaParameterShapes(llamaConfig("smollm2-135m"))],
  ["SmolLM2-360M", llamaParameterShapes(llamaConfig("smollm2-360m"))],
];
for (const [label, shapes] of real) {
  let total = 0, matrices = 0;
  for (const [name, shape] of shapes) {
    const n = shape.reduce((a, b) => a * b, 1);
    total += n;
    if (storedInBaseDtype(name, shape)) matrices += n;
  }
  const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;
  console.log(
    `| ${label} | ${total.toLocaleString("en")} | ${matrices.toLocaleString("en")} | ${
      mb(4 * matrices)
    } | ${mb(2 * matrices)} | ${mb(2 * matrices)} |`,
  );
}
