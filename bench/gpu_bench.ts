/**
 * whet's side of the GPU comparison (issue 18), run by bench/gpu_run.sh on a machine with a GPU;
 * bench/gpu_bench_torch.py is PyTorch's side on the same card. Writes `whet.json` (and, given
 * PyTorch's JSON, `summary.json` with the ratios) under `--out`:
 *
 * - `gemm`: GFLOP/s of GPT-2 small's GEMM shapes (B·T = 2048 rows, d 768: the four linear layers
 *   forward, c_fc's input and weight gradients, one 4,096-column chunk of the tied head forward and
 *   backward) for the matmul the models run (`Matmul`) and for kernels/gemm_tiled.ts forced,
 *   after tuning it for these shapes, in fp32 and (where the device has shader-f16) f16-compute; GPU time from timestamp queries where the device has them
 *   (else the wall clock over a batch of repetitions).
 * - `train`: GPT-2 small (random weights, no dropout) LoRA r 8 on `c_attn` and full fine-tuning,
 *   batch 8 × 256, fp32: tokens/s over `--steps` timed steps after 2 warm-up steps, and one more
 *   step profiled with timestamp queries: GPU milliseconds per kernel family.
 * - `generate`: greedy generation, batch 1, KV cache: 128 new tokens after a 32-token prompt.
 *
 * With `--summarize --torch FILE` it runs nothing on the GPU: it reads `OUT/whet.json` and
 * PyTorch's JSON and writes `OUT/summary.json`, the ratios whet ÷ PyTorch.
 *
 * `--quick` runs the same code on the tiny model and small shapes (a smoke test, e.g. on lavapipe;
 * not a measurement).
 *
 *     deno run --allow-read --allow-write=OUT bench/gpu_bench.ts --out OUT [--quick] [--steps N]
 *     deno run --allow-read --allow-write=OUT bench/gpu_bench.ts --out OUT --summarize --torch OUT/torch.json
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  type Decoder,
  generate,
  GPT,
  gptConfig,
  Gpu,
  lora,
  Matmul,
  type Param,
  Rng,
  Trainer,
} from "../mod.ts";
import { FlashAttention } from "../kernels/flash_attention.ts";
import { configName, type GemmShape, GemmTiled, TILE_CONFIGS } from "../kernels/gemm_tiled.ts";
import type { RecordedDispatch } from "../runtime/mod.ts";
import type { GemmSpec } from "../kernels/matmul.ts";

const { values } = parseArgs({
  args: Deno.args,
  strict: true,
  options: {
    out: { type: "string" },
    torch: { type: "string" },
    quick: { type: "boolean", default: false },
    summarize: { type: "boolean", default: false },
    steps: { type: "string", default: "10" },
    parts: { type: "string", default: "gemm,lora,full,generate" },
  },
});
if (!values.out) throw new Error("Cannot run bench/gpu_bench.ts: --out DIR is required");
if (values.summarize) {
  if (!values.torch) throw new Error("Cannot summarize: --torch FILE (PyTorch's JSON) is required");
  await summarize(`${values.out}/whet.json`, values.torch, `${values.out}/summary.json`);
  Deno.exit(0);
}
const quick = values.quick;
const steps = quick ? 1 : Number(values.steps);
const parts = new Set(values.parts.split(","));

/** One GEMM of the comparison: name, layout and M×N×K. */
export interface GemmCase {
  op: string;
  m: number;
  n: number;
  k: number;
  transA?: boolean;
  transB?: boolean;
}

/** GPT-2 small's GEMMs at batch 8 × 256 (or a small stand-in with --quick). */
export function gemmCases(quick: boolean): GemmCase[] {
  const [M, d, V] = quick ? [64, 48, 96] : [2048, 768, 4096];
  return [
    { op: "c_attn forward x·W", m: M, n: 3 * d, k: d },
    { op: "attn.c_proj forward x·W", m: M, n: d, k: d },
    { op: "c_fc forward x·W", m: M, n: 4 * d, k: d },
    { op: "mlp.c_proj forward x·W", m: M, n: d, k: 4 * d },
    { op: "c_fc input gradient dy·Wᵀ", m: M, n: d, k: 4 * d, transB: true },
    { op: "c_fc weight gradient xᵀ·dy", m: d, n: 4 * d, k: M, transA: true },
    { op: "lm_head chunk forward x·wteᵀ", m: M, n: V, k: d, transB: true },
    { op: "lm_head chunk input gradient dlogits·wte", m: M, n: d, k: V },
    { op: "lm_head chunk weight gradient dlogitsᵀ·x", m: V, n: d, k: M, transA: true },
  ];
}

