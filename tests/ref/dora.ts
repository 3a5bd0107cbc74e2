/**
 * Plain float64 reference of a DoRA linear layer as Hugging Face PEFT computes it
 * (`DoraLinearLayer.forward` through `DoraLinearVariant.forward`, peft/tuners/lora/dora.py and
 * variants.py), written as plain loops over the (out, in) view V of the weight:
 *
 *   n[o]  = ‖V[o,:] + s·(B·A)[o,:]‖₂   (get_weight_norm; a constant of the backward: PEFT detaches it)
 *   g[o]  = m[o] / n[o]
 *   y     = x·Vᵀ + b + (g − 1)⊙z + g⊙(s·xd·Aᵀ·Bᵀ)
 *
 * with xd = x and z = x·Vᵀ (the base result reused, its bias taken off) when there is no dropout,
 * or xd = dropout(x) and z = xd·Vᵀ (recomputed without bias) when there is. The backward is the
 * chain rule of that expression with n held constant; tests check it against central differences
 * of {@linkcode doraForwardRef} given the same fixed n.
 */

/** A DoRA layer's tensors in float64. W is (in,out) when `fanInFanOut`, else (out,in). */
export interface DoraRefLayer {
  /** Base weight. */
  W: Float64Array;
  /** Base bias (out), or null. */
  bias: Float64Array | null;
  /** A (r, in). */
  A: Float64Array;
  /** B (out, r). */
  B: Float64Array;
  /** Magnitude m (out). */
  m: Float64Array;
  /** Scaling s (lora_alpha / r, or / √r). */
  s: number;
  /** Output features. */
  nOut: number;
  /** Input features. */
  nIn: number;
  /** Rank. */
  r: number;
  /** W's layout. */
  fanInFanOut: boolean;
}

/** V[o,i]: the weight read as (out, in). */
function v(l: DoraRefLayer, o: number, i: number): number {
  return l.fanInFanOut ? l.W[i * l.nOut + o] : l.W[o * l.nIn + i];
}

/** (B·A)[o,i]. */
function ba(l: DoraRefLayer, o: number, i: number): number {
  let d = 0;
  for (let k = 0; k < l.r; k++) d += l.B[o * l.r + k] * l.A[k * l.nIn + i];
  return d;
}

/** n[o] = ‖V[o,:] + s·(B·A)[o,:]‖₂ (PEFT's get_weight_norm). */
export function doraNormRef(l: DoraRefLayer): Float64Array {
  const n = new Float64Array(l.nOut);
  for (let o = 0; o < l.nOut; o++) {
    let acc = 0;
    for (let i = 0; i < l.nIn; i++) {
      const w = v(l, o, i) + l.s * ba(l, o, i);
      acc += w * w;
    }
    n[o] = Math.sqrt(acc);
  }
  return n;
}

/** x (M,K) · Vᵀ → (M,N), no bias. */
function base(l: DoraRefLayer, x: Float64Array, M: number): Float64Array {
  const out = new Float64Array(M * l.nOut);
  for (let row = 0; row < M; row++) {
    for (let o = 0; o < l.nOut; o++) {
      let acc = 0;
      for (let i = 0; i < l.nIn; i++) acc += x[row * l.nIn + i] * v(l, o, i);
      out[row * l.nOut + o] = acc;
    }
  }
  return out;
}

/** s·x·Aᵀ·Bᵀ (M,N) and u = x·Aᵀ (M,r). */
function branch(
  l: DoraRefLayer,
  x: Float64Array,
  M: number,
): { ls: Float64Array; u: Float64Array } {
  const u = new Float64Array(M * l.r), ls = new Float64Array(M * l.nOut);
  for (let row = 0; row < M; row++) {
    for (let k = 0; k < l.r; k++) {
      let acc = 0;
      for (let i = 0; i < l.nIn; i++) acc += x[row * l.nIn + i] * l.A[k * l.nIn + i];
      u[row * l.r + k] = acc;
    }
    for (let o = 0; o < l.nOut; o++) {
      let acc = 0;
      for (let k = 0; k < l.r; k++) acc += u[row * l.r + k] * l.B[o * l.r + k];
      ls[row * l.nOut + o] = l.s * acc;
    }
  }
  return { ls, u };
}

