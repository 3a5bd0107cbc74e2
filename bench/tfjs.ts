/**
 * The TF.js peer of `deno task bench`'s training section: the same GPT-2 (pre-LN, learned
 * positions, GELU tanh, causal attention, tied lm_head, no dropout), the same configurations,
 * batch and data as bench/train.ts, trained with TF.js 4.22's `webgpu` backend on the same
 * WebGPU adapter, in the same process. A benchmark-only dependency: nothing under mod.ts imports
 * this file.
 *
 * TF.js is imported as the `@tensorflow/tfjs` umbrella package: `@tensorflow/tfjs-core`'s CommonJS
 * bundle registers no gradients, and its `dist/register_all_gradients.js` is ESM with extensionless
 * imports, which Deno does not resolve. The umbrella's bundle registers them.
 *
 * Differences from whet's step, all in TF.js's favour: `tf.train.adam` (Adam, no weight decay;
 * whet runs AdamW with decay 0.01) and no gradient-norm clipping (whet clips at 1.0).
 *
 * @module
 */

import process from "node:process";
// Pinned inline like deps.ts (DESIGN.md: `npm:name@x.y.z`, no import map), but here, not in deps.ts:
// the library must not depend on TF.js. Only bench/deno.json's lockfile (bench/deno.lock) has it:
// Deno installs every package of a lockfile before running, so in deno.lock it would be downloaded
// by every `deno task train` and `deno task test`.
// deno-lint-ignore no-import-prefix
import * as tf from "npm:@tensorflow/tfjs@4.22.0";
// deno-lint-ignore no-import-prefix
import "npm:@tensorflow/tfjs-backend-webgpu@4.22.0";
import type { GPTConfig } from "../mod.ts";
import {
  BENCH_ADAPTERS,
  BENCH_CONFIGS,
  BENCH_LORA,
  BENCH_VIRTUAL,
  benchData,
  type BenchMethod,
  type BenchModel,
  type GPT2BenchModel,
  type TrainRow,
} from "./train.ts";

/** One measured (model, method) pair of the TF.js peer. */
export interface PeerRow {
  /** Model A, B or tiny (as bench/train.ts). */
  model: BenchModel;
  /** Fine-tuning method. */
  method: BenchMethod;
  /** Trainable parameters (the variables handed to the optimizer). */
  trainable: number;
  /** Batch × context (real tokens per step; prompt tuning's virtual tokens are not counted). */
  batch: number;
  context: number;
  /** Timed steps (after one warm-up step). */
  steps: number;
  /** Real tokens per wall second over the timed steps (one GPU wait at the end included). */
  tokensPerSecond: number;
  /** Real tokens per CPU second of this process (lavapipe runs in-process). */
  tokensPerCpuSecond: number;
  /** Wall milliseconds per step. */
  msPerStep: number;
  /** Loss of the warm-up step (before any update) and of the last timed step. */
  initialLoss: number;
  finalLoss: number;
  /** `tf.memory()` after the timed steps: bytes of live tensors (weights and Adam's state). */
  tensorBytes: number;
  /**
   * `tf.memory().numBytesAllocatedInGPU` after the timed steps: every GPU buffer TF.js holds,
   * its pool of freed buffers included. TF.js never shrinks the pool, so this counts the
   * earlier runs of the process too.
   */
  gpuBytesAllocated: number;
}

/** The TF.js side of the peer: version, backend and adapter. */
export interface PeerInfo {
  /** `tf.version.tfjs`. */
  version: string;
  /** `tf.getBackend()`: always `webgpu` (anything else throws). */
  backend: string;
  /** `adapter.info.description` of the adapter TF.js's backend requests. */
  adapter: string;
}

const LR = 1e-3;

let info: PeerInfo | undefined;

/**
 * Selects TF.js's `webgpu` backend (once) and says which adapter it runs on. Throws when the
 * backend cannot be set, so the peer never falls back to `webgl` or `cpu` unnoticed, and when
 * `expectAdapter` is given and the adapter's description is another.
 */