const gpu = await Gpu.get();
const result: Record<string, unknown> = {
  framework: "whet",
  adapter: gpu.adapterName,
  software: gpu.isSoftware,
  timestamps: gpu.canProfile,
  quick,
  date: new Date().toISOString(),
  deno: Deno.version.deno,
  features: [...gpu.device.features].sort(),
  workgroupStorageBytes: gpu.device.limits.maxComputeWorkgroupStorageSize,
  maxBindingBytes: gpu.maxBindingBytes,
};
console.error(`adapter: ${gpu.adapterName}${gpu.isSoftware ? " (software)" : ""}`);

/** Writes what is measured so far (a run cut short by its time limit keeps the finished parts). */
async function save() {
  await Deno.writeTextFile(`${values.out}/whet.json`, JSON.stringify(result, null, 2) + "\n");
}

/** Median GPU milliseconds of `record` (timestamps where available, else the wall clock). */
async function timeOp(record: (b: ReturnType<Gpu["batch"]>) => void, reps: number) {
  const warm = gpu.batch();
  record(warm);
  await warm.submit();
  await gpu.sync();
  if (gpu.canProfile) {
    await gpu.readProfile();
    gpu.profile = true;
    const batch = gpu.batch();
    let dispatches = 0;
    for (let r = 0; r < reps; r++) {
      const before = batch.kernels.length;
      record(batch);
      dispatches = batch.kernels.length - before;
    }
    await batch.submit();
    gpu.profile = false;
    const entries = await gpu.readProfile();
    // Sum each repetition's dispatches (the texture matmul packs its operands first).
    const per: number[] = [];
    for (let r = 0; r < reps; r++) {
      per.push(entries.slice(r * dispatches, (r + 1) * dispatches).reduce((s, e) => s + e.ms, 0));
    }
    per.sort((a, b) => a - b);
    if (per[Math.floor(reps / 2)] > 0) {
      return { ms: per[Math.floor(reps / 2)], clock: "timestamps" };
    }
  }
  const batch = gpu.batch();
  for (let r = 0; r < reps; r++) record(batch);
  const t0 = performance.now();
  await batch.submit();
  await gpu.sync();
  return { ms: (performance.now() - t0) / reps, clock: "wall" };
}

if (parts.has("gemm")) {
  const cases = gemmCases(quick);
  // --quick: the two smallest configurations (compiling all five takes a minute on lavapipe).
  const tiled = await GemmTiled.create(gpu, quick ? { configs: TILE_CONFIGS.slice(3) } : {});
  const tuned = await tiled.tune(cases, quick ? 2 : 5);
  // f16 compute (f16 tiles and products, f32 sums), stated apart from the fp32 figures.
  const half = gpu.hasF16
    ? await GemmTiled.create(gpu, {
      precision: "f16-compute",
      ...(quick ? { configs: TILE_CONFIGS.slice(3) } : {}),
    })
    : null;
  if (half) result.tunedF16 = await half.tune(cases, quick ? 2 : 5);
  const matmul = await Matmul.create(gpu);
  const rows = [];
  const rng = new Rng(1);
  for (const c of cases) {
    const [aLen, bLen] = [c.m * c.k, c.k * c.n];
    const fill = (n: number) => Float32Array.from({ length: n }, () => rng.normal());
    const a = gpu.tensor([aLen], fill(aLen), "a"), b = gpu.tensor([bLen], fill(bLen), "b");
    const out = gpu.tensor([c.m * c.n], undefined, "c");
    const spec: GemmSpec = {
      a,
      b,
      c: out,
      m: c.m,
      n: c.n,
      k: c.k,
      transA: c.transA,
      transB: c.transB,
    };
    const flop = 2 * c.m * c.n * c.k;
    const reps = quick ? 2 : 20;
    const mm = await timeOp((batch) => matmul.gemm(batch, spec), reps);
    gpu.recorder = [];
    const gt = await timeOp((batch) => tiled.gemm(batch, spec), reps);
    // A self-check of the shape decoding the training part tunes with: it must give back c.
    const decoded = tiledShapes(gpu.recorder);
    gpu.recorder = null;
    const want = { m: c.m, n: c.n, k: c.k, transA: !!c.transA, transB: !!c.transB, batch: 1 };
    if (decoded.length !== 1 || JSON.stringify(decoded[0]) !== JSON.stringify(want)) {
      throw new Error(
        `tiledShapes decoded ${JSON.stringify(decoded)}, expected ${JSON.stringify(want)}`,
      );
    }
    const f16 = half ? await timeOp((batch) => half.gemm(batch, spec), reps) : null;
    rows.push({
      ...c,
      matmulVariant: matmul.variant,
      matmulMs: mm.ms,
      matmulGflops: flop / mm.ms / 1e6,
      tiledConfig: configName(tiled.configFor({ ...c })),
      tiledMs: gt.ms,
      tiledGflops: flop / gt.ms / 1e6,
      tiledF16Config: half ? configName(half.configFor({ ...c })) : null,
      tiledF16Gflops: f16 ? flop / f16.ms / 1e6 : null,
      clock: gt.clock,
    });
    console.error(
      `${c.op} ${c.m}×${c.n}×${c.k}: Matmul ${
        (flop / mm.ms / 1e6).toFixed(0)
      } GFLOP/s, gemm_tiled ${(flop / gt.ms / 1e6).toFixed(0)} GFLOP/s (${
        configName(tiled.configFor({ ...c }))
      })`,
    );
    for (const t of [a, b, out]) t.release();
  }
  result.gemm = rows;
  result.tuned = tuned;
  await save();
}

