/**
 * Plain float64 reference of the whole GPT-2 forward and backward (no dropout but, optionally, the
 * attention-probability dropout of given masks), composed from the
 * per-kernel references, as llm.c's test_gpt2.c checks its model against PyTorch: logits, loss and
 * the gradient of every parameter. Parameters by Hugging Face name; labels are shifted inside.
 */

import type { GPTConfig } from "../../models/config.ts";
import { attentionBackward, attentionForward, type LayerDropout } from "./attention.ts";
import { crossEntropyBackward, crossEntropyForward } from "./crossentropy.ts";
import { embeddingBackward, embeddingForward } from "./embedding.ts";
import { geluBackward, geluForward } from "./gelu.ts";
import { layernormBackward, layernormForward, type LayerNormOut } from "./layernorm.ts";
import { linearBackwardRef, linearForwardRef, tiedBackwardRef, tiedForwardRef } from "./matmul.ts";

/** Parameters or gradients by Hugging Face name. */
export type Weights = Map<string, Float64Array>;

/** What the reference forward computes and backward returns. */
export interface RefResult {
  /** Logits (B·T, V). */
  logits: Float64Array;
  /** Mean loss over targets that are not -100. */
  loss: number;
  /** Gradient of the mean loss for every parameter (when requested). */
  grads?: Weights;
}

function addInto(dst: Float64Array, src: Float64Array): void {
  for (let i = 0; i < dst.length; i++) dst[i] += src[i];
}

/** Shifted targets: position t is scored against labels[t+1]; the last position of a row is ignored. */
export function shiftLabels(labels: ArrayLike<number>, B: number, T: number): Int32Array {
  const out = new Int32Array(B * T).fill(-100);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t + 1 < T; t++) out[b * T + t] = labels[b * T + t + 1];
  }
  return out;
}

/** GPT-2 forward (and backward with `withGrads`) in float64. */
export function gpt2Ref(
  cfg: GPTConfig,
  w: Weights,
  ids: ArrayLike<number>,
  labels: ArrayLike<number>,
  B: number,
  T: number,
  withGrads = false,
  attnDropout?: LayerDropout,
): RefResult {
  const drop = (l: number) => attnDropout && { p: attnDropout.p, seed: attnDropout.seed(l) };
  const C = cfg.n_embd, V = cfg.vocab_size, H = cfg.n_head, L = cfg.n_layer, M = B * T;
  const F = cfg.n_inner ?? 4 * C, eps = cfg.layer_norm_epsilon;
  const p = (name: string) => {
    const v = w.get(name);
    if (!v) throw new Error(`reference: missing ${name}`);
    return v;
  };
  type Saved = {
    x: Float64Array;
    ln1: LayerNormOut;
    qkv: Float64Array;
    att: Float64Array;
    atty: Float64Array;
    res2: Float64Array;
    ln2: LayerNormOut;
    fc: Float64Array;
    fcGelu: Float64Array;
  };
  const saved: Saved[] = [];
  let x = embeddingForward(ids, p("wte.weight"), p("wpe.weight"), B, T, C);
  for (let l = 0; l < L; l++) {
    const h = `h.${l}.`;
    const ln1 = layernormForward(x, p(h + "ln_1.weight"), p(h + "ln_1.bias"), M, C, eps);
    const qkv = linearForwardRef(
      ln1.out,
      p(h + "attn.c_attn.weight"),
      p(h + "attn.c_attn.bias"),
      M,
      C,
      3 * C,
    );
    const { out: atty, att } = attentionForward(qkv, B, T, C, H, H, drop(l));
    const attProj = linearForwardRef(
      atty,
      p(h + "attn.c_proj.weight"),
      p(h + "attn.c_proj.bias"),
      M,
      C,
      C,
    );
    const res2 = x.slice();
    addInto(res2, attProj);
    const ln2 = layernormForward(res2, p(h + "ln_2.weight"), p(h + "ln_2.bias"), M, C, eps);
    const fc = linearForwardRef(ln2.out, p(h + "mlp.c_fc.weight"), p(h + "mlp.c_fc.bias"), M, C, F);
    const fcGelu = geluForward(fc);
    const fcProj = linearForwardRef(
      fcGelu,
      p(h + "mlp.c_proj.weight"),
      p(h + "mlp.c_proj.bias"),
      M,
      F,
      C,
    );
    const res3 = res2.slice();
    addInto(res3, fcProj);
    saved.push({ x, ln1, qkv, att, atty, res2, ln2, fc, fcGelu });
    x = res3;
  }
  const lnf = layernormForward(x, p("ln_f.weight"), p("ln_f.bias"), M, C, eps);
  const logits = tiedForwardRef(lnf.out, p("wte.weight"), M, C, V);
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
  const tied = tiedBackwardRef(lnf.out, p("wte.weight"), dlogits, M, C, V);
  addInto(gp("wte.weight"), tied.dWte);
  const dres = new Float64Array(M * C);
  layernormBackward(
    tied.dx,
    x,
    p("ln_f.weight"),
    lnf.mean,
    lnf.rstd,
    dres,
    gp("ln_f.weight"),
    gp("ln_f.bias"),
    M,
    C,
  );
  for (let l = L - 1; l >= 0; l--) {
    const h = `h.${l}.`, s = saved[l];
    const mlpProj = linearBackwardRef(s.fcGelu, p(h + "mlp.c_proj.weight"), dres, M, F, C);
    addInto(gp(h + "mlp.c_proj.weight"), mlpProj.dW);
    addInto(gp(h + "mlp.c_proj.bias"), mlpProj.dBias);
    const dfc = new Float64Array(M * F);
    geluBackward(s.fc, mlpProj.dx, dfc);
    const fcB = linearBackwardRef(s.ln2.out, p(h + "mlp.c_fc.weight"), dfc, M, C, F);
    addInto(gp(h + "mlp.c_fc.weight"), fcB.dW);
    addInto(gp(h + "mlp.c_fc.bias"), fcB.dBias);
    layernormBackward(
      fcB.dx,
      s.res2,
      p(h + "ln_2.weight"),
      s.ln2.mean,
      s.ln2.rstd,
      dres,
      gp(h + "ln_2.weight"),
      gp(h + "ln_2.bias"),
      M,
      C,
    );
    const projB = linearBackwardRef(s.atty, p(h + "attn.c_proj.weight"), dres, M, C, C);
    addInto(gp(h + "attn.c_proj.weight"), projB.dW);
    addInto(gp(h + "attn.c_proj.bias"), projB.dBias);
    const dqkv = attentionBackward(projB.dx, s.qkv, s.att, B, T, C, H, H, drop(l));
    const attnB = linearBackwardRef(s.ln1.out, p(h + "attn.c_attn.weight"), dqkv, M, C, 3 * C);
    addInto(gp(h + "attn.c_attn.weight"), attnB.dW);
    addInto(gp(h + "attn.c_attn.bias"), attnB.dBias);
    layernormBackward(
      attnB.dx,
      s.x,
      p(h + "ln_1.weight"),
      s.ln1.mean,
      s.ln1.rstd,
      dres,
      gp(h + "ln_1.weight"),
      gp(h + "ln_1.bias"),
      M,
      C,
    );
  }
  embeddingBackward(ids, dres, gp("wte.weight"), gp("wpe.weight"), B, T, C);
  return { logits, loss, grads: g };
}
