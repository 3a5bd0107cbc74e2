/** Plain-loop float64 reference of kernels/matmul.wgsl and the Matmul wrapper. */

/** A GEMM in float64 with the same fields as the wrapper's `GemmSpec` (arrays instead of tensors). */
export interface GemmRefSpec {
  a: Float64Array;
  b: Float64Array;
  /** Output; read first when `accumulate`. Updated in place. */
  c: Float64Array;
  bias?: Float64Array | null;
  m: number;
  n: number;
  k: number;
  transA?: boolean;
  transB?: boolean;
  alpha?: number;
  accumulate?: boolean;
  offsetA?: number;
  offsetB?: number;
  offsetC?: number;
  offsetBias?: number;
  lda?: number;
  ldb?: number;
  ldc?: number;
  batch?: number | readonly [number, number];
  strideA?: number | readonly [number, number];
  strideB?: number | readonly [number, number];
  strideC?: number | readonly [number, number];
}

/**
 * `C (M,N) = alpha · op(A) · op(B) (+ bias) (+ C when accumulate)`, per batch entry, in place.
 * Returns, for every element of `c`, the magnitude the rounding error scales with:
 * `|alpha| · Σ_k |op(A)[m,k] · op(B)[k,n]| + |bias[n]| + |C_old|` (0 for elements not written).
 */
export function gemmRef(s: GemmRefSpec): Float64Array {
  const { m, n, k } = s;
  const transA = s.transA ?? false, transB = s.transB ?? false, alpha = s.alpha ?? 1;
  const [outer, inner] = typeof s.batch === "number" ? [s.batch, 1] : s.batch ?? [1, 1];
  const two = (v: number | readonly [number, number] | undefined) =>
    typeof v === "number" ? [v, 0] : v ?? [0, 0];
  const sA = two(s.strideA), sB = two(s.strideB), sC = two(s.strideC);
  const lda = s.lda ?? (transA ? m : k), ldb = s.ldb ?? (transB ? k : n), ldc = s.ldc ?? n;
  const scale = new Float64Array(s.c.length);
  for (let o = 0; o < outer; o++) {
    for (let h = 0; h < inner; h++) {
      const baseA = (s.offsetA ?? 0) + o * sA[0] + h * sA[1];
      const baseB = (s.offsetB ?? 0) + o * sB[0] + h * sB[1];
      const baseC = (s.offsetC ?? 0) + o * sC[0] + h * sC[1];
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) {
          let sum = 0, abs = 0;
          for (let p = 0; p < k; p++) {
            const av = s.a[baseA + (transA ? p * lda + i : i * lda + p)];
            const bv = s.b[baseB + (transB ? j * ldb + p : p * ldb + j)];
            sum += av * bv;
            abs += Math.abs(av * bv);
          }
          const ci = baseC + i * ldc + j;
          let v = alpha * sum, mag = Math.abs(alpha) * abs;
          if (s.bias) {
            v += s.bias[(s.offsetBias ?? 0) + j];
            mag += Math.abs(s.bias[(s.offsetBias ?? 0) + j]);
          }
          if (s.accumulate) {
            v += s.c[ci];
            mag += Math.abs(s.c[ci]);
          }
          s.c[ci] = v;
          scale[ci] = mag;
        }
      }
    }
  }
  return scale;
}

/** Linear forward: y (M,N) = x (M,K) · W (K,N) + bias (N). */
export function linearForwardRef(
  x: Float64Array,
  W: Float64Array,
  bias: Float64Array | null,
  M: number,
  K: number,
  N: number,
): Float64Array {
  const y = new Float64Array(M * N);
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = bias ? bias[j] : 0;
      for (let p = 0; p < K; p++) s += x[i * K + p] * W[p * N + j];
      y[i * N + j] = s;
    }
  }
  return y;
}

/** Linear backward: dx (M,K) = dy·Wᵀ, dW (K,N) = xᵀ·dy, dBias (N) = column sums of dy (all fresh). */
export function linearBackwardRef(
  x: Float64Array,
  W: Float64Array,
  dy: Float64Array,
  M: number,
  K: number,
  N: number,
): { dx: Float64Array; dW: Float64Array; dBias: Float64Array } {
  const dx = new Float64Array(M * K), dW = new Float64Array(K * N), dBias = new Float64Array(N);
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      const g = dy[i * N + j];
      dBias[j] += g;
      for (let p = 0; p < K; p++) {
        dx[i * K + p] += g * W[p * N + j];
        dW[p * N + j] += x[i * K + p] * g;
      }
    }
  }
  return { dx, dW, dBias };
}

/** Tied lm_head forward: logits (M,V) = x (M,C) · wteᵀ, wte (V,C). */
export function tiedForwardRef(
  x: Float64Array,
  wte: Float64Array,
  M: number,
  C: number,
  V: number,
): Float64Array {
  const out = new Float64Array(M * V);
  for (let i = 0; i < M; i++) {
    for (let v = 0; v < V; v++) {
      let s = 0;
      for (let c = 0; c < C; c++) s += x[i * C + c] * wte[v * C + c];
      out[i * V + v] = s;
    }
  }
  return out;
}

/** Tied lm_head backward: dx (M,C) = dlogits·wte, dWte (V,C) = dlogitsᵀ·x (both fresh). */
export function tiedBackwardRef(
  x: Float64Array,
  wte: Float64Array,
  dlogits: Float64Array,
  M: number,
  C: number,
  V: number,
): { dx: Float64Array; dWte: Float64Array } {
  const dx = new Float64Array(M * C), dWte = new Float64Array(V * C);
  for (let i = 0; i < M; i++) {
    for (let v = 0; v < V; v++) {
      const g = dlogits[i * V + v];
      for (let c = 0; c < C; c++) {
        dx[i * C + c] += g * wte[v * C + c];
        dWte[v * C + c] += g * x[i * C + c];
      }
    }
  }
  return { dx, dWte };
}
