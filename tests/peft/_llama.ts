/**
 * Shared by the Llama-family PEFT tests: the three tiny presets, random weights that keep
 * activations O(1), GPU helpers, and a float64 forward of the Llama family with virtual tokens
 * (prompt tuning's input rows, prefix tuning's keys and values) composed from the per-kernel
 * references, as tests/ref/llama.ts composes the plain model.
 */

import {
  type Decoder,
  type Inputs,
  Llama,
  type LlamaConfig,
  llamaConfig,
  llamaParameterShapes,
  type LlamaPresetName,
  type Param,
  projectionBiases,
  Rng,
  type TensorData,
} from "../../mod.ts";
import { gpu } from "../helpers.ts";
import { attentionForward } from "../ref/attention.ts";
import { crossEntropyForward } from "../ref/crossentropy.ts";
import { shiftLabels, type Weights } from "../ref/gpt2.ts";
import { tiedForwardRef } from "../ref/matmul.ts";
import { rmsnormForward } from "../ref/rmsnorm.ts";
import { ropeForward } from "../ref/rope.ts";
import { swigluForward } from "../ref/swiglu.ts";

// llama-tiny: 4 query heads on 2 kv heads, untied head; smollm-tiny: 3 on 1, tied; qwen2-tiny:
// 4 on 2, q/k/v biases, tied.
export const LLAMA_PRESETS: LlamaPresetName[] = ["llama-tiny", "smollm-tiny", "qwen2-tiny"];

/**
 * Random weights as tests/models/llama_test.ts draws them (the init's std 0.02 would make every
 * block nearly linear and the tests weak): matrices N(0, 0.15²), embeddings and the head
 * N(0, 0.3²), biases N(0, 0.1²), RMSNorm weights 1 + N(0, 0.1²); rounded to f32 so the GPU and
 * the reference see equal inputs.
 */
export function llamaWeights(cfg: LlamaConfig, seed: number): Weights {
  const rng = new Rng(seed);
  const w: Weights = new Map();
  for (const [name, shape] of llamaParameterShapes(cfg)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const norm = name.endsWith("norm.weight");
    const std = /embed_tokens|lm_head/.test(name)
      ? 0.3
      : norm || name.endsWith(".bias")
      ? 0.1
      : 0.15;
    const mean = norm ? 1 : 0;
    w.set(name, Float64Array.from({ length: n }, () => Math.fround(mean + std * rng.normal())));
  }
  return w;
}

/** Weights as the f32 tensors `Llama.create` takes. */
export function llamaF32(w: Weights, cfg: LlamaConfig): Map<string, TensorData> {
  const shapes = llamaParameterShapes(cfg);
  return new Map(
    [...w].map(([k, v]) => [k, { shape: shapes.get(k)!, data: Float32Array.from(v) }]),
  );
}

/** A preset's config, float64 weights and a model built from them. */
export async function llamaSetup(preset: LlamaPresetName, seed: number) {
  const cfg = llamaConfig(preset), w = llamaWeights(cfg, seed);
  const model = await Llama.create(await gpu(), cfg, { weights: llamaF32(w, cfg) });
  return { cfg, w, model };
}

/** Random ids (B,T) and labels = ids with each row's first label −100. */
export function llamaBatch(cfg: LlamaConfig, B: number, T: number, seed: number): Inputs & {
  ids: number[];
  labels: number[];
} {
  const rng = new Rng(seed);
  const ids = Array.from({ length: B * T }, () => rng.int(cfg.vocab_size));
  return { ids, labels: ids.map((id, i) => (i % T) === 0 ? -100 : id) };
}

/** Logits (B, n+T, V) of an inference forward, all rows. */
export async function allLogits(model: Decoder, inputs: Inputs, B: number, T: number) {
  const acts = model.activations(B, T);
  const batch = model.gpu.batch();
  model.forward(batch, acts, inputs);
  await batch.submit();
  const [logits] = await model.gpu.read([acts.logits]);
  const loss = inputs.labels ? await model.meanLoss(acts) : NaN;
  acts.release();
  return { logits, loss };
}

/** Logits of the real positions (B, T, V) only (the virtual rows dropped) and the mean loss. */
export async function realLogits(model: Decoder, inputs: Inputs, B: number, T: number) {
  const n = model.virtual?.n ?? 0, V = model.shape.V, S = n + T;
  const { logits, loss } = await allLogits(model, inputs, B, T);
  const out = new Float32Array(B * T * V);
  for (let b = 0; b < B; b++) out.set(logits.subarray((b * S + n) * V, (b + 1) * S * V), b * T * V);
  return { logits: out, loss };
}

/** Gradients of `params` after one training forward and backward (zeroed first). */
export async function gradsOf(
  model: Decoder,
  inputs: Inputs,
  B: number,
  T: number,
  params: Param[],
): Promise<Float32Array[]> {
  const acts = model.activations(B, T);
  const batch = model.gpu.batch();
  model.zeroGrad(batch);
  model.forward(batch, acts, inputs, { training: true });
  model.backward(batch, acts);
  await batch.submit();
  const out = await model.gpu.read(params.map((p) => p.grad!));
  acts.release();
  return out;
}

/** Virtual tokens of {@linkcode llamaVirtualRef}. */
export interface LlamaVirtual {
  /**
   * Prompt tuning: P (n, C), prepended to the input embeddings; the sequence is then n+T rows at
   * positions 0..n+T−1, the virtual rows labelled −100.
   */
  prompt?: Float64Array;
  /**
   * Prefix tuning: (n, L·2·Hkv·d) in PEFT's layout (layer, then key/value, then kv head and
   * channel); the real tokens take positions n..n+T−1 and every layer attends over
   * [P_k; K] and [P_v; V], the prefix keys not rotated (Hugging Face's past_key_values).
   */
  prefix?: Float64Array;
  /** Number of virtual tokens. */
  n: number;
}