/**
 * The DoRA layer's output y (M,N) for x (M,K); `xd` is the dropped-out input (null: no dropout);
 * `n` the norm to use (default: computed from the layer, as the forward does).
 */
export function doraForwardRef(
  l: DoraRefLayer,
  x: Float64Array,
  M: number,
  xd: Float64Array | null = null,
  n: Float64Array = doraNormRef(l),
): Float64Array {
  const N = l.nOut, y = base(l, x, M);
  const z = xd ? base(l, xd, M) : y.slice();
  const { ls } = branch(l, xd ?? x, M);
  for (let row = 0; row < M; row++) {
    for (let o = 0; o < N; o++) {
      const i = row * N + o, g = l.m[o] / n[o];
      y[i] += (l.bias ? l.bias[o] : 0) + (g - 1) * z[i] + g * ls[i];
    }
  }
  return y;
}

/** Gradients of a DoRA layer (n held constant, as PEFT detaches it). */
export interface DoraRefGrads {
  /** dx (M,K). */
  dx: Float64Array;
  /** dA (r,K). */
  dA: Float64Array;
  /** dB (N,r). */
  dB: Float64Array;
  /** dm (N). */
  dm: Float64Array;
  /** dbias (N). */
  dbias: Float64Array;
}

/**
 * The backward of {@linkcode doraForwardRef} for dy (M,N). With dropout, `dropBack` maps a
 * gradient with respect to xd to one with respect to x (the dropout's mask and scale).
 */
export function doraBackwardRef(
  l: DoraRefLayer,
  x: Float64Array,
  dy: Float64Array,
  M: number,
  xd: Float64Array | null = null,
  dropBack: (d: Float64Array) => Float64Array = (d) => d,
): DoraRefGrads {
  const N = l.nOut, K = l.nIn, r = l.r, n = doraNormRef(l);
  const g = Float64Array.from(l.m, (m, o) => m / n[o]);
  const xin = xd ?? x;
  const z = base(l, xin, M);
  const { ls, u } = branch(l, xin, M);
  const dx = new Float64Array(M * K), dxd = new Float64Array(M * K);
  const dA = new Float64Array(r * K), dB = new Float64Array(N * r);
  const dm = new Float64Array(N), dbias = new Float64Array(N);
  for (let row = 0; row < M; row++) {
    const du = new Float64Array(r);
    for (let o = 0; o < N; o++) {
      const e = dy[row * N + o];
      dbias[o] += e;
      dm[o] += e * (z[row * N + o] + ls[row * N + o]) / n[o];
      for (let k = 0; k < r; k++) {
        dB[o * r + k] += l.s * g[o] * e * u[row * r + k];
        du[k] += l.s * g[o] * e * l.B[o * r + k];
      }
      for (let i = 0; i < K; i++) {
        // The base layer's own path (x·Vᵀ) and the (g − 1)·z term.
        dx[row * K + i] += e * v(l, o, i);
        (xd ? dxd : dx)[row * K + i] += (g[o] - 1) * e * v(l, o, i);
      }
    }
    for (let k = 0; k < r; k++) {
      for (let i = 0; i < K; i++) {
        dA[k * K + i] += du[k] * xin[row * K + i];
        (xd ? dxd : dx)[row * K + i] += du[k] * l.A[k * K + i];
      }
    }
  }
  if (xd) {
    const back = dropBack(dxd);
    for (let i = 0; i < dx.length; i++) dx[i] += back[i];
  }
  return { dx, dA, dB, dm, dbias };
}

/** PEFT's merge: W ← g ⊙ (W + s·(B·A)) per output (the transpose for Conv1D's (in,out) layout). */
export function doraMergedRef(l: DoraRefLayer): Float64Array {
  const n = doraNormRef(l), W = new Float64Array(l.W.length);
  for (let o = 0; o < l.nOut; o++) {
    const g = l.m[o] / n[o];
    for (let i = 0; i < l.nIn; i++) {
      const w = g * (v(l, o, i) + l.s * ba(l, o, i));
      if (l.fanInFanOut) W[i * l.nOut + o] = w;
      else W[o * l.nIn + i] = w;
    }
  }
  return W;
}