export async function tfjsPeer(expectAdapter?: string): Promise<PeerInfo> {
  info ??= await selectWebgpu();
  if (expectAdapter !== undefined && info.adapter !== expectAdapter) {
    throw new Error(
      `Cannot run the TF.js peer: it runs on "${info.adapter}", not on "${expectAdapter}"`,
    );
  }
  return info;
}

async function selectWebgpu(): Promise<PeerInfo> {
  // TF.js's backend asks for the adapter this way (powerPreference "high-performance").
  const adapter = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) throw new Error("Cannot run the TF.js peer: no WebGPU adapter");
  if (!(await tf.setBackend("webgpu")) || tf.getBackend() !== "webgpu") {
    throw new Error(
      `Cannot run the TF.js peer: the webgpu backend did not initialise (backend: ${tf.getBackend()})`,
    );
  }
  await tf.ready();
  tf.enableProdMode();
  // The backend keeps only vendor and architecture; check it is the adapter asked for above.
  const be = tf.backend() as unknown as { adapterInfo?: { vendor?: string } };
  if (be.adapterInfo?.vendor !== undefined && be.adapterInfo.vendor !== adapter.info.vendor) {
    throw new Error(
      `Cannot run the TF.js peer: its adapter (vendor ${be.adapterInfo.vendor}) is not ` +
        `${adapter.info.description} (vendor ${adapter.info.vendor})`,
    );
  }
  return {
    version: tf.version.tfjs,
    backend: tf.getBackend(),
    // As whet's Gpu names its adapter.
    adapter: adapter.info.description || adapter.info.device || adapter.info.vendor ||
      "unknown adapter",
  };
}

type Var = tf.Variable;

interface BlockWeights {
  ln1g: Var;
  ln1b: Var;
  attnW: Var; // (C, 3C), y = x·W + b as Conv1D stores it
  attnB: Var;
  projW: Var; // (C, C)
  projB: Var;
  ln2g: Var;
  ln2b: Var;
  fcW: Var; // (C, 4C)
  fcB: Var;
  mlpProjW: Var; // (4C, C)
  mlpProjB: Var;
  lora?: { A: Var; B: Var }; // A (r, C), B (3C, r)
  attnAdapter?: Adapter;
  mlpAdapter?: Adapter;
}

interface Adapter {
  downW: Var; // (r, C)
  downB: Var;
  upW: Var; // (C, r)
  upB: Var;
}

interface Model {
  cfg: GPTConfig;
  wte: Var;
  wpe: Var;
  blocks: BlockWeights[];
  lnfg: Var;
  lnfb: Var;
  prompt?: Var; // (n, C)
  trainable: Var[];
  all: Var[];
}

