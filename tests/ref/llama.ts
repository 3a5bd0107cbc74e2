/**
 * Plain float64 reference of the whole Llama-family forward and backward (Hugging Face
 * `LlamaForCausalLM` / `Qwen2ForCausalLM`, no dropout but, optionally, the attention-probability
 * dropout of given masks), composed from the per-kernel references as
 * tests/ref/gpt2.ts composes GPT-2's: logits, loss and the gradient of every parameter, by Hugging
 * Face name. Labels are shifted inside; positions are 0..T−1 in every row.
 *
 * Shapes: C = hidden_size, H query heads and Hkv key/value heads of size d, F = intermediate_size,
 * M = B·T rows. `nn.Linear` weights are [out, in] (y = x·Wᵀ + b). q, k and v are computed as one
 * projection by the row-wise concatenation of q_proj, k_proj and v_proj ([(H + 2·Hkv)·d, C]), whose
 * output is exactly the packed (B,T,(H + 2·Hkv)·d) layout the rotary and attention references read.
 */

import { type LlamaConfig, projectionBiases } from "../../models/llama_config.ts";
import { attentionBackward, attentionForward, type LayerDropout } from "./attention.ts";
import { crossEntropyBackward, crossEntropyForward } from "./crossentropy.ts";
import { embeddingBackward, embeddingForward } from "./embedding.ts";
import { type RefResult, shiftLabels, type Weights } from "./gpt2.ts";
import { tiedBackwardRef, tiedForwardRef } from "./matmul.ts";
import { rmsnormBackward, rmsnormForward, type RMSNormOut } from "./rmsnorm.ts";
import { ropeBackward, ropeForward, type RopeShape } from "./rope.ts";
import { swigluBackward, swigluForward } from "./swiglu.ts";

export type { RefResult, Weights };

function addInto(dst: Float64Array, src: Float64Array): void {
  for (let i = 0; i < dst.length; i++) dst[i] += src[i];
}

function concat(parts: Float64Array[]): Float64Array {
  const out = new Float64Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** y (M,N) = x (M,K) · Wᵀ + bias, W [N, K] as `nn.Linear` stores it (bias (N) or null). */
function linearForward(
  x: Float64Array,
  W: Float64Array,
  bias: Float64Array | null,
  M: number,
  K: number,
  N: number,
): Float64Array {
  const y = tiedForwardRef(x, W, M, K, N);
  if (bias) {
    for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) y[i * N + j] += bias[j];
  }
  return y;
}

/** dx (M,K) = dy·W, dW [N, K] = dyᵀ·x, dBias (N) = column sums of dy (all fresh). */
function linearBackward(
  x: Float64Array,
  W: Float64Array,
  dy: Float64Array,
  M: number,
  K: number,
  N: number,
): { dx: Float64Array; dW: Float64Array; dBias: Float64Array } {
  const { dx, dWte: dW } = tiedBackwardRef(x, W, dy, M, K, N);
  const dBias = new Float64Array(N);
  for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) dBias[j] += dy[i * N + j];
  return { dx, dW, dBias };
}

