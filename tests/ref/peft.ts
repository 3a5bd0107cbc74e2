/**
 * Plain float64 references of kernels/peft.wgsl and of GPT-2 with the PEFT methods of peft/
 * (prompt tuning, prefix tuning, IA³, bottleneck adapters) applied, composed from the per-kernel
 * references as tests/ref/gpt2.ts is. Prefix tuning is written the direct way, as Hugging Face
 * runs it with `past_key_values`: the real tokens only, at positions n..n+T−1, attending to keys
 * and values [P; K] — no dummy rows — so it checks whet's dummy-row implementation independently.
 */

import type { GPTConfig } from "../../models/config.ts";
import { attentionBackward, attentionForward } from "./attention.ts";
import { crossEntropyBackward, crossEntropyForward } from "./crossentropy.ts";
import { geluBackward, geluForward } from "./gelu.ts";
import { layernormBackward, layernormForward, type LayerNormOut } from "./layernorm.ts";
import { linearBackwardRef, linearForwardRef, tiedBackwardRef, tiedForwardRef } from "./matmul.ts";
import type { Weights } from "./gpt2.ts";

// ---------------------------------------------------------------------------------------------
// Kernels

/** out (M,N) = x · l per column (l (N)) or per row (l (M)); divided with `divide`. */
export function scaleRef(
  x: Float64Array,
  l: Float64Array,
  M: number,
  N: number,
  byRow = false,
  divide = false,
): Float64Array {
  const out = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      const s = l[byRow ? m : n];
      out[m * N + n] = divide ? x[m * N + n] / s : x[m * N + n] * s;
    }
  }
  return out;
}

/** dl (N) += Σ_m dy[m,n]·x[m,n]. */
export function scaleGradRef(
  dy: Float64Array,
  x: Float64Array,
  dl: Float64Array,
  M: number,
  N: number,
): void {
  for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) dl[n] += dy[m * N + n] * x[m * N + n];
}

/** The geometry of a virtual-row write (see kernels/peft.ts `RowsSpec`). */
export interface RowsRef {
  B: number;
  T: number;
  n: number;
  ldd: number;
  doff: number;
  w: number;
  lds: number;
  soff: number;
}

/** dst[b, j, doff + c] = src[j, soff + c] (+ add[j, c]) for b < B, j < n, c < w (in place). */
export function setRowsRef(
  src: Float64Array,
  add: Float64Array | null,
  dst: Float64Array,
  s: RowsRef,
): void {
  for (let b = 0; b < s.B; b++) {
    for (let j = 0; j < s.n; j++) {
      for (let c = 0; c < s.w; c++) {
        dst[(b * s.T + j) * s.ldd + s.doff + c] = src[j * s.lds + s.soff + c] +
          (add ? add[j * s.w + c] : 0);
      }
    }
  }
}

/** dsrc[j, soff + c] += Σ_b grad[b, j, doff + c]; then rows 0..n−1 of grad are zeroed (in place). */
export function rowsGradRef(grad: Float64Array, dsrc: Float64Array, s: RowsRef): void {
  for (let j = 0; j < s.n; j++) {
    for (let c = 0; c < s.w; c++) {
      for (let b = 0; b < s.B; b++) {
        dsrc[j * s.lds + s.soff + c] += grad[(b * s.T + j) * s.ldd + s.doff + c];
      }
    }
    for (let b = 0; b < s.B; b++) grad.fill(0, (b * s.T + j) * s.ldd, (b * s.T + j + 1) * s.ldd);
  }
}