/** GPT-2 with `method`: weights N(0, 0.02), c_proj N(0, 0.02/√(2L)), biases 0, LayerNorm 1/0. */
function build(cfg: GPTConfig, method: BenchMethod, seed: number): Model {
  const C = cfg.n_embd, F = 4 * C, std = cfg.initializer_range;
  const projStd = std / Math.sqrt(2 * cfg.n_layer);
  const full = method === "full";
  const all: Var[] = [];
  const trainable: Var[] = [];
  let s = seed;
  const v = (t: tf.Tensor, train: boolean): Var => {
    const x = tf.variable(t, train);
    t.dispose();
    all.push(x);
    if (train) trainable.push(x);
    return x;
  };
  const normal = (shape: number[], sd: number, train = full) =>
    v(tf.randomNormal(shape, 0, sd, "float32", s++), train);
  const zeros = (shape: number[], train = full) => v(tf.zeros(shape), train);
  const ones = (shape: number[]) => v(tf.ones(shape), full);
  // kaiming-uniform with a = √5: U(−1/√fanIn, 1/√fanIn), as LoRA's A and the adapters' down.
  const kaiming = (shape: number[], fanIn: number) =>
    v(tf.randomUniform(shape, -1 / Math.sqrt(fanIn), 1 / Math.sqrt(fanIn), "float32", s++), true);
  const adapter = (): Adapter => {
    const r = Math.max(1, Math.floor(C / BENCH_ADAPTERS.reduction_factor));
    return {
      downW: kaiming([r, C], C),
      downB: zeros([r], true),
      upW: zeros([C, r], true),
      upB: zeros([C], true),
    };
  };
  const wte = normal([cfg.vocab_size, C], std);
  const wpe = normal([cfg.n_positions, C], std);
  const blocks: BlockWeights[] = [];
  for (let l = 0; l < cfg.n_layer; l++) {
    const b: BlockWeights = {
      ln1g: ones([C]),
      ln1b: zeros([C]),
      attnW: normal([C, 3 * C], std),
      attnB: zeros([3 * C]),
      projW: normal([C, C], projStd),
      projB: zeros([C]),
      ln2g: ones([C]),
      ln2b: zeros([C]),
      fcW: normal([C, F], std),
      fcB: zeros([F]),
      mlpProjW: normal([F, C], projStd),
      mlpProjB: zeros([C]),
    };
    if (method === "lora") {
      b.lora = { A: kaiming([BENCH_LORA.r, C], C), B: zeros([3 * C, BENCH_LORA.r], true) };
    }
    if (method === "adapters") {
      if (BENCH_ADAPTERS.placement === "houlsby") b.attnAdapter = adapter();
      b.mlpAdapter = adapter();
    }
    blocks.push(b);
  }
  const lnfg = ones([C]), lnfb = zeros([C]);
  // Prompt tuning's RANDOM init: N(0, 1), as torch.nn.Embedding.
  const prompt = method === "prompt" ? normal([BENCH_VIRTUAL, C], 1, true) : undefined;
  return { cfg, wte, wpe, blocks, lnfg, lnfb, prompt, trainable, all };
}

function layerNorm(x: tf.Tensor2D, g: Var, b: Var, eps: number): tf.Tensor2D {
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps))), g), b);
}

/** x (M,in) · W (in,out) + b. */
function linear(x: tf.Tensor2D, W: Var, b: Var): tf.Tensor2D {
  return tf.fused.matMul({ a: x, b: W as tf.Tensor2D, bias: b }) as tf.Tensor2D;
}

function geluTanh(x: tf.Tensor2D): tf.Tensor2D {
  const inner = tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.pow(x, 3))));
  return tf.mul(tf.mul(0.5, x), tf.add(1, tf.tanh(inner)));
}

function activation(x: tf.Tensor2D): tf.Tensor2D {
  switch (BENCH_ADAPTERS.non_linearity) {
    case "relu":
      return tf.relu(x);
    case "swish":
      return tf.mul(x, tf.sigmoid(x));
    case "gelu_new":
      return geluTanh(x);
    default: // gelu, erf form
      return tf.mul(tf.mul(0.5, x), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2))));
  }
}

/** h ← h + up(act(down(h))). */
function adapterForward(h: tf.Tensor2D, a: Adapter): tf.Tensor2D {
  const z = tf.fused.matMul({ a: h, b: a.downW as tf.Tensor2D, transposeB: true, bias: a.downB });
  const up = tf.fused.matMul({
    a: activation(z as tf.Tensor2D),
    b: a.upW as tf.Tensor2D,
    transposeB: true,
    bias: a.upB,
  });
  return tf.add(h, up);
}

/** Causal self-attention of x (B·T, C) → (B·T, C), before c_proj. */
function attention(
  qkv: tf.Tensor2D,
  B: number,
  T: number,
  C: number,
  H: number,
  mask: tf.Tensor2D,
): tf.Tensor2D {
  const D = C / H;
  const heads = (t: tf.Tensor) =>
    tf.reshape(tf.transpose(tf.reshape(t, [B, T, H, D]), [0, 2, 1, 3]), [B * H, T, D]);
  const [q, k, v] = tf.split(qkv, 3, 1).map(heads) as tf.Tensor3D[];
  const att = tf.softmax(tf.add(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(D)), mask));
  const y = tf.matMul(att, v);
  return tf.reshape(tf.transpose(tf.reshape(y, [B, H, T, D]), [0, 2, 1, 3]), [B * T, C]);
}