/** Llama-family forward (and backward with `withGrads`) in float64. */
export function llamaRef(
  cfg: LlamaConfig,
  w: Weights,
  ids: ArrayLike<number>,
  labels: ArrayLike<number>,
  B: number,
  T: number,
  withGrads = false,
  attnDropout?: LayerDropout,
): RefResult {
  const drop = (l: number) => attnDropout && { p: attnDropout.p, seed: attnDropout.seed(l) };
  const C = cfg.hidden_size, V = cfg.vocab_size, L = cfg.num_hidden_layers, M = B * T;
  const H = cfg.num_attention_heads, Hkv = cfg.num_key_value_heads, d = cfg.head_dim;
  const F = cfg.intermediate_size, eps = cfg.rms_norm_eps;
  const Q = H * d, W = (H + 2 * Hkv) * d;
  const biases = projectionBiases(cfg);
  const rope: RopeShape = { B, T, H, Hkv, d, offset: 0, theta: cfg.rope_theta };
  const headName = cfg.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight";
  const p = (name: string) => {
    const v = w.get(name);
    if (!v) throw new Error(`reference: missing ${name}`);
    return v;
  };
  const qkvNames = ["q_proj", "k_proj", "v_proj"];
  type Saved = {
    x: Float64Array;
    rms1: RMSNormOut;
    qkv: Float64Array;
    att: Float64Array;
    atty: Float64Array;
    h: Float64Array;
    rms2: RMSNormOut;
    gate: Float64Array;
    up: Float64Array;
    act: Float64Array;
  };
  const saved: Saved[] = [];
  // Projection `name` ([N, K] weight, bias when `hasBias`) of x (M,K).
  const proj = (xIn: Float64Array, name: string, hasBias: boolean, K: number, N: number) =>
    linearForward(xIn, p(name + ".weight"), hasBias ? p(name + ".bias") : null, M, K, N);
  let x = embeddingForward(ids, p("model.embed_tokens.weight"), null, B, T, C);
  for (let l = 0; l < L; l++) {
    const at = `model.layers.${l}.`, a = at + "self_attn.", m = at + "mlp.";
    const rms1 = rmsnormForward(x, p(at + "input_layernorm.weight"), M, C, eps);
    const qkvW = concat(qkvNames.map((n) => p(a + n + ".weight")));
    const qkvB = biases.qkv ? concat(qkvNames.map((n) => p(a + n + ".bias"))) : null;
    const qkv = ropeForward(linearForward(rms1.out, qkvW, qkvB, M, C, W), rope);
    const { out: atty, att } = attentionForward(qkv, B, T, Q, H, Hkv, drop(l));
    const h = x.slice();
    addInto(h, proj(atty, a + "o_proj", biases.o, Q, C));
    const rms2 = rmsnormForward(h, p(at + "post_attention_layernorm.weight"), M, C, eps);
    const gate = proj(rms2.out, m + "gate_proj", cfg.mlp_bias, C, F);
    const up = proj(rms2.out, m + "up_proj", cfg.mlp_bias, C, F);
    const act = swigluForward(gate, up);
    const out = h.slice();
    addInto(out, proj(act, m + "down_proj", cfg.mlp_bias, F, C));
    saved.push({ x, rms1, qkv, att, atty, h, rms2, gate, up, act });
    x = out;
  }
  const norm = rmsnormForward(x, p("model.norm.weight"), M, C, eps);
  const logits = tiedForwardRef(norm.out, p(headName), M, C, V);
  const targets = shiftLabels(labels, B, T);
  const losses = crossEntropyForward(logits, targets, M, V);
  let count = 0, sum = 0;
  for (let i = 0; i < M; i++) {
    if (targets[i] !== -100) {
      count++;
      sum += losses[i];
    }
  }
  const loss = count > 0 ? sum / count : NaN;
  if (!withGrads) return { logits, loss };

  const g: Weights = new Map([...w].map(([k, v]) => [k, new Float64Array(v.length)]));
  const gp = (name: string) => g.get(name)!;
  const dlogits = crossEntropyBackward(logits, targets, M, V, count > 0 ? 1 / count : 0);
  // With tied embeddings this is the head's share of embed_tokens' gradient; the lookup's is added below.
  const head = tiedBackwardRef(norm.out, p(headName), dlogits, M, C, V);
  addInto(gp(headName), head.dWte);
  const dres = new Float64Array(M * C);
  const normW = "model.norm.weight";
  rmsnormBackward(head.dx, x, p(normW), norm.rstd, dres, gp(normW), M, C);
  // proj's backward: adds the weight (and bias) gradient of `name`, returns dx (M,K).
  const projBackward = (
    xIn: Float64Array,
    name: string,
    hasBias: boolean,
    dy: Float64Array,
    K: number,
    N: number,
  ) => {
    const r = linearBackward(xIn, p(name + ".weight"), dy, M, K, N);
    addInto(gp(name + ".weight"), r.dW);
    if (hasBias) addInto(gp(name + ".bias"), r.dBias);
    return r.dx;
  };
  for (let l = L - 1; l >= 0; l--) {
    const at = `model.layers.${l}.`, a = at + "self_attn.", m = at + "mlp.", s = saved[l];
    const dact = projBackward(s.act, m + "down_proj", cfg.mlp_bias, dres, F, C);
    const { dgate, dup } = swigluBackward(s.gate, s.up, dact);
    const dn2 = projBackward(s.rms2.out, m + "gate_proj", cfg.mlp_bias, dgate, C, F);
    addInto(dn2, projBackward(s.rms2.out, m + "up_proj", cfg.mlp_bias, dup, C, F));
    const rms2 = at + "post_attention_layernorm.weight";
    rmsnormBackward(dn2, s.h, p(rms2), s.rms2.rstd, dres, gp(rms2), M, C);
    const datty = projBackward(s.atty, a + "o_proj", biases.o, dres, Q, C);
    const dqkv = ropeBackward(
      attentionBackward(datty, s.qkv, s.att, B, T, Q, H, Hkv, drop(l)),
      rope,
    );
    // Split the packed gradient's columns back into q_proj, k_proj and v_proj.
    const dn1 = new Float64Array(M * C);
    let col = 0;
    for (const [n, N] of [["q_proj", Q], ["k_proj", Hkv * d], ["v_proj", Hkv * d]] as const) {
      const dy = new Float64Array(M * N);
      for (let i = 0; i < M; i++) dy.set(dqkv.subarray(i * W + col, i * W + col + N), i * N);
      addInto(dn1, projBackward(s.rms1.out, a + n, biases.qkv, dy, C, N));
      col += N;
    }
    const rms1 = at + "input_layernorm.weight";
    rmsnormBackward(dn1, s.x, p(rms1), s.rms1.rstd, dres, gp(rms1), M, C);
  }
  embeddingBackward(ids, dres, gp("model.embed_tokens.weight"), null, B, T, C);
  return { logits, loss, grads: g };
}
