/**
 * `deno task bench`: GFLOP/s of the matmul kernels at transformer shapes, per-dispatch overhead,
 * and the same matmul as a plain TypeScript loop; training tokens/s of model A and model B (full
 * fine-tuning, LoRA, adapters, prompt tuning) with peak GPU bytes, dispatches and waits per step
 * and a plain-TypeScript baseline (bench/train.ts); with `--profile`, GPU time per kernel family
 * of a training step; with `--only big`, GPT-2 small (and medium, SmolLM2-135M) against PyTorch on
 * the same CPU (bench/big.ts). Prints tables, or JSON with `--json`.
 *
 * Timing: each measurement encodes `reps` repetitions into one batch, submits it once and waits
 * once (`gpu.sync()`), so the ~11 ms cost of a GPU wait is paid once per trial rather than per
 * matmul; the reported time is the median trial divided by `reps`, after one warm-up trial.
 * The machine is shared (2 vCPUs), so next to wall-clock GFLOP/s the table gives GFLOP per CPU
 * second of this process (lavapipe runs its threads in-process): `× cores` of that is what an idle
 * machine would reach, whatever else was running.
 *
 * @module
 */

import process from "node:process";
import { parseArgs } from "node:util";
import { type Batch, Gpu, Matmul, type MatmulVariant, Rng, type Tensor } from "../mod.ts";
import { BIG_PARTS, type BigPart, bigSection, DEFAULT_BIG_PARTS, printBig } from "./big.ts";
import {
  type BenchMethod,
  type BenchModel,
  benchTrain,
  type CpuBaseline,
  cpuBaseline,
  type ProfileRow,
  profileTrain,
  type TrainRow,
} from "./train.ts";

const HELP = `Usage: deno task bench [options]

Benchmarks the matmul kernels (GFLOP/s) at transformer shapes tokens × d_model × 4·d_model
(tokens 2048 = batch 16 × ctx 128, d_model 128 and 256), the tied lm_head layout, the
per-dispatch overhead, and a plain TypeScript matmul for comparison.

Then trains model A (d 128, 4 layers, 4 heads, context 128, batch 16) and model B (d 256,
6 layers, 8 heads) for a few steps per method and reports tokens/s (wall and per CPU second),
peak GPU bytes, dispatches, submits and GPU waits per step, and the same training step in plain
TypeScript (the float64 reference, scaled from a smaller batch) as a ratio. After each of
whet's rows the same model, method, batch and data train with TF.js's webgpu backend on the same
adapter (the peer, bench/tfjs.ts), reported as whet ÷ TF.js ratios.

Options:
  --json            print machine-readable JSON instead of tables
  --quick           small shapes and one repetition (a CI smoke test, not a measurement)
  --only NAME       matmul, train, profile, variants or big: run only that section (default
                    matmul and train; --profile adds the profile). variants: the software, texture
                    and f16-storage matmuls interleaved at the models' linear-layer shapes (NN, NT,
                    TN; packing included), and f16's error against a float64 reference. big: GPT-2
                    small (random weights, batch 8 × sequence 256) LoRA r 8 on c_attn and full
                    fine-tuning, generation (batch 1, KV cache, 128 new tokens), peak GPU bytes and
                    peak RSS, each in its own process, interleaved with PyTorch eager fp32 on the
                    same CPU (bench/torch_peer.py, when python3 or /usr/bin/python3 imports torch:
                    bench/setup_torch.sh); then a GPT-2-medium-shaped LoRA step (8 GiB?) and
                    SmolLM2-135M-shaped LoRA training. Takes tens of minutes on lavapipe
  --torch-threads L thread counts the big section's PyTorch peer runs each configuration with,
                    comma-separated, "all" for every core (default all,1: on this 2-vCPU machine
                    PyTorch was faster on one thread; the targets are judged against its best)
  --parts LIST      parts of the big section, comma-separated: lora, lora-f16, full, generate,
                    medium, smollm, profile (default all but lora-f16 and profile; --profile adds
                    profile: each kernel of a GPT-2 small decode step replayed on its own;
                    lora-f16: whet's GPT-2 small LoRA job with its frozen base stored in f16)
  --profile         time per kernel family and per kernel of a training step. On software
                    adapters by replay (each kernel's recorded dispatches run again on their own,
                    timed by wall clock and CPU time: lavapipe's timestamps miss the texture
                    GEMMs); on GPUs with timestamp-query, from timestamps
  --profile-mode M  auto (default), replay or timestamps
  --checkpoint      also run every training and profile row with activation checkpointing
                    (rows marked +ckpt)
  --models LIST     models to train, comma-separated: A, B, LA (model A's size, Llama-style:
                    RMSNorm, rotary grouped-query attention, gated MLP; no TF.js peer or
                    plain-TS baseline) (default A,B,LA; --quick: tiny)
  --methods LIST    full, lora, adapters, prompt (default all four)
  --steps N         timed training steps after one warm-up step (default 3; big: 2)
  --no-cpu          skip the plain-TypeScript training baseline
  --no-peer         skip the TF.js peer (--quick runs it on the tiny model only), and PyTorch in
                    the big section
  --variant NAME    software, hardware, texture, both (software and hardware) or all (the
                    default: all three)
  --tile TMxTN      register tile of the software and texture variants (default 16x16)
  --trials N        timed trials per measurement, the median is reported (default 3)
  --help            show this help
`;