/** erf in float64: Maclaurin series for |z| < 2.5, Lentz's continued fraction of erfc beyond. */
export function erf(z: number): number {
  const a = Math.abs(z);
  let r: number;
  if (a < 2.5) {
    let term = a, sum = a;
    for (let n = 1; n < 200; n++) {
      term *= -a * a / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    r = 2 / Math.sqrt(Math.PI) * sum;
  } else {
    // erfc(a) = e^(−a²)/√π · 1/(a + (1/2)/(a + 1/(a + (3/2)/(a + 2/(a + …)))))
    let f = a, C = a, D = 0;
    for (let k = 1; k < 300; k++) {
      const an = k / 2;
      D = a + an * D;
      D = 1 / D;
      C = a + an / C;
      const delta = C * D;
      f *= delta;
      if (Math.abs(delta - 1) < 1e-16) break;
    }
    r = 1 - Math.exp(-a * a) / Math.sqrt(Math.PI) / f;
  }
  return z < 0 ? -r : r;
}

/** Adapter activations by name (as kernels/peft.ts). */
export type ActName = "relu" | "swish" | "gelu_new" | "gelu";

const sigmoid = (t: number) => 1 / (1 + Math.exp(-t));

/** act(x) elementwise. */
export function actRef(x: Float64Array, act: ActName): Float64Array {
  if (act === "gelu_new") return geluForward(x);
  return x.map((v) =>
    act === "relu"
      ? Math.max(v, 0)
      : act === "swish"
      ? v * sigmoid(v)
      : 0.5 * v * (1 + erf(v / Math.SQRT2))
  );
}

/** dy·act'(x) elementwise. */
export function actGradRef(x: Float64Array, dy: Float64Array, act: ActName): Float64Array {
  if (act === "gelu_new") {
    const dx = new Float64Array(x.length);
    geluBackward(x, dy, dx);
    return dx;
  }
  return x.map((v, i) => {
    const g = act === "relu"
      ? (v > 0 ? 1 : 0)
      : act === "swish"
      ? sigmoid(v) * (1 + v * (1 - sigmoid(v)))
      : 0.5 * (1 + erf(v / Math.SQRT2)) + v * Math.exp(-0.5 * v * v) / Math.sqrt(2 * Math.PI);
    return dy[i] * g;
  });
}

// ---------------------------------------------------------------------------------------------
// The model

/** A bottleneck adapter: down (r,C) + bias (r), up (C,r) + bias (C), as nn.Linear stores them. */
export interface AdapterRef {
  downW: Float64Array;
  downB: Float64Array;
  upW: Float64Array;
  upB: Float64Array;
}

/** The PEFT parameters applied in {@linkcode gpt2PeftRef}; all optional. */
export interface PeftRefParams {
  /** Prompt tuning: n virtual tokens (n, C), prepended to the input embeddings. */
  prompt?: Float64Array;
  /** Prefix tuning: (n, L·2C), PEFT's layout (layer-major, then key/value, then channel). */
  prefix?: Float64Array;
  /** Number of virtual tokens (prompt or prefix). */
  n?: number;
  /** IA³ on c_attn's output (3C) per layer, or null. */
  ia3Attn?: (Float64Array | null)[];
  /** IA³ on mlp.c_proj's input (4C) per layer, or null. */
  ia3Ff?: (Float64Array | null)[];
  /** Bottleneck adapters on the attention branch per layer, or null. */
  attnAdapters?: (AdapterRef | null)[];
  /** Bottleneck adapters on the feed-forward branch per layer, or null. */
  mlpAdapters?: (AdapterRef | null)[];
  /** Adapter activation (default relu). */
  act?: ActName;
}

/** Gradients of the PEFT parameters (same structure as {@linkcode PeftRefParams}). */
export interface PeftRefGrads {
  prompt?: Float64Array;
  prefix?: Float64Array;
  ia3Attn: (Float64Array | null)[];
  ia3Ff: (Float64Array | null)[];
  attnAdapters: (AdapterRef | null)[];
  mlpAdapters: (AdapterRef | null)[];
}

/** Result of {@linkcode gpt2PeftRef}. */
export interface PeftRefResult {
  /** Logits: (B·(n+T), V) with prompt tuning (virtual rows included), else (B·T, V). */
  logits: Float64Array;
  /** Mean loss over scored targets. */
  loss: number;
  /** Gradients of the PEFT parameters (with `withGrads`). */
  grads?: PeftRefGrads;
}

function addInto(dst: Float64Array, src: Float64Array): void {
  for (let i = 0; i < dst.length; i++) dst[i] += src[i];
}

function adapterForward(h: Float64Array, a: AdapterRef, act: ActName, M: number, C: number) {
  const r = a.downB.length;
  const z = new Float64Array(M * r);
  for (let m = 0; m < M; m++) {
    for (let i = 0; i < r; i++) {
      let s = a.downB[i];
      for (let c = 0; c < C; c++) s += h[m * C + c] * a.downW[i * C + c];
      z[m * r + i] = s;
    }
  }
  const y = actRef(z, act);
  const out = h.slice();
  for (let m = 0; m < M; m++) {
    for (let c = 0; c < C; c++) {
      let s = a.upB[c];
      for (let i = 0; i < r; i++) s += y[m * r + i] * a.upW[c * r + i];
      out[m * C + c] += s;
    }
  }
  return { out, z, y };
}

function adapterBackward(
  dout: Float64Array,
  h: Float64Array,
  z: Float64Array,
  y: Float64Array,
  a: AdapterRef,
  act: ActName,
  M: number,
  C: number,
): { dh: Float64Array; g: AdapterRef } {
  const r = a.downB.length;
  const g: AdapterRef = {
    downW: new Float64Array(r * C),
    downB: new Float64Array(r),
    upW: new Float64Array(C * r),
    upB: new Float64Array(C),
  };
  const dy = new Float64Array(M * r);
  for (let m = 0; m < M; m++) {
    for (let c = 0; c < C; c++) {
      const d = dout[m * C + c];
      g.upB[c] += d;
      for (let i = 0; i < r; i++) {
        g.upW[c * r + i] += d * y[m * r + i];
        dy[m * r + i] += d * a.upW[c * r + i];
      }
    }
  }
  const dz = actGradRef(z, dy, act);
  const dh = dout.slice();
  for (let m = 0; m < M; m++) {
    for (let i = 0; i < r; i++) {
      const d = dz[m * r + i];
      g.downB[i] += d;
      for (let c = 0; c < C; c++) {
        g.downW[i * C + c] += d * h[m * C + c];
        dh[m * C + c] += d * a.downW[i * C + c];
      }
    }
  }
  return { dh, g };
}

/**
 * GPT-2 with PEFT parameters in float64: forward (and backward of the PEFT parameters with
 * `withGrads`). `ids`/`labels` are the real tokens (B,T), labels aligned with ids (shifted inside).
 * With prompt tuning the sequence is [P; embeddings] of n+T positions, the virtual positions
 * labelled −100 (so the last virtual position is scored against labels[0], as PEFT does); with
 * prefix tuning the real tokens take positions n..n+T−1 and attend to [P_k; K], [P_v; V].
 */
export function gpt2PeftRef(
  cfg: GPTConfig,
  w: Weights,
  ids: ArrayLike<number>,
  labels: ArrayLike<number>,
  B: number,
  T: number,
  peft: PeftRefParams,
  withGrads = false,
): PeftRefResult {
  const C = cfg.n_embd, V = cfg.vocab_size, H = cfg.n_head, L = cfg.n_layer;
  const F = cfg.n_inner ?? 4 * C, eps = cfg.layer_norm_epsilon, act = peft.act ?? "relu";
  const p = (name: string) => {
    const v = w.get(name);
    if (!v) throw new Error(`reference: missing ${name}`);
    return v;
  };
  const n = peft.n ?? 0;
  const nPrompt = peft.prompt ? n : 0, nPrefix = peft.prefix ? n : 0;
  const S = nPrompt + T, M = B * S, posOffset = nPrompt + nPrefix;
  const wte = p("wte.weight"), wpe = p("wpe.weight");

  // Embedding: virtual rows P[j] + wpe[j], real rows wte[id] + wpe[pos].
  let x = new Float64Array(M * C);
  for (let b = 0; b < B; b++) {
    for (let s = 0; s < S; s++) {
      const o = (b * S + s) * C;
      const pos = s < nPrompt ? s : s - nPrompt + posOffset;
      for (let c = 0; c < C; c++) {
        const tok = s < nPrompt ? peft.prompt![s * C + c] : wte[ids[b * T + s - nPrompt] * C + c];
        x[o + c] = tok + wpe[pos * C + c];
      }
    }
  }

  // With a prefix, attention runs on n+T rows whose first n carry P_k, P_v (and a zero query,
  // whose output is discarded and whose gradient is zero).
  const attnRows = (qkv: Float64Array, l: number): Float64Array => {
    if (!nPrefix) return qkv;
    const Se = nPrefix + S, ext = new Float64Array(B * Se * 3 * C);
    for (let b = 0; b < B; b++) {
      for (let j = 0; j < nPrefix; j++) {
        for (let c = 0; c < 2 * C; c++) {
          ext[(b * Se + j) * 3 * C + C + c] = peft.prefix![j * L * 2 * C + l * 2 * C + c];
        }
      }
      ext.set(qkv.subarray(b * S * 3 * C, (b + 1) * S * 3 * C), (b * Se + nPrefix) * 3 * C);
    }
    return ext;
  };
  const Se = nPrefix + S;
  const realRows = (ext: Float64Array, width: number): Float64Array => {
    if (!nPrefix) return ext;
    const out = new Float64Array(M * width);
    for (let b = 0; b < B; b++) {
      out.set(ext.subarray((b * Se + nPrefix) * width, (b + 1) * Se * width), b * S * width);
    }
    return out;
  };
  const extRows = (real: Float64Array, width: number): Float64Array => {
    if (!nPrefix) return real;
    const out = new Float64Array(B * Se * width);
    for (let b = 0; b < B; b++) {
      out.set(real.subarray(b * S * width, (b + 1) * S * width), (b * Se + nPrefix) * width);
    }
    return out;
  };

  type Saved = {
    x: Float64Array;
    ln1: LayerNormOut;
    qkvRaw: Float64Array;
    qkvExt: Float64Array;
    att: Float64Array;
    atty: Float64Array;
    attProj: Float64Array;
    attAd?: { z: Float64Array; y: Float64Array };
    res2: Float64Array;
    ln2: LayerNormOut;
    fc: Float64Array;
    fcGelu: Float64Array;
    fcGeluScaled: Float64Array;
    fcProj: Float64Array;
    mlpAd?: { z: Float64Array; y: Float64Array };
  };
  const saved: Saved[] = [];
  for (let l = 0; l < L; l++) {
    const h = `h.${l}.`;
    const ln1 = layernormForward(x, p(h + "ln_1.weight"), p(h + "ln_1.bias"), M, C, eps);
    const qkvRaw = linearForwardRef(
      ln1.out,
      p(h + "attn.c_attn.weight"),
      p(h + "attn.c_attn.bias"),
      M,
      C,
      3 * C,
    );
    const la = peft.ia3Attn?.[l];
    const qkv = la ? scaleRef(qkvRaw, la, M, 3 * C) : qkvRaw;
    const qkvExt = attnRows(qkv, l);
    const { out: attyExt, att } = attentionForward(qkvExt, B, Se, C, H);
    const atty = realRows(attyExt, C);
    const attProj = linearForwardRef(
      atty,
      p(h + "attn.c_proj.weight"),
      p(h + "attn.c_proj.bias"),
      M,
      C,
      C,
    );
    let branch = attProj, attAd;
    const aa = peft.attnAdapters?.[l];
    if (aa) {
      const r = adapterForward(attProj, aa, act, M, C);
      branch = r.out;
      attAd = { z: r.z, y: r.y };
    }
    const res2 = x.slice();
    addInto(res2, branch);
    const ln2 = layernormForward(res2, p(h + "ln_2.weight"), p(h + "ln_2.bias"), M, C, eps);
    const fc = linearForwardRef(ln2.out, p(h + "mlp.c_fc.weight"), p(h + "mlp.c_fc.bias"), M, C, F);
    const fcGelu = geluForward(fc);
    const lf = peft.ia3Ff?.[l];
    const fcGeluScaled = lf ? scaleRef(fcGelu, lf, M, F) : fcGelu;
    const fcProj = linearForwardRef(
      fcGeluScaled,
      p(h + "mlp.c_proj.weight"),
      p(h + "mlp.c_proj.bias"),
      M,
      F,
      C,
    );
    let branch2 = fcProj, mlpAd;
    const ma = peft.mlpAdapters?.[l];
    if (ma) {
      const r = adapterForward(fcProj, ma, act, M, C);
      branch2 = r.out;
      mlpAd = { z: r.z, y: r.y };
    }
    const res3 = res2.slice();
    addInto(res3, branch2);
    saved.push({
      x,
      ln1,
      qkvRaw,
      qkvExt,
      att,
      atty,
      attProj,
      attAd,
      res2,
      ln2,
      fc,
      fcGelu,
      fcGeluScaled,
      fcProj,
      mlpAd,
    });
    x = res3;
  }
  const lnf = layernormForward(x, p("ln_f.weight"), p("ln_f.bias"), M, C, eps);
  const logits = tiedForwardRef(lnf.out, wte, M, C, V);
  // Position s is scored against the label of position s+1 ([−100]·nPrompt ++ labels).
  const targets = new Int32Array(M).fill(-100);
  for (let b = 0; b < B; b++) {
    for (let s = 0; s + 1 < S; s++) {
      const next = s + 1 - nPrompt;
      if (next >= 0) targets[b * S + s] = labels[b * T + next];
    }
  }
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

  const grads: PeftRefGrads = {
    prompt: peft.prompt ? new Float64Array(peft.prompt.length) : undefined,
    prefix: peft.prefix ? new Float64Array(peft.prefix.length) : undefined,
    ia3Attn: [],
    ia3Ff: [],
    attnAdapters: [],
    mlpAdapters: [],
  };
  const dlogits = crossEntropyBackward(logits, targets, M, V, count > 0 ? 1 / count : 0);
  const tied = tiedBackwardRef(lnf.out, wte, dlogits, M, C, V);
  const scratchW = (name: string) => new Float64Array(p(name).length);
  let dres = new Float64Array(M * C);
  layernormBackward(
    tied.dx,
    x,
    p("ln_f.weight"),
    lnf.mean,
    lnf.rstd,
    dres,
    scratchW("ln_f.weight"),
    scratchW("ln_f.bias"),
    M,
    C,
  );
  for (let l = L - 1; l >= 0; l--) {
    const h = `h.${l}.`, s = saved[l];
    let dbranch2: Float64Array = dres;
    const ma = peft.mlpAdapters?.[l];
    if (ma) {
      const r = adapterBackward(dres, s.fcProj, s.mlpAd!.z, s.mlpAd!.y, ma, act, M, C);
      dbranch2 = r.dh;
      grads.mlpAdapters[l] = r.g;
    }
    const mlpProj = linearBackwardRef(
      s.fcGeluScaled,
      p(h + "mlp.c_proj.weight"),
      dbranch2,
      M,
      F,
      C,
    );
    let dfcGelu = mlpProj.dx;
    const lf = peft.ia3Ff?.[l];
    if (lf) {
      const dlf = new Float64Array(F);
      scaleGradRef(mlpProj.dx, s.fcGelu, dlf, M, F);
      grads.ia3Ff[l] = dlf;
      dfcGelu = scaleRef(mlpProj.dx, lf, M, F);
    }
    const dfc = new Float64Array(M * F);
    geluBackward(s.fc, dfcGelu, dfc);
    const fcB = linearBackwardRef(s.ln2.out, p(h + "mlp.c_fc.weight"), dfc, M, C, F);
    const dres2 = dres.slice();
    layernormBackward(
      fcB.dx,
      s.res2,
      p(h + "ln_2.weight"),
      s.ln2.mean,
      s.ln2.rstd,
      dres2,
      scratchW(h + "ln_2.weight"),
      scratchW(h + "ln_2.bias"),
      M,
      C,
    );
    let dbranch: Float64Array = dres2;
    const aa = peft.attnAdapters?.[l];
    if (aa) {
      const r = adapterBackward(dres2, s.attProj, s.attAd!.z, s.attAd!.y, aa, act, M, C);
      dbranch = r.dh;
      grads.attnAdapters[l] = r.g;
    }
    const projB = linearBackwardRef(s.atty, p(h + "attn.c_proj.weight"), dbranch, M, C, C);
    const dqkvExt = attentionBackward(extRows(projB.dx, C), s.qkvExt, s.att, B, Se, C, H);
    if (nPrefix) {
      for (let b = 0; b < B; b++) {
        for (let j = 0; j < nPrefix; j++) {
          for (let c = 0; c < 2 * C; c++) {
            grads.prefix![j * L * 2 * C + l * 2 * C + c] += dqkvExt[(b * Se + j) * 3 * C + C + c];
          }
        }
      }
    }
    let dqkv = realRows(dqkvExt, 3 * C);
    const la = peft.ia3Attn?.[l];
    if (la) {
      const dla = new Float64Array(3 * C);
      scaleGradRef(dqkv, s.qkvRaw, dla, M, 3 * C);
      grads.ia3Attn[l] = dla;
      dqkv = scaleRef(dqkv, la, M, 3 * C);
    }
    const attnB = linearBackwardRef(s.ln1.out, p(h + "attn.c_attn.weight"), dqkv, M, C, 3 * C);
    const dx = dres2.slice();
    layernormBackward(
      attnB.dx,
      s.x,
      p(h + "ln_1.weight"),
      s.ln1.mean,
      s.ln1.rstd,
      dx,
      scratchW(h + "ln_1.weight"),
      scratchW(h + "ln_1.bias"),
      M,
      C,
    );
    dres = dx;
  }
  if (peft.prompt) {
    for (let b = 0; b < B; b++) {
      for (let j = 0; j < nPrompt; j++) {
        for (let c = 0; c < C; c++) grads.prompt![j * C + c] += dres[(b * S + j) * C + c];
      }
    }
  }
  return { logits, loss, grads };
}

// ---------------------------------------------------------------------------------------------
// Test helpers shared by tests/peft/*_test.ts

/** Weights by name as the f32 tensors `GPT.create` takes. */
export function toF32(
  w: Weights,
  shapes: ReadonlyMap<string, readonly number[]>,
): Map<string, { shape: readonly number[]; data: Float32Array }> {
  return new Map(
    [...w].map(([k, v]) => [k, { shape: shapes.get(k)!, data: Float32Array.from(v) }]),
  );
}

/**
 * Tolerance for a gradient tensor computed in f32 against its float64 reference: sums over B·T
 * rows of products of f32 values through two blocks, so errors scale with the tensor's largest
 * entry (as tests/models/gpt_test.ts judges every base gradient).
 */
export function gradTol(ref: ArrayLike<number>): { rtol: number; atol: number } {
  let max = 0;
  for (let i = 0; i < ref.length; i++) max = Math.max(max, Math.abs(ref[i]));
  return { rtol: 1e-3, atol: 1e-4 * max + 1e-9 };
}