/** Mean cross-entropy of the batch: `target` (B·T, V) holds 1/(scored count) at each label. */
function loss(
  m: Model,
  ids: tf.Tensor1D,
  target: tf.Tensor2D,
  mask: tf.Tensor2D,
  B: number,
  realT: number,
): tf.Scalar {
  const { cfg } = m, C = cfg.n_embd, n = m.prompt ? BENCH_VIRTUAL : 0, T = n + realT;
  const eps = cfg.layer_norm_epsilon;
  let emb: tf.Tensor3D = tf.reshape(tf.gather(m.wte, ids), [B, realT, C]);
  if (m.prompt) emb = tf.concat([tf.tile(tf.expandDims(m.prompt, 0), [B, 1, 1]), emb], 1);
  let x = tf.reshape(tf.add(emb, tf.slice(m.wpe, [0, 0], [T, C])), [B * T, C]) as tf.Tensor2D;
  for (const b of m.blocks) {
    const h1 = layerNorm(x, b.ln1g, b.ln1b, eps);
    let qkv = linear(h1, b.attnW, b.attnB);
    if (b.lora) {
      const u = tf.matMul(h1, b.lora.A, false, true);
      qkv = tf.add(
        qkv,
        tf.mul(tf.matMul(u, b.lora.B, false, true), BENCH_LORA.lora_alpha / BENCH_LORA.r),
      );
    }
    let a = linear(attention(qkv, B, T, C, cfg.n_head, mask), b.projW, b.projB);
    if (b.attnAdapter) a = adapterForward(a, b.attnAdapter);
    x = tf.add(x, a);
    let f = linear(
      geluTanh(linear(layerNorm(x, b.ln2g, b.ln2b, eps), b.fcW, b.fcB)),
      b.mlpProjW,
      b.mlpProjB,
    );
    if (b.mlpAdapter) f = adapterForward(f, b.mlpAdapter);
    x = tf.add(x, f);
  }
  const logits = tf.matMul(layerNorm(x, m.lnfg, m.lnfb, eps), m.wte, false, true);
  return tf.neg(tf.sum(tf.mul(tf.logSoftmax(logits), target)));
}

/**
 * The targets as a (B·T, V) array: 1/(number of scored positions) at the next token's label,
 * as whet shifts labels (position t predicts label t+1; with virtual tokens, the last virtual
 * position predicts the first real label, and the other virtual positions predict nothing).
 */
function targets(ids: number[], B: number, realT: number, n: number, V: number): Float32Array {
  const T = n + realT;
  const scored: number[] = [];
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const next = t + 1 - n;
      if (next >= 0 && next < realT) scored.push((b * T + t) * V + ids[b * realT + next]);
    }
  }
  const out = new Float32Array(B * T * V);
  for (const i of scored) out[i] = 1 / scored.length;
  return out;
}

/**
 * Trains `which` with `method` in TF.js on the webgpu backend: one warm-up step, then `steps`
 * timed steps (`optimizer.minimize` each), the last loss read once at the end (`await data()`:
 * the webgpu backend has no synchronous read of GPU tensors; one GPU wait).
 */