/** GPT-2 small (or tiny) with random weights and no dropout. */
async function model(trainable: boolean): Promise<Decoder> {
  const noDropout = { resid_pdrop: 0, embd_pdrop: 0, attn_pdrop: 0 };
  return await GPT.create(gpu, gptConfig(quick ? "tiny" : "gpt2", noDropout), {
    seed: 1,
    trainable,
  });
}

/** Sums profiled GPU milliseconds per kernel family (the name up to its first dot). */
function families(entries: { kernel: string; ms: number }[]) {
  const by = new Map<string, { ms: number; dispatches: number }>();
  for (const e of entries) {
    const f = e.kernel.split(/[.(]/)[0];
    const row = by.get(f) ?? { ms: 0, dispatches: 0 };
    row.ms += e.ms;
    row.dispatches++;
    by.set(f, row);
  }
  const total = [...by.values()].reduce((s, r) => s + r.ms, 0);
  return [...by.entries()].sort((x, y) => y[1].ms - x[1].ms).map(([family, r]) => ({
    family,
    ...r,
    share: r.ms / total,
  }));
}

/**
 * The distinct GEMM shapes of recorded gemm_tiled dispatches: M, N, K are the first three u32 of
 * their parameters, the layout is in the kernel's name (`gemm_tiled.<config>.<NN|NT|TN|TT>.…`), the
 * batch count is the grid's z.
 */
function tiledShapes(recorded: RecordedDispatch[]): GemmShape[] {
  const seen = new Map<string, GemmShape>();
  for (const d of recorded) {
    if (!d.kernel.name.startsWith("gemm_tiled.") || !d.params) continue;
    const [m, n, k] = new Uint32Array(d.params, 0, 3);
    const layout = d.kernel.name.split(".").find((part) => /^[NT][NT]$/.test(part)) ?? "NN";
    const shape = {
      m,
      n,
      k,
      transA: layout[0] === "T",
      transB: layout[1] === "T",
      batch: d.groups[2],
    };
    seen.set(JSON.stringify(shape), shape);
  }
  return [...seen.values()];
}

async function train(method: "lora" | "full") {
  const m = await model(method === "full");
  const [B, T] = quick ? [2, 16] : [8, 256];
  const { H, d } = { H: m.shape.H, d: m.shape.d };
  await FlashAttention.for(gpu).prepare(d); // so that every timed step runs the fused kernels
  const params: Param[] | undefined = method === "lora"
    ? (await lora.apply(m, lora.validate({ r: 8, lora_alpha: 16, target_modules: ["c_attn"] }), 0))
      .trainable()
    : undefined;
  const rng = new Rng(1);
  const ids = Array.from({ length: B * T }, () => rng.int(m.shape.V));
  const source = {
    batchesPerEpoch: 1,
    batch: () => ({ ids, labels: ids, batchSize: B, seqLen: T }),
  };
  const run = async (n: number) => {
    const trainer = await Trainer.create(m, source, { steps: n, lr: 1e-4, logEvery: n }, {
      params,
    });
    try {
      return await trainer.run();
    } finally {
      trainer.release();
    }
  };
  // Warm-up, recording the dispatches: every tiled GEMM shape of a step is then tuned (the
  // Matmul of hardware adapters runs kernels/gemm_tiled.ts and reads the same per-adapter table).
  gpu.recorder = [];
  await run(2);
  const shapes = tiledShapes(gpu.recorder);
  gpu.recorder = null;
  if (shapes.length > 0) {
    const tuned = await (await GemmTiled.create(gpu)).tune(shapes);
    console.error(`${method}: tuned ${shapes.length} GEMM shapes: ${JSON.stringify(tuned)}`);
  }
  gpu.trimMemory();
  gpu.resetPeakMemory();
  const r = await run(steps);
  let profile = null;
  if (gpu.canProfile) {
    await gpu.readProfile();
    gpu.profile = true;
    try {
      await run(1);
    } finally {
      gpu.profile = false;
    }
    profile = families(await gpu.readProfile());
  }
  m.release();
  const row = {
    method,
    B,
    T,
    H,
    steps,
    flashAttention: FlashAttention.for(gpu).use(T, d, 1),
    seconds: r.seconds,
    tokensPerSecond: r.tokensPerSecond,
    peakBytes: r.peakBytes,
    loss: [r.losses[0], r.losses[r.losses.length - 1]],
    profile,
  };
  console.error(`${method}: ${r.tokensPerSecond.toFixed(0)} tokens/s`);
  return row;
}

const trainRows = [];
for (const method of ["lora", "full"] as const) {
  if (!parts.has(method)) continue;
  trainRows.push(await train(method));
  result.train = trainRows;
  await save();
}

if (parts.has("generate")) {
  const m = await model(false);
  const [prompt, newTokens] = quick ? [4, 8] : [32, 128];
  const ids = Array.from({ length: prompt }, (_, i) => (i * 7) % m.shape.V);
  await generate(m, [ids], { maxNewTokens: 4 }); // warm-up: pipelines, cache buffers
  const t0 = performance.now();
  await generate(m, [ids], { maxNewTokens: newTokens });
  const seconds = (performance.now() - t0) / 1000;
  m.release();
  result.generate = { batch: 1, prompt, newTokens, seconds, tokensPerSecond: newTokens / seconds };
  console.error(`generate: ${(newTokens / seconds).toFixed(1)} tokens/s`);
}

await save();

/** Ratios whet ÷ PyTorch where both measured the same thing (summary.json). */
async function summarize(whetFile: string, torchFile: string, outFile: string) {
  const whet = JSON.parse(await Deno.readTextFile(whetFile));
  const torch = JSON.parse(await Deno.readTextFile(torchFile));
  const ratio = (a: number | undefined, b: number | undefined) => a && b ? a / b : null;
  const trainTorch = new Map<string, { tokensPerSecond: number }>(
    (torch.train ?? []).map((r: { method: string; tokensPerSecond: number }) => [r.method, r]),
  );
  const gemmTorch = new Map<string, { gflops: number }>(
    (torch.gemm ?? []).map((r: { op: string; gflops: number }) => [r.op, r]),
  );
  const summary = {
    adapter: whet.adapter,
    torchDevice: torch.device,
    torch: torch.torch,
    train: (whet.train ?? []).map((r: { method: string; tokensPerSecond: number }) => ({
      method: r.method,
      whet: r.tokensPerSecond,
      torch: trainTorch.get(r.method)?.tokensPerSecond ?? null,
      ratio: ratio(r.tokensPerSecond, trainTorch.get(r.method)?.tokensPerSecond),
    })),
    gemm: (whet.gemm ?? []).map((
      r: { op: string; matmulGflops: number; tiledGflops: number; tiledF16Gflops: number | null },
    ) => ({
      op: r.op,
      whetMatmul: r.matmulGflops,
      whetTiled: r.tiledGflops,
      whetTiledF16: r.tiledF16Gflops,
      torch: gemmTorch.get(r.op)?.gflops ?? null,
      ratio: ratio(r.matmulGflops, gemmTorch.get(r.op)?.gflops),
    })),
    generate: whet.generate && torch.generate
      ? {
        whet: whet.generate.tokensPerSecond,
        torch: torch.generate.tokensPerSecond,
        ratio: ratio(whet.generate.tokensPerSecond, torch.generate.tokensPerSecond),
      }
      : null,
  };
  await Deno.writeTextFile(outFile, JSON.stringify(summary, null, 2) + "\n");
  console.log(JSON.stringify(summary, null, 2));
}