interface Row {
  /** What was measured, e.g. "forward x·W". */
  op: string;
  variant: MatmulVariant | "plain TS";
  /** GEMM shape M×N×K. */
  m: number;
  n: number;
  k: number;
  /** Repetitions per timed trial. */
  reps: number;
  /** Median milliseconds per matmul. */
  ms: number;
  gflops: number;
  /** GFLOP per CPU second used by this process during the timed trials. */
  cpuGflops: number;
}

function fail(message: string): never {
  console.error(`bench: ${message}\n\n${HELP}`);
  Deno.exit(2);
}

function parse() {
  let values;
  try {
    ({ values } = parseArgs({
      args: Deno.args,
      strict: true,
      allowPositionals: false,
      options: {
        json: { type: "boolean", default: false },
        quick: { type: "boolean", default: false },
        variant: { type: "string", default: "all" },
        tile: { type: "string", default: "16x16" },
        trials: { type: "string", default: "3" },
        only: { type: "string" },
        profile: { type: "boolean", default: false },
        "profile-mode": { type: "string", default: "auto" },
        checkpoint: { type: "boolean", default: false },
        models: { type: "string" },
        methods: { type: "string", default: "full,lora,adapters,prompt" },
        steps: { type: "string" },
        parts: { type: "string" },
        "torch-threads": { type: "string", default: "all,1" },
        "no-cpu": { type: "boolean", default: false },
        "no-peer": { type: "boolean", default: false },
        help: { type: "boolean", default: false },
      },
    }));
  } catch (e) {
    fail((e as Error).message);
  }
  if (values.help) {
    console.log(HELP);
    Deno.exit(0);
  }
  const variants: MatmulVariant[] = values.variant === "both"
    ? ["software", "hardware"]
    : values.variant === "all"
    ? ["software", "texture", "hardware"]
    : ["software", "hardware", "texture"].includes(values.variant)
    ? [values.variant as MatmulVariant]
    : fail(`--variant must be software, hardware, texture, both or all, got "${values.variant}"`);
  const tm = /^(\d+)x(\d+)$/.exec(values.tile);
  if (!tm) fail(`--tile must look like 8x8, got "${values.tile}"`);
  const trials = Number(values.trials);
  if (!Number.isInteger(trials) || trials < 1) {
    fail(`--trials must be a positive integer, got "${values.trials}"`);
  }
  const steps = Number(values.steps ?? (values.only === "big" ? 2 : 3));
  if (!Number.isInteger(steps) || steps < 1) {
    fail(`--steps must be a positive integer, got "${values.steps}"`);
  }
  const sections = values.only === undefined
    ? ["matmul", "train", ...(values.profile ? ["profile"] : [])]
    : ["matmul", "train", "profile", "variants", "big"].includes(values.only)
    ? [values.only]
    : fail(`--only must be matmul, train, profile, variants or big, got "${values.only}"`);
  const defaultParts = [...DEFAULT_BIG_PARTS, ...(values.profile ? ["profile"] : [])];
  const parts = (values.parts ?? defaultParts.join(",")).split(",").map((p) =>
    (BIG_PARTS as readonly string[]).includes(p)
      ? p as BigPart
      : fail(`--parts: unknown part "${p}"`)
  );
  const profileMode = ["auto", "replay", "timestamps"].includes(values["profile-mode"])
    ? values["profile-mode"] as "auto" | "replay" | "timestamps"
    : fail(`--profile-mode must be auto, replay or timestamps, got "${values["profile-mode"]}"`);
  const models = (values.models ?? (values.quick ? "tiny" : "A,B,LA")).split(",").map((m) =>
    ["A", "B", "tiny", "LA"].includes(m) ? m as BenchModel : fail(`--models: unknown model "${m}"`)
  );
  const methods = values.methods.split(",").map((m) =>
    ["full", "lora", "adapters", "prompt"].includes(m)
      ? m as BenchMethod
      : fail(`--methods: unknown method "${m}"`)
  );
  const torchThreads = values["torch-threads"].split(",").map((t) =>
    t === "all"
      ? 0
      : /^[1-9]\d*$/.test(t)
      ? Number(t)
      : fail(`--torch-threads: expected "all" or a positive integer, got "${t}"`)
  );
  return {
    json: values.json,
    quick: values.quick,
    variants,
    tile: [Number(tm[1]), Number(tm[2])] as const,
    trials,
    sections,
    models,
    methods,
    steps: values.quick ? 1 : steps,
    parts,
    torchThreads,
    cpu: !values["no-cpu"],
    peer: !values["no-peer"],
    profileMode,
    checkpoint: values.checkpoint,
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function randomTensor(gpu: Gpu, rng: Rng, n: number, label: string): Tensor {
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = rng.normal() * 0.5;
  return gpu.tensor([n], data, label);
}

/**
 * Median wall ms per call of `record` over `trials` trials of `reps` calls each (one submit and one
 * wait per trial), and the median CPU ms per call this process used.
 */
async function timeGpu(
  gpu: Gpu,
  record: (b: ReturnType<Gpu["batch"]>) => void,
  reps: number,
  trials: number,
): Promise<{ ms: number; cpuMs: number }> {
  const run = async () => {
    const b = gpu.batch();
    for (let r = 0; r < reps; r++) record(b);
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await b.submit();
    await gpu.sync();
    const wall = performance.now() - t0;
    const cpu = process.cpuUsage(c0);
    return { wall, cpu: (cpu.user + cpu.system) / 1000 };
  };
  await run(); // warm-up: pipelines, buffers
  const runs: { wall: number; cpu: number }[] = [];
  for (let t = 0; t < trials; t++) runs.push(await run());
  return {
    ms: median(runs.map((r) => r.wall)) / reps,
    cpuMs: median(runs.map((r) => r.cpu)) / reps,
  };
}

/** The plain TypeScript matmul C (M,N) = A (M,K) · B (K,N), i-k-j order (the inner loop streams rows). */
function plainMatmul(
  a: Float32Array,
  b: Float32Array,
  c: Float32Array,
  M: number,
  K: number,
  N: number,
): void {
  c.fill(0);
  for (let i = 0; i < M; i++) {
    const ci = i * N;
    for (let k = 0; k < K; k++) {
      const aik = a[i * K + k];
      const bk = k * N;
      for (let j = 0; j < N; j++) c[ci + j] += aik * b[bk + j];
    }
  }
}

type Opts = ReturnType<typeof parse>;

/** The matmul section: GFLOP/s per layout, per-dispatch overhead, plain TS. */
async function matmulSection(gpu: Gpu, opts: Opts) {
  const rng = new Rng(1);
  const tokens = opts.quick ? 64 : 2048;
  const dims = opts.quick ? [32] : [128, 256];
  const vocab = opts.quick ? 96 : 8192;
  const rows: Row[] = [];
  const gflops = (m: number, n: number, k: number, ms: number) => (2 * m * n * k) / (ms * 1e6);

  for (const variant of opts.variants) {
    const mm = await Matmul.create(gpu, { variant, tile: opts.tile });
    const measure = async (
      op: string,
      m: number,
      n: number,
      k: number,
      record: (b: ReturnType<Gpu["batch"]>) => void,
    ) => {
      // Aim for about half a second of GPU work per trial (estimated at 20 GFLOP/s), at least one rep.
      const reps = opts.quick ? 1 : Math.max(1, Math.round(0.5 / ((2 * m * n * k) / 20e9)));
      const t = await timeGpu(gpu, record, reps, opts.quick ? 1 : opts.trials);
      rows.push({
        op,
        variant,
        m,
        n,
        k,
        reps,
        ms: t.ms,
        gflops: gflops(m, n, k, t.ms),
        cpuGflops: gflops(m, n, k, t.cpuMs),
      });
    };
    for (const d of dims) {
      const T = tokens, H = 4 * d;
      const x = randomTensor(gpu, rng, T * d, "x"), W = randomTensor(gpu, rng, d * H, "W");
      const y = gpu.tensor([T * H], undefined, "y"), dy = randomTensor(gpu, rng, T * H, "dy");
      const dx = gpu.tensor([T * d], undefined, "dx"), dW = gpu.tensor([d * H], undefined, "dW");
      await measure(
        `forward x·W (d=${d})`,
        T,
        H,
        d,
        (b) => mm.linearForward(b, x, W, null, y, T, d, H),
      );
      await measure(
        `dX dy·Wᵀ (d=${d})`,
        T,
        d,
        H,
        (b) => mm.linearBackward(b, { x, W, dy, dx, dW: null }, T, d, H),
      );
      await measure(
        `dW xᵀ·dy (d=${d})`,
        d,
        H,
        T,
        (b) => mm.linearBackward(b, { x, W, dy, dx: null, dW }, T, d, H),
      );
      for (const t of [x, W, y, dy, dx, dW]) t.release();
    }
    {
      const T = tokens, C = dims[0], V = vocab;
      const x = randomTensor(gpu, rng, T * C, "x"), wte = randomTensor(gpu, rng, V * C, "wte");
      const logits = gpu.tensor([T * V], undefined, "logits"),
        dx = gpu.tensor([T * C], undefined, "dx");
      const dWte = gpu.tensor([V * C], undefined, "dWte");
      await measure(
        `lm_head x·wteᵀ (V=${V})`,
        T,
        V,
        C,
        (b) => mm.tiedForward(b, x, wte, logits, T, C, V),
      );
      await measure(
        `lm_head dX dlogits·wte`,
        T,
        C,
        V,
        (b) => mm.tiedBackward(b, { x, wte, dlogits: logits, dx, dWte: null }, T, C, V),
      );
      await measure(
        `lm_head dWte dlogitsᵀ·x`,
        V,
        C,
        T,
        (b) => mm.tiedBackward(b, { x, wte, dlogits: logits, dx: null, dWte }, T, C, V),
      );
      for (const t of [x, wte, logits, dx, dWte]) t.release();
    }
  }

  // Per-dispatch overhead: 1000 one-element fills in one submit, minus an empty submit's wait.
  const one = gpu.tensor([1], undefined, "one");
  const dispatches = opts.quick ? 10 : 1000;
  const waitMs = (await timeGpu(gpu, () => {}, 1, opts.quick ? 1 : opts.trials)).ms;
  const batchMs = (await timeGpu(
    gpu,
    (b) => {
      for (let i = 0; i < dispatches; i++) b.fill(one, 1);
    },
    1,
    opts.quick ? 1 : opts.trials,
  )).ms;
  one.release();
  const dispatchUs = ((batchMs - waitMs) / dispatches) * 1000;

  // Plain TypeScript at the forward shape of the first d_model, best of several runs.
  const d = dims[0], T = tokens, H = 4 * d;
  const a = Float32Array.from({ length: T * d }, () => rng.normal());
  const b = Float32Array.from({ length: d * H }, () => rng.normal());
  const c = new Float32Array(T * H);
  let best = Infinity, bestCpu = Infinity;
  for (let r = 0; r < (opts.quick ? 1 : 4); r++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    plainMatmul(a, b, c, T, d, H);
    best = Math.min(best, performance.now() - t0);
    const cpu = process.cpuUsage(c0);
    bestCpu = Math.min(bestCpu, (cpu.user + cpu.system) / 1000);
  }
  const plain: Row = {
    op: `forward x·W (d=${d})`,
    variant: "plain TS",
    m: T,
    n: H,
    k: d,
    reps: 1,
    ms: best,
    gflops: gflops(T, H, d, best),
    cpuGflops: gflops(T, H, d, bestCpu),
  };
  rows.push(plain);
  const fastest = Math.max(
    ...rows.filter((r) => r.op === plain.op && r.variant !== "plain TS").map((r) => r.gflops),
  );
  const ratio = fastest / plain.gflops;
  return { rows, dispatchUs, waitMs, batchMs, dispatches, plainRatio: ratio };
}

function printMatmul(m: Awaited<ReturnType<typeof matmulSection>>): void {
  const table = [["op", "variant", "M×N×K", "reps", "ms", "GFLOP/s", "GFLOP/CPU·s"]].concat(
    m.rows.map((r) => [
      r.op,
      r.variant,
      `${r.m}×${r.n}×${r.k}`,
      String(r.reps),
      r.ms.toFixed(2),
      r.gflops.toFixed(2),
      r.cpuGflops.toFixed(2),
    ]),
  );
  printTable(table, 2);
  console.log(
    `per dispatch: ${
      m.dispatchUs.toFixed(1)
    } µs (${m.dispatches} trivial dispatches in one submit: ${
      m.batchMs.toFixed(1)
    } ms, minus an empty submit + wait: ${m.waitMs.toFixed(1)} ms)`,
  );
  console.log(`fastest GPU forward vs plain TS: ${m.plainRatio.toFixed(1)}× (wall clock)`);
}

/** Prints rows of cells, columns from `rightFrom` on right-aligned. */
function printTable(table: string[][], rightFrom: number): void {
  const widths = table[0].map((_, i) => Math.max(...table.map((r) => r[i].length)));
  for (const r of table) {
    console.log(
      r.map((s, i) => (i >= rightFrom ? s.padStart(widths[i]) : s.padEnd(widths[i]))).join("  "),
    );
  }
}

/** The training section: each model × method, then the CPU baseline per model. */
async function trainSection(gpu: Gpu, opts: Opts) {
  const rows: TrainRow[] = [];
  // The TF.js peer is a benchmark-only dependency, loaded only when it runs.
  const tfjs = opts.peer ? await import("./tfjs.ts") : null;
  const peerInfo = tfjs ? await tfjs.tfjsPeer(gpu.adapterName) : null;
  const peer: import("./tfjs.ts").PeerComparison[] = [];
  for (const model of opts.models) {
    for (const method of opts.methods) {
      for (const checkpoint of opts.checkpoint ? [false, true] : [false]) {
        rows.push(await benchTrain(gpu, model, method, opts.steps, { checkpoint }));
        if (!opts.json) printTrain([rows[rows.length - 1]], rows.length === 1);
      }
      if (tfjs && model !== "LA" && (!opts.quick || model === "tiny")) {
        const own = rows.findLast((r) =>
          r.model === model && r.method === method && !r.checkpoint
        )!;
        peer.push(tfjs.compare(own, await tfjs.benchTfjs(model, method, opts.steps)));
      }
    }
  }
  const cpu: (CpuBaseline & { fullRatio: number | null })[] = [];
  if (opts.cpu) {
    for (const model of opts.models) {
      if (model === "LA") continue; // the plain-TS reference is GPT-2's
      const b = cpuBaseline(
        model,
        model === "tiny" ? 1 : model === "A" ? 2 : 1,
        opts.quick ? 1 : 2,
      );
      const full = rows.find((r) => r.model === model && r.method === "full" && !r.checkpoint);
      cpu.push({ ...b, fullRatio: full ? full.tokensPerSecond / b.tokensPerSecond : null });
      if (!opts.json) {
        console.log(
          `plain TS, model ${model}: ${b.tokensPerSecond.toFixed(0)} tokens/s (${b.what})${
            full
              ? `; whet full fine-tuning is ${
                (full.tokensPerSecond / b.tokensPerSecond).toFixed(1)
              }×`
              : ""
          }`,
        );
      }
    }
  }
  if (peerInfo && peer.length > 0 && !opts.json) tfjs!.printPeer(peerInfo, peer);
  return { rows, cpu, peer, peerInfo };
}

function printTrain(rows: TrainRow[], header: boolean): void {
  const table = [[
    "model",
    "method",
    "trainable",
    "tokens/s",
    "tokens/CPU·s",
    "ms/step",
    "peak MB",
    "dispatches",
    "submits",
    "waits",
  ]];
  for (const r of rows) {
    table.push([
      r.model,
      r.method + (r.checkpoint ? "+ckpt" : ""),
      String(r.trainable),
      r.tokensPerSecond.toFixed(0),
      r.tokensPerCpuSecond.toFixed(0),
      r.msPerStep.toFixed(0),
      (r.peakBytes / 1e6).toFixed(1),
      r.dispatchesPerStep.toFixed(0),
      r.submitsPerStep.toFixed(2),
      r.waitsPerStep.toFixed(2),
    ]);
  }
  const widths = [6, 13, 10, 9, 13, 8, 8, 11, 8, 6];
  for (const [i, r] of table.entries()) {
    if (i === 0 && !header) continue;
    console.log(r.map((s, c) => (c >= 2 ? s.padStart(widths[c]) : s.padEnd(widths[c]))).join(" "));
  }
}

/**
 * The profile section: time per kernel family and per kernel of a training step, for each model ×
 * method: by replay on software adapters (or with `--profile-mode replay`), else from timestamps.
 */
async function profileSection(gpu: Gpu, opts: Opts) {
  const replay = opts.profileMode === "replay" ||
    (opts.profileMode === "auto" && (gpu.isSoftware || !gpu.canProfile));
  const out: (
    & { model: BenchModel; method: BenchMethod; checkpoint: boolean }
    & Awaited<
      ReturnType<typeof profileTrain>
    >
  )[] = [];
  for (const model of opts.models) {
    for (const method of opts.methods) {
      for (const checkpoint of opts.checkpoint ? [false, true] : [false]) {
        const p = await profileTrain(gpu, model, method, opts.quick ? 1 : 2, {
          replay,
          checkpoint,
        });
        out.push({ model, method, checkpoint, ...p });
        if (opts.json) continue;
        const what = `${method}${checkpoint ? "+ckpt" : ""}`;
        console.log(
          `\nprofile (${p.mode}), model ${model}, ${what}: ${
            p.gpuMs.toFixed(1)
          } ms per step summed ` +
            `over kernels (measured step: ${p.wallMs.toFixed(0)} ms wall)`,
        );
        const row = (f: ProfileRow) => [
          f.name,
          f.dispatches.toFixed(0),
          f.ms.toFixed(1),
          `${(100 * f.share).toFixed(1)}%`,
          ...(p.mode === "replay" ? [(f.cpuMs ?? 0).toFixed(1)] : []),
          ...(p.mode === "replay"
            ? [f.flop && f.cpuMs ? (f.flop / f.cpuMs / 1e6).toFixed(1) : ""]
            : []),
        ];
        const head = (first: string) => [
          first,
          "dispatches",
          "ms/step",
          "share",
          ...(p.mode === "replay" ? ["CPU ms", "GFLOP/CPU·s"] : []),
        ];
        printTable([head("family")].concat(p.families.map(row)), 1);
        console.log("top kernels:");
        printTable([head("kernel")].concat(p.kernels.slice(0, 12).map(row)), 1);
      }
    }
  }
  return out;
}

/** A matmul configuration of the variants section. */
type VariantConfig = "software" | "texture" | "f16-storage";

/** One row of the variants section: a GEMM at a model shape, per configuration. */
interface VariantRow {
  model: string;
  layer: string;
  layout: "NN" | "NT" | "TN";
  m: number;
  n: number;
  k: number;
  /** GFLOP/s (wall) and GFLOP per CPU second, per configuration (median of interleaved trials). */
  gflops: Record<VariantConfig, number>;
  cpuGflops: Record<VariantConfig, number>;
  /** f16-storage: max over elements of |C − C₆₄| / Σ_k |a·b|, and ‖C − C₆₄‖ / ‖C₆₄‖. */
  f16MaxErr?: number;
  f16RelFrob?: number;
}

/**
 * The variants section: at each linear layer of models A and B (M = 2048 tokens; forward NN
 * `x·W`, dX NT `dy·Wᵀ`, dW TN `xᵀ·dy`) the software, texture and f16-storage matmuls, interleaved
 * trial by trial so that the machine's load hits them alike; times include the texture and f16
 * packing dispatches. Then f16-storage's error against a float64 reference of the same inputs.
 */
async function variantsSection(gpu: Gpu, opts: Opts) {
  const configs: VariantConfig[] = [
    "software",
    "texture",
    ...(gpu.hasF16 ? ["f16-storage" as const] : []),
  ];
  const mms = new Map<VariantConfig, Matmul>();
  for (const c of configs) {
    mms.set(
      c,
      await Matmul.create(
        gpu,
        c === "f16-storage"
          ? { variant: "software", precision: "f16-storage", tile: opts.tile }
          : { variant: c, tile: opts.tile },
      ),
    );
  }
  const T = opts.quick ? 64 : 2048;
  const models: [string, number][] = opts.quick ? [["tiny", 32]] : [["A", 128], ["B", 256]];
  const rng = new Rng(3);
  const rows: VariantRow[] = [];
  const trials = opts.quick ? 1 : opts.trials;
  for (const [model, d] of models) {
    const layers: [string, number, number][] = [
      ["c_attn", d, 3 * d],
      ["attn.c_proj", d, d],
      ["c_fc", d, 4 * d],
      ["mlp.c_proj", 4 * d, d],
    ];
    for (const [layer, K, N] of layers) {
      const x = randomTensor(gpu, rng, T * K, "x"), W = randomTensor(gpu, rng, K * N, "W");
      const dy = randomTensor(gpu, rng, T * N, "dy");
      const y = gpu.tensor([T * N], undefined, "y"), dx = gpu.tensor([T * K], undefined, "dx");
      const dW = gpu.tensor([K * N], undefined, "dW");
      const cases: [
        VariantRow["layout"],
        number,
        number,
        number,
        (mm: Matmul, b: Batch) => void,
      ][] = [
        ["NN", T, N, K, (mm, b) => mm.linearForward(b, x, W, null, y, T, K, N)],
        ["NT", T, K, N, (mm, b) => mm.linearBackward(b, { x, W, dy, dx, dW: null }, T, K, N)],
        ["TN", K, N, T, (mm, b) => mm.linearBackward(b, { x, W, dy, dx: null, dW }, T, K, N)],
      ];
      for (const [layout, m, n, k, record] of cases) {
        const flop = 2 * m * n * k;
        const reps = opts.quick ? 1 : Math.max(1, Math.round(0.25 / (flop / 20e9)));
        const wall = new Map<VariantConfig, number[]>(), cpu = new Map<VariantConfig, number[]>();
        const run = async (c: VariantConfig) => {
          const b = gpu.batch();
          for (let r = 0; r < reps; r++) record(mms.get(c)!, b);
          const c0 = process.cpuUsage();
          const t0 = performance.now();
          await b.submit();
          await gpu.sync();
          const ms = (performance.now() - t0) / reps;
          const u = process.cpuUsage(c0);
          return { ms, cpuMs: (u.user + u.system) / 1000 / reps };
        };
        for (const c of configs) await run(c); // warm-up: pipelines, scratch textures and buffers
        for (let t = 0; t < trials; t++) {
          for (const c of configs) {
            const r = await run(c);
            wall.set(c, [...(wall.get(c) ?? []), r.ms]);
            cpu.set(c, [...(cpu.get(c) ?? []), r.cpuMs]);
          }
        }
        const row: VariantRow = {
          model,
          layer,
          layout,
          m,
          n,
          k,
          gflops: {} as Record<VariantConfig, number>,
          cpuGflops: {} as Record<VariantConfig, number>,
        };
        for (const c of configs) {
          row.gflops[c] = flop / (median(wall.get(c)!) * 1e6);
          row.cpuGflops[c] = flop / (median(cpu.get(c)!) * 1e6);
        }
        if (gpu.hasF16) {
          Object.assign(
            row,
            await f16Error(gpu, mms.get("f16-storage")!, layout, x, W, dy, T, K, N),
          );
        }
        rows.push(row);
        if (!opts.json) printVariants([row], rows.length === 1, configs);
      }
      for (const t of [x, W, dy, y, dx, dW]) t.release();
    }
  }
  return { configs, rows };
}

/**
 * f16-storage's error on one GEMM of the variants section against float64 (inputs read back as
 * the f32 values the GPU saw): max over elements of |C − C₆₄| / Σ_k |a·b| (what the tests bound
 * by ≈ 2·2⁻¹¹), and the normwise ‖C − C₆₄‖₂ / ‖C₆₄‖₂.
 */
async function f16Error(
  gpu: Gpu,
  mm: Matmul,
  layout: VariantRow["layout"],
  x: Tensor,
  W: Tensor,
  dy: Tensor,
  T: number,
  K: number,
  N: number,
): Promise<{ f16MaxErr: number; f16RelFrob: number }> {
  const [M, Nc, Kc] = layout === "NN" ? [T, N, K] : layout === "NT" ? [T, K, N] : [K, N, T];
  const c = gpu.tensor([M * Nc], undefined, "c");
  const b = gpu.batch();
  if (layout === "NN") mm.gemm(b, { a: x, b: W, c, m: M, n: Nc, k: Kc });
  else if (layout === "NT") mm.gemm(b, { a: dy, b: W, c, m: M, n: Nc, k: Kc, transB: true });
  else mm.gemm(b, { a: x, b: dy, c, m: M, n: Nc, k: Kc, transA: true });
  await b.submit();
  const [got, hx, hW, hdy] = await gpu.read([c, x, W, dy]);
  c.release();
  // op(A)[i,k] and op(B)[k,j] as getters over the stored arrays.
  const A = layout === "NN"
    ? (i: number, k: number) => hx[i * K + k]
    : layout === "NT"
    ? (i: number, k: number) => hdy[i * N + k]
    : (i: number, k: number) => hx[k * K + i];
  const B = layout === "TN"
    ? (k: number, j: number) => hdy[k * N + j]
    : layout === "NT"
    ? (k: number, j: number) => hW[j * N + k]
    : (k: number, j: number) => hW[k * N + j];
  // Every 7th row keeps the float64 reference affordable; all columns.
  let maxErr = 0, num = 0, den = 0;
  const a = new Float64Array(Kc);
  for (let i = 0; i < M; i += 7) {
    for (let k = 0; k < Kc; k++) a[k] = A(i, k);
    for (let j = 0; j < Nc; j++) {
      let s = 0, mag = 0;
      for (let k = 0; k < Kc; k++) {
        const p = a[k] * B(k, j);
        s += p;
        mag += Math.abs(p);
      }
      const e = got[i * Nc + j] - s;
      maxErr = Math.max(maxErr, Math.abs(e) / mag);
      num += e * e;
      den += s * s;
    }
  }
  return { f16MaxErr: maxErr, f16RelFrob: Math.sqrt(num / den) };
}

function printVariants(rows: VariantRow[], header: boolean, configs: VariantConfig[]): void {
  const table = [[
    "model",
    "layer",
    "layout",
    "M×N×K",
    ...configs.map((c) => `${c} GF/s (CPU·s)`),
    ...(configs.includes("f16-storage") ? ["f16 max err/Σ|ab|", "f16 ‖err‖/‖C‖"] : []),
  ]];
  for (const r of rows) {
    table.push([
      r.model,
      r.layer,
      r.layout,
      `${r.m}×${r.n}×${r.k}`,
      ...configs.map((c) => `${r.gflops[c].toFixed(1)} (${r.cpuGflops[c].toFixed(1)})`),
      ...(r.f16MaxErr !== undefined
        ? [r.f16MaxErr.toExponential(2), r.f16RelFrob!.toExponential(2)]
        : []),
    ]);
  }
  const widths = table[0].map((_, i) => Math.max(...table.map((r) => r[i].length)));
  for (const [i, r] of table.entries()) {
    if (i === 0 && !header) continue;
    console.log(r.map((s, c) => (c >= 3 ? s.padStart(widths[c]) : s.padEnd(widths[c]))).join("  "));
  }
}

async function main() {
  const opts = parse();
  const gpu = await Gpu.get();
  const meta = {
    adapter: gpu.adapterName,
    software: gpu.isSoftware,
    deno: Deno.version.deno,
    tile: `${opts.tile[0]}x${opts.tile[1]}`,
    quick: opts.quick,
  };
  if (!opts.json) {
    console.log(
      `adapter: ${meta.adapter}${
        meta.software ? " (software)" : ""
      }; Deno ${meta.deno}; software tile ${meta.tile}${
        opts.quick ? "; QUICK (not a measurement)" : ""
      }`,
    );
  }
  const result: Record<string, unknown> = { ...meta };
  if (opts.sections.includes("matmul")) {
    const m = await matmulSection(gpu, opts);
    Object.assign(result, {
      matmul: m.rows,
      dispatchUs: m.dispatchUs,
      waitMs: m.waitMs,
      plainRatio: m.plainRatio,
    });
    if (!opts.json) printMatmul(m);
  }
  if (opts.sections.includes("train")) {
    if (!opts.json) console.log("");
    const t = await trainSection(gpu, opts);
    result.train = t.rows;
    result.cpuBaseline = t.cpu;
    if (t.peerInfo) Object.assign(result, { peerInfo: t.peerInfo, peer: t.peer });
  }
  if (opts.sections.includes("profile")) {
    result.profile = await profileSection(gpu, opts);
  }
  if (opts.sections.includes("variants")) {
    result.variants = (await variantsSection(gpu, opts)).rows;
  }
  if (opts.sections.includes("big")) {
    // Every measurement runs in a child process (its own peak RSS); progress goes to stderr.
    const big = await bigSection({
      steps: opts.steps,
      parts: opts.parts,
      peer: opts.peer,
      torchThreads: opts.torchThreads,
      quick: opts.quick,
      log: (line) => console.error(`big: ${line}`),
    });
    result.big = big;
    if (!opts.json) printBig(big);
  }
  if (opts.json) console.log(JSON.stringify(result, null, 2));
}

await main();