export async function benchTfjs(
  which: GPT2BenchModel,
  method: BenchMethod,
  steps: number,
): Promise<PeerRow> {
  await tfjsPeer();
  const cfg = BENCH_CONFIGS[which]();
  const n = method === "prompt" ? BENCH_VIRTUAL : 0;
  const B = which === "tiny" ? 2 : 16, realT = cfg.n_positions - n, T = n + realT;
  const V = cfg.vocab_size;
  const hostIds = benchData(B, realT, V);
  const m = build(cfg, method, 1);
  const ids = tf.tensor1d(hostIds, "int32");
  const target = tf.tensor2d(targets(hostIds, B, realT, n, V), [B * T, V]);
  const causal = new Float32Array(T * T);
  for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) causal[i * T + j] = -1e9;
  const mask = tf.tensor2d(causal, [T, T]);
  const opt = tf.train.adam(LR);
  const step = () => opt.minimize(() => loss(m, ids, target, mask, B, realT), true, m.trainable)!;
  try {
    const warm = step();
    const initialLoss = (await warm.data())[0];
    warm.dispose();
    let last: tf.Scalar | undefined;
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    for (let s = 0; s < steps; s++) {
      last?.dispose();
      last = step();
    }
    const finalLoss = (await last!.data())[0];
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(c0);
    last!.dispose();
    const mem = tf.memory() as tf.MemoryInfo & { numBytesAllocatedInGPU?: number };
    const realTokens = steps * B * realT;
    return {
      model: which,
      method,
      trainable: m.trainable.reduce((a, x) => a + x.size, 0),
      batch: B,
      context: realT,
      steps,
      tokensPerSecond: realTokens / seconds,
      tokensPerCpuSecond: realTokens / ((cpu.user + cpu.system) / 1e6),
      msPerStep: (seconds * 1000) / steps,
      initialLoss,
      finalLoss,
      tensorBytes: mem.numBytes,
      gpuBytesAllocated: mem.numBytesAllocatedInGPU ?? 0,
    };
  } finally {
    opt.dispose();
    tf.dispose([ids, target, mask, ...m.all]);
  }
}

/** A peer row beside whet's row of the same model and method. */
export interface PeerComparison extends PeerRow {
  /** whet ÷ TF.js, real tokens per wall second. */
  ratio: number;
  /** whet ÷ TF.js, real tokens per CPU second. */
  cpuRatio: number;
  /** Whether both trained as many parameters (a check that the two models are the same). */
  sameTrainable: boolean;
}

/** `peer` with whet's ratios from `whet`, the row of the same model and method. */
export function compare(whet: TrainRow, peer: PeerRow): PeerComparison {
  if (whet.model !== peer.model || whet.method !== peer.method) {
    throw new Error(
      `Cannot compare whet's ${whet.model}/${whet.method} with TF.js's ${peer.model}/${peer.method}`,
    );
  }
  return {
    ...peer,
    ratio: whet.tokensPerSecond / peer.tokensPerSecond,
    cpuRatio: whet.tokensPerCpuSecond / peer.tokensPerCpuSecond,
    sameTrainable: whet.trainable === peer.trainable,
  };
}

/** Prints the peer table. */
export function printPeer(peer: PeerInfo, rows: PeerComparison[]): void {
  console.log(
    `\nTF.js ${peer.version} peer, backend ${peer.backend} on ${peer.adapter} ` +
      `(tf.train.adam, no weight decay or clipping; same model, batch and data):`,
  );
  const table = [[
    "model",
    "method",
    "trainable",
    "tokens/s",
    "tokens/CPU·s",
    "ms/step",
    "loss first→last",
    "tensor MB",
    "whet÷TF.js",
    "per CPU·s",
  ]];
  for (const r of rows) {
    table.push([
      r.model,
      r.method,
      `${r.trainable}${r.sameTrainable ? "" : " (≠ whet)"}`,
      r.tokensPerSecond.toFixed(0),
      r.tokensPerCpuSecond.toFixed(0),
      r.msPerStep.toFixed(0),
      `${r.initialLoss.toFixed(3)}→${r.finalLoss.toFixed(3)}`,
      (r.tensorBytes / 1e6).toFixed(1),
      `${r.ratio.toFixed(1)}×`,
      `${r.cpuRatio.toFixed(1)}×`,
    ]);
  }
  const widths = table[0].map((_, i) => Math.max(...table.map((r) => r[i].length)));
  for (const r of table) {
    console.log(r.map((s, c) => (c >= 2 ? s.padStart(widths[c]) : s.padEnd(widths[c]))).join("  "));
  }
  if (rows.some((r) => !r.sameTrainable)) {
    console.error(
      "bench: TF.js and whet trained different numbers of parameters: bench/tfjs.ts no longer " +
        "matches bench/train.ts build()",
    );
  }
}