/**
 * Llama-family forward in float64 with virtual tokens: logits (B·S, V) (S = n+T rows with prompt
 * tuning, T with prefix tuning) and the mean loss over the shifted labels (virtual rows −100).
 * Prefix attention is done directly: the keys and values of each layer are [P_k; K] and [P_v; V]
 * over n+T key positions, the n prefix rows carrying a zero query whose output is discarded.
 */
export function llamaVirtualRef(
  cfg: LlamaConfig,
  w: Weights,
  ids: ArrayLike<number>,
  labels: ArrayLike<number>,
  B: number,
  T: number,
  v: LlamaVirtual,
): { logits: Float64Array; loss: number } {
  const C = cfg.hidden_size, V = cfg.vocab_size, L = cfg.num_hidden_layers;
  const H = cfg.num_attention_heads, Hkv = cfg.num_key_value_heads, d = cfg.head_dim;
  const F = cfg.intermediate_size, eps = cfg.rms_norm_eps, Q = H * d, W = (H + 2 * Hkv) * d;
  const biases = projectionBiases(cfg);
  const p = (name: string) => {
    const t = w.get(name);
    if (!t) throw new Error(`reference: missing ${name}`);
    return t;
  };
  const nP = v.prompt ? v.n : 0, nK = v.prefix ? v.n : 0, S = nP + T, M = B * S;
  const linear = (x: Float64Array, name: string, bias: boolean, rows: number, N: number) => {
    const y = tiedForwardRef(x, p(name + ".weight"), rows, x.length / rows, N);
    if (bias) {
      const b = p(name + ".bias");
      for (let i = 0; i < rows; i++) for (let j = 0; j < N; j++) y[i * N + j] += b[j];
    }
    return y;
  };
  // Input rows: [P; wte[ids]] with prompt tuning, wte[ids] otherwise.
  const embed = p("model.embed_tokens.weight");
  let x = new Float64Array(M * C);
  for (let b = 0; b < B; b++) {
    for (let s = 0; s < S; s++) {
      const src = s < nP ? v.prompt!.subarray(s * C, (s + 1) * C) : embed.subarray(
        ids[b * T + s - nP] * C,
        (ids[b * T + s - nP] + 1) * C,
      );
      x.set(src, (b * S + s) * C);
    }
  }
  const Se = nK + S;
  for (let l = 0; l < L; l++) {
    const at = `model.layers.${l}.`, a = at + "self_attn.", m = at + "mlp.";
    const rms1 = rmsnormForward(x, p(at + "input_layernorm.weight"), M, C, eps).out;
    const q = linear(rms1, a + "q_proj", biases.qkv, M, Q);
    const k = linear(rms1, a + "k_proj", biases.qkv, M, Hkv * d);
    const vv = linear(rms1, a + "v_proj", biases.qkv, M, Hkv * d);
    const packed = new Float64Array(M * W);
    for (let i = 0; i < M; i++) {
      packed.set(q.subarray(i * Q, (i + 1) * Q), i * W);
      packed.set(k.subarray(i * Hkv * d, (i + 1) * Hkv * d), i * W + Q);
      packed.set(vv.subarray(i * Hkv * d, (i + 1) * Hkv * d), i * W + Q + Hkv * d);
    }
    // The real (and prompt) rows sit after the prefix: positions nK..nK+S−1.
    const rot = ropeForward(packed, { B, T: S, H, Hkv, d, offset: nK, theta: cfg.rope_theta });
    const ext = new Float64Array(B * Se * W);
    for (let b = 0; b < B; b++) {
      for (let j = 0; j < nK; j++) {
        const src = j * L * 2 * Hkv * d + l * 2 * Hkv * d;
        ext.set(v.prefix!.subarray(src, src + 2 * Hkv * d), (b * Se + j) * W + Q);
      }
      ext.set(rot.subarray(b * S * W, (b + 1) * S * W), (b * Se + nK) * W);
    }
    const { out: attyExt } = attentionForward(ext, B, Se, Q, H, Hkv);
    const atty = new Float64Array(M * Q);
    for (let b = 0; b < B; b++) {
      atty.set(attyExt.subarray((b * Se + nK) * Q, (b + 1) * Se * Q), b * S * Q);
    }
    const h = x.slice();
    const o = linear(atty, a + "o_proj", biases.o, M, C);
    for (let i = 0; i < h.length; i++) h[i] += o[i];
    const rms2 = rmsnormForward(h, p(at + "post_attention_layernorm.weight"), M, C, eps).out;
    const act = swigluForward(
      linear(rms2, m + "gate_proj", cfg.mlp_bias, M, F),
      linear(rms2, m + "up_proj", cfg.mlp_bias, M, F),
    );
    const down = linear(act, m + "down_proj", cfg.mlp_bias, M, C);
    for (let i = 0; i < h.length; i++) h[i] += down[i];
    x = h;
  }
  const norm = rmsnormForward(x, p("model.norm.weight"), M, C, eps).out;
  const head = cfg.tie_word_embeddings ? embed : p("lm_head.weight");
  const logits = tiedForwardRef(norm, head, M, C, V);
  const full = new Int32Array(M).fill(-100);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) full[b * S + nP + t] = labels[b * T + t];
  }
  const targets = shiftLabels(full, B, S);
  const losses = crossEntropyForward(logits, targets, M, V);
  let sum = 0, count = 0;
  targets.forEach((tg, i) => {
    if (tg !== -100) {
      sum += losses[i];
      count++;
    }
  });
  return { logits, loss: sum / count };
}
