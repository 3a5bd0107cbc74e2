import assert from "node:assert/strict";
import { type Gpu, Matmul, type MatmulVariant, Rng, type Tensor } from "../../mod.ts";
import {
  assertClose,
  centralDiff,
  dot,
  gpu,
  poisoned,
  randn,
  release,
  upload,
} from "../helpers.ts";
import {
  gemmRef,
  type GemmRefSpec,
  linearBackwardRef,
  linearForwardRef,
  tiedBackwardRef,
  tiedForwardRef,
} from "../ref/matmul.ts";

// Tolerance. Every output is a K-term f32 dot product followed by at most three more roundings
// (·alpha, +bias, +C). Whatever the summation order, the rounding error of such a sum is at most
// γ_{K+3} · (|alpha|·Σ_k |a_k·b_k| + |bias| + |C_old|), with γ_n = n·u/(1 − n·u) and u = 2⁻²⁴
// (Higham, "Accuracy and Stability of Numerical Algorithms", §3.1). The inputs are rounded to f32
// before the float64 reference sees them, so this worst-case bound is the whole allowed error: it
// is relative to the magnitude of the terms summed, not to the (possibly cancelled) result.
const U = 2 ** -24;
const gamma = (n: number) => (n * U) / (1 - n * U);

// f16-storage: each operand is rounded to f16 before the f32 dot product. Rounding to f16 has unit
// roundoff u16 = 2⁻¹¹ for normal numbers, so fl(a)·fl(b) = a·b·(1 + θ) with |θ| ≤ 2·u16 + u16²:
// the error grows by (2·u16 + u16²)·(1 + γ_{K+3}) relative to the same Σ|a·b|. Below 2⁻¹⁴ (f16
// subnormals) the rounding error is absolute, at most 2⁻²⁵, which adds at most
// |alpha|·K·2⁻²⁵·(1 + u16)·(max|a| + max|b|) to an element: the `abs` term.
const U16 = 2 ** -11;
const f16Rel = (k: number) => gamma(k + 3) + (2 * U16 + U16 * U16) * (1 + gamma(k + 3));
const maxAbs = (x: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]));
  return m;
};
/** The tolerance of `config` for a K-term product of `a` and `b` scaled by alpha. */
function tolerance(
  config: Config,
  k: number,
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  alpha = 1,
): { rel: number; abs: number } {
  if (config !== "f16-storage") return { rel: gamma(k + 3), abs: 0 };
  return {
    rel: f16Rel(k),
    abs: Math.abs(alpha) * k * 2 ** -25 * (1 + U16) * (maxAbs(a) + maxAbs(b)),
  };
}

/**
 * Checks `got` against the reference: written elements (scale > 0) within rel·scale + abs (f32:
 * γ_{K+3}·scale), every other element bit-for-bit unchanged from `before` (strided outputs must
 * not touch the gaps).
 */
function assertGemm(
  got: Float32Array,
  ref: Float64Array,
  scale: Float64Array,
  before: ArrayLike<number>,
  tol: { rel: number; abs: number },
  name: string,
) {
  const actual: number[] = [], expected: number[] = [];
  for (let i = 0; i < got.length; i++) {
    if (scale[i] > 0) {
      // Errors in units of the allowed error: within 1 passes.
      const unit = tol.rel * scale[i] + tol.abs;
      actual.push(got[i] / unit);
      expected.push(ref[i] / unit);
    } else if (!Object.is(got[i], Math.fround(before[i]))) {
      throw new Error(
        `${name}: element [${i}] outside the output was changed from ${before[i]} to ${got[i]}`,
      );
    }
  }
  assertClose(
    actual,
    expected,
    { rtol: 0, atol: 1 },
    `${name} (errors in units of ${tol.rel}·Σ|a·b| + ${tol.abs})`,
  );
}

/**
 * A kernel variant, the software variant with f16 operands, or the texture variant with the 8×8
 * register tile that SwiftShader gets by default.
 */
type Config = MatmulVariant | "f16-storage" | "texture-8x8";
const VARIANTS: Config[] = ["software", "hardware", "texture", "f16-storage", "texture-8x8"];
const cache = new Map<Config, Promise<Matmul>>();
async function matmul(config: Config): Promise<[Gpu, Matmul]> {
  const g = await gpu();
  if (!cache.has(config)) {
    cache.set(
      config,
      Matmul.create(
        g,
        config === "f16-storage"
          ? { precision: "f16-storage" }
          : config === "texture-8x8"
          ? { variant: "texture", tile: [8, 8] }
          : { variant: config },
      ),
    );
  }
  return [g, await cache.get(config)!];
}

/** The GEMM kernel-name prefix that must run for `config` (its packed kernels, not a fallback). */
const GEMM_KERNEL: Record<Config, string> = {
  software: "matmul.gemm_registers.",
  hardware: "matmul.gemm_shared.",
  texture: "matmul.gemm_texture.",
  "f16-storage": "matmul.gemm_f16.",
  "texture-8x8": "matmul.gemm_texture.",
};

/** One GEMM case: the spec without data; `fillC` is NaN (written) or random (accumulated). */
interface Case {
  label: string;
  spec: Omit<GemmRefSpec, "a" | "b" | "c" | "bias">;
  bias: boolean;
}

/** Elements a strided operand must hold. */
function extent(
  off: number,
  strides: [number, number],
  batch: [number, number],
  rows: number,
  cols: number,
  ld: number,
) {
  return off + (batch[0] - 1) * strides[0] + (batch[1] - 1) * strides[1] + (rows - 1) * ld + cols;
}

/** Runs several GEMMs in one batch and checks each against gemmRef. */
async function runCases(
  variant: Config,
  seed: number,
  cases: Case[],
  checkOps?: (ops: string[]) => void,
): Promise<void> {
  const [g, mm] = await matmul(variant);
  const rng = new Rng(seed);
  const batch = g.batch();
  const runs: {
    c: Tensor;
    ref: GemmRefSpec;
    before: Float64Array;
    label: string;
    tensors: Tensor[];
  }[] = [];
  for (const cs of cases) {
    const s = cs.spec;
    const two = (v: GemmRefSpec["strideA"]): [number, number] =>
      typeof v === "number" ? [v, 0] : v ? [v[0], v[1]] : [0, 0];
    const bt: [number, number] = typeof s.batch === "number"
      ? [s.batch, 1]
      : s.batch
      ? [s.batch[0], s.batch[1]]
      : [1, 1];
    const [aRows, aCols] = s.transA ? [s.k, s.m] : [s.m, s.k];
    const [bRows, bCols] = s.transB ? [s.n, s.k] : [s.k, s.n];
    const a = randn(rng, extent(s.offsetA ?? 0, two(s.strideA), bt, aRows, aCols, s.lda ?? aCols));
    const b = randn(rng, extent(s.offsetB ?? 0, two(s.strideB), bt, bRows, bCols, s.ldb ?? bCols));
    const cLen = extent(s.offsetC ?? 0, two(s.strideC), bt, s.m, s.n, s.ldc ?? s.n);
    const before = s.accumulate ? randn(rng, cLen) : new Float64Array(cLen).fill(NaN);
    const bias = cs.bias ? randn(rng, (s.offsetBias ?? 0) + s.n) : null;
    const ta = upload(g, [a.length], a, "A"), tb = upload(g, [b.length], b, "B");
    const tc = s.accumulate ? upload(g, [cLen], before, "C") : poisoned(g, [cLen], "C");
    const tbias = bias ? upload(g, [bias.length], bias, "bias") : null;
    mm.gemm(batch, { ...s, a: ta, b: tb, c: tc, bias: tbias });
    const ref = { ...s, a, b, c: before.slice(), bias };
    runs.push({
      c: tc,
      ref,
      before,
      label: cs.label,
      tensors: [ta, tb, tc, ...(tbias ? [tbias] : [])],
    });
  }
  const kernels = batch.kernels.filter((n) => n.startsWith("matmul.gemm"));
  assert.ok(
    kernels.every((n) => n.startsWith(GEMM_KERNEL[variant])),
    `${variant}: ran ${kernels.join(", ")}`,
  );
  checkOps?.(batch.kernels);
  await batch.submit();
  const outs = await g.read(runs.map((r) => r.c));
  runs.forEach((r, i) => {
    const alpha = Math.fround(r.ref.alpha ?? 1); // the kernel receives alpha as an f32
    const scale = gemmRef({ ...r.ref, alpha });
    const tol = tolerance(variant, r.ref.k, r.ref.a, r.ref.b, alpha);
    assertGemm(outs[i], r.ref.c, scale, r.before, tol, `${variant} ${r.label}`);
    release(...r.tensors);
  });
}

const SHAPES: [number, number, number][] = [[1, 1, 1], [7, 33, 97], [33, 7, 5], [97, 65, 33]];
const LAYOUTS: [boolean, boolean][] = [[false, false], [false, true], [true, false], [true, true]];
const pad4 = (x: number) => Math.ceil(x / 4) * 4 + 4;

for (const variant of VARIANTS) {
  for (const [transA, transB] of LAYOUTS) {
    const layout = `${transA ? "Aᵀ" : "A"}·${transB ? "Bᵀ" : "B"}`;
    for (const [m, n, k] of SHAPES) {
      Deno.test(`Matmul.gemm() matches the reference for ${layout} at M×N×K ${m}×${n}×${k} (${variant})`, async () => {
        const aCols = transA ? m : k, bCols = transB ? k : n;
        await runCases(variant, m * 10007 + n * 101 + k, [
          { label: "packed, C =", bias: false, spec: { m, n, k, transA, transB } },
          {
            // Offsets and row strides multiples of 4: the software variant's vec4 loads.
            label: "aligned padded strides, bias, alpha −0.37, C +=",
            bias: true,
            spec: {
              m,
              n,
              k,
              transA,
              transB,
              alpha: -0.37,
              accumulate: true,
              offsetA: 4,
              offsetB: 8,
              offsetC: 4,
              offsetBias: 4,
              lda: pad4(aCols),
              ldb: pad4(bCols),
              ldc: pad4(n),
            },
          },
          {
            // Offsets and row strides that break vec4 alignment: the scalar-load kernels.
            label: "unaligned offsets and strides, bias, alpha 2, C =",
            bias: true,
            spec: {
              m,
              n,
              k,
              transA,
              transB,
              alpha: 2,
              offsetA: 1,
              offsetB: 3,
              offsetC: 2,
              offsetBias: 3,
              lda: aCols + 1,
              ldb: bCols + 3,
              ldc: n + 1,
            },
          },
        ]);
      });
    }
  }

  Deno.test(`Matmul.gemm() addresses attention heads inside a fused qkv buffer (${variant})`, async () => {
    for (const [B, T, H, hs] of [[2, 7, 3, 5], [2, 9, 2, 8]]) {
      const C = H * hs;
      // att (B,H,T,T) = q·kᵀ / √hs, with q and k heads read from qkv (B,T,3C) in place.
      const qk: Case["spec"] = {
        m: T,
        n: T,
        k: hs,
        transB: true,
        alpha: 1 / Math.sqrt(hs),
        batch: [B, H],
        offsetA: 0,
        offsetB: C,
        lda: 3 * C,
        ldb: 3 * C,
        strideA: [T * 3 * C, hs],
        strideB: [T * 3 * C, hs],
        strideC: [H * T * T, T * T],
      };
      // y (B,T,C) = att·v, each head written into its columns of y.
      const av: Case["spec"] = {
        m: T,
        n: hs,
        k: T,
        batch: [B, H],
        offsetB: 2 * C,
        ldb: 3 * C,
        ldc: C,
        strideA: [H * T * T, T * T],
        strideB: [T * 3 * C, hs],
        strideC: [T * C, hs],
      };
      // dq-like with transposed A and accumulation over the batch entries' own outputs.
      const tn: Case["spec"] = {
        m: hs,
        n: hs,
        k: T,
        transA: true,
        accumulate: true,
        batch: [B, H],
        offsetA: C,
        lda: 3 * C,
        offsetB: 2 * C,
        ldb: 3 * C,
        strideA: [T * 3 * C, hs],
        strideB: [T * 3 * C, hs],
        strideC: [H * hs * hs, hs * hs],
      };
      await runCases(variant, B * 100 + hs, [
        { label: `q·kᵀ heads B${B} H${H} hs${hs}`, bias: false, spec: qk },
        { label: `att·v heads B${B} H${H} hs${hs}`, bias: false, spec: av },
        { label: `qᵀ·v heads B${B} H${H} hs${hs}`, bias: false, spec: tn },
      ]);
    }
  });

  if (variant === "texture") {
    for (const byCopy of [true, false]) {
      const how = byCopy ? "buffer-to-texture copies" : "the pack kernel";
      Deno.test(`Matmul.gemm() fills its operand textures with ${how} where the layout allows (texture)`, async () => {
        const [, mm] = await matmul("texture");
        mm.packByCopy = byCopy;
        try {
          // Copyable: rows and columns multiples of 4, row strides multiples of 64 floats (256
          // bytes), offsets multiples of 4; batches contiguous (one rectangle) or strided heads
          // (one rectangle per entry).
          const [B, T, H, hs] = [2, 12, 4, 16], C = H * hs;
          const cases: Case[] = [
            {
              label: "A·B, lda 64, ldb 64",
              bias: true,
              spec: { m: 68, n: 20, k: 36, lda: 64, ldb: 64, offsetA: 8, offsetB: 4 },
            },
            {
              label: "Aᵀ·Bᵀ, contiguous batch of 3, C +=",
              bias: false,
              spec: {
                m: 64,
                n: 64,
                k: 64,
                transA: true,
                transB: true,
                accumulate: true,
                batch: 3,
                strideA: 64 * 64,
                strideB: 64 * 64,
                strideC: 64 * 64,
              },
            },
            {
              label: `q·kᵀ heads read in place from qkv (ld ${3 * C})`,
              bias: false,
              spec: {
                m: T,
                n: T,
                k: hs,
                transB: true,
                batch: [B, H],
                offsetB: C,
                lda: 3 * C,
                ldb: 3 * C,
                strideA: [T * 3 * C, hs],
                strideB: [T * 3 * C, hs],
                strideC: [H * T * T, T * T],
              },
            },
          ];
          await runCases("texture", 4242, cases, (ops) => {
            assert.equal(ops.includes("texture"), byCopy, ops.join(", "));
            assert.equal(ops.some((o) => o.startsWith("matmul.pack_texture")), !byCopy);
          });
        } finally {
          mm.packByCopy = true;
        }
      });
    }
  }

  Deno.test(`Matmul.gemm() with triangularA and lowerC (causal attention hints) matches the reference (${variant})`, async () => {
    const [g, mm] = await matmul(variant);
    const [nb, T, hs] = [2, 37, 13];
    const rng = new Rng(3737);
    // op(A) (T×T per entry) zero above the diagonal ("lower") or below it ("upper", stored
    // transposed), as causal attention probabilities and their transpose are.
    for (const tri of ["lower", "upper"] as const) {
      const a = randn(rng, nb * T * T), b = randn(rng, nb * T * hs);
      for (let e = 0; e < nb; e++) {
        for (let r = 0; r < T; r++) {
          for (let c = 0; c < T; c++) if (c > r) a[e * T * T + r * T + c] = 0;
        }
      }
      const spec = {
        m: T,
        n: hs,
        k: T,
        transA: tri === "upper", // the lower-triangular storage read transposed
        batch: nb,
        strideA: T * T,
        strideB: T * hs,
        strideC: T * hs,
        alpha: 0.5,
      };
      const ta = upload(g, [a.length], a, "A"), tb = upload(g, [b.length], b, "B");
      const tc = poisoned(g, [nb * T * hs], "C");
      const batch = g.batch();
      mm.gemm(batch, { ...spec, a: ta, b: tb, c: tc, triangularA: tri });
      await batch.submit();
      const [c] = await g.read([tc]);
      const want = new Float64Array(nb * T * hs);
      gemmRef({ ...spec, a, b, c: want });
      expectGemm(c, want, { ...spec, a, b }, `triangularA ${tri}`, variant);
      release(ta, tb, tc);
    }
    // lowerC: scores q·kᵀ where only n ≤ m is wanted; 40×40 spans several tiles per entry.
    const S = 40;
    const q = randn(rng, nb * S * hs), k = randn(rng, nb * S * hs);
    const spec = {
      m: S,
      n: S,
      k: hs,
      transB: true,
      batch: nb,
      strideA: S * hs,
      strideB: S * hs,
      strideC: S * S,
    };
    const tq = upload(g, [q.length], q, "q"), tk = upload(g, [k.length], k, "k");
    const tc = poisoned(g, [nb * S * S], "scores");
    const batch = g.batch();
    mm.gemm(batch, { ...spec, a: tq, b: tk, c: tc, lowerC: true });
    await batch.submit();
    const [c] = await g.read([tc]);
    // gemmRef writes the product into c and returns Σ|a·b| per element (the error scale).
    const want = new Float64Array(nb * S * S);
    const scale = gemmRef({ ...spec, a: q, b: k, c: want });
    const tol = tolerance(variant, hs, q, k);
    let skipped = 0;
    for (let e = 0; e < nb; e++) {
      for (let r = 0; r < S; r++) {
        for (let col = 0; col < S; col++) {
          const i = e * S * S + r * S + col;
          if (col > r) {
            if (Number.isNaN(c[i])) skipped++;
            continue;
          }
          const err = Math.abs(c[i] - want[i]);
          assert.ok(err <= tol.rel * scale[i] + tol.abs, `scores[${i}] = ${c[i]}, want ${want[i]}`);
        }
      }
    }
    // The register-tiled kernels skip tiles wholly above the diagonal; the GPU kernel computes all.
    if (variant === "hardware") assert.equal(skipped, 0);
    else assert.ok(skipped > 0, "no tile above the diagonal was skipped");
    release(tq, tk, tc);
  });

  const PATTERNS: [string, boolean, boolean, boolean][] = [
    ["dx, dW and dBias", true, true, true],
    ["dx only (frozen weight and bias)", true, false, false],
    ["dW and dBias only (no input gradient)", false, true, true],
    ["dBias only (BitFit)", false, false, true],
  ];
  for (const [what, wantDx, wantDW, wantDBias] of PATTERNS) {
    Deno.test(`Matmul.linearForward() and linearBackward() match the reference computing ${what} (${variant})`, async () => {
      const [g, mm] = await matmul(variant);
      const [M, K, N] = [97, 7, 33];
      const rng = new Rng(M + K + N + (wantDx ? 1 : 0) + (wantDW ? 2 : 0) + (wantDBias ? 4 : 0));
      const x = randn(rng, M * K),
        W = randn(rng, K * N),
        bias = randn(rng, N),
        dy = randn(rng, M * N);
      const dW0 = randn(rng, K * N), dBias0 = randn(rng, N);
      const tx = upload(g, [M, K], x, "x"),
        tW = upload(g, [K, N], W, "W"),
        tb = upload(g, [N], bias, "bias");
      const ty = poisoned(g, [M, N], "y"), tdy = upload(g, [M, N], dy, "dy");
      const tdx = wantDx ? poisoned(g, [M, K], "dx") : null;
      const tdW = wantDW ? upload(g, [K, N], dW0, "dW") : null;
      const tdb = wantDBias ? upload(g, [N], dBias0, "dBias") : null;
      const batch = g.batch();
      mm.linearForward(batch, tx, tW, tb, ty, M, K, N);
      mm.linearBackward(batch, { x: tx, W: tW, dy: tdy, dx: tdx, dW: tdW, dBias: tdb }, M, K, N);
      await batch.submit();
      const [y, dx, dW, dBias] = await readSome(g, [ty, tdx, tdW, tdb]);
      const ref = linearBackwardRef(x, W, dy, M, K, N);
      expectGemm(
        y!,
        linearForwardRef(x, W, bias, M, K, N),
        { a: x, b: W, bias, m: M, n: N, k: K },
        "y",
        variant,
      );
      if (dx) {
        expectGemm(dx, ref.dx, { a: dy, b: W, m: M, n: K, k: N, transB: true }, "dx", variant);
      }
      if (dW) {
        expectGemm(
          dW,
          add(dW0, ref.dW),
          {
            a: x,
            b: dy,
            c: dW0,
            m: K,
            n: N,
            k: M,
            transA: true,
            accumulate: true,
          },
          "dW (+=)",
          variant,
        );
      }
      if (dBias) {
        // Column sums: a GEMM of a row of ones with dy.
        const ones = new Float64Array(M).fill(1);
        expectGemm(dBias, add(dBias0, ref.dBias), {
          a: ones,
          b: dy,
          c: dBias0,
          m: 1,
          n: N,
          k: M,
          accumulate: true,
        }, "dBias (+=)");
      }
      release(tx, tW, tb, ty, tdy, ...[tdx, tdW, tdb].filter((t) => t !== null));
    });
  }

  Deno.test(`Matmul.linearBackward() accumulates dx with accumulateDx (${variant})`, async () => {
    const [g, mm] = await matmul(variant);
    const [M, K, N] = [33, 5, 7];
    const rng = new Rng(17);
    const x = randn(rng, M * K),
      W = randn(rng, K * N),
      dy = randn(rng, M * N),
      dx0 = randn(rng, M * K);
    const tx = upload(g, [M, K], x, "x"),
      tW = upload(g, [K, N], W, "W"),
      tdy = upload(g, [M, N], dy, "dy");
    const tdx = upload(g, [M, K], dx0, "dx");
    const batch = g.batch();
    mm.linearBackward(
      batch,
      { x: tx, W: tW, dy: tdy, dx: tdx, dW: null, accumulateDx: true },
      M,
      K,
      N,
    );
    await batch.submit();
    const [dx] = await g.read([tdx]);
    const ref = linearBackwardRef(x, W, dy, M, K, N);
    expectGemm(
      dx,
      add(dx0, ref.dx),
      {
        a: dy,
        b: W,
        c: dx0,
        m: M,
        n: K,
        k: N,
        transB: true,
        accumulate: true,
      },
      "dx (+=)",
      variant,
    );
    release(tx, tW, tdy, tdx);
  });

  Deno.test(`Matmul.tiedForward() and tiedBackward() match the reference for the tied lm_head (${variant})`, async () => {
    const [g, mm] = await matmul(variant);
    const [M, C, V] = [7, 33, 97];
    const rng = new Rng(5);
    const x = randn(rng, M * C),
      wte = randn(rng, V * C),
      dlogits = randn(rng, M * V),
      dWte0 = randn(rng, V * C);
    const tx = upload(g, [M, C], x, "x"), twte = upload(g, [V, C], wte, "wte");
    const tlogits = poisoned(g, [M, V], "logits"), tdl = upload(g, [M, V], dlogits, "dlogits");
    const tdx = poisoned(g, [M, C], "dx"), tdWte = upload(g, [V, C], dWte0, "dWte");
    const batch = g.batch();
    mm.tiedForward(batch, tx, twte, tlogits, M, C, V);
    mm.tiedBackward(batch, { x: tx, wte: twte, dlogits: tdl, dx: tdx, dWte: tdWte }, M, C, V);
    await batch.submit();
    const [logits, dx, dWte] = await g.read([tlogits, tdx, tdWte]);
    const ref = tiedBackwardRef(x, wte, dlogits, M, C, V);
    expectGemm(
      logits,
      tiedForwardRef(x, wte, M, C, V),
      {
        a: x,
        b: wte,
        m: M,
        n: V,
        k: C,
        transB: true,
      },
      "logits",
      variant,
    );
    expectGemm(dx, ref.dx, { a: dlogits, b: wte, m: M, n: C, k: V }, "dx", variant);
    expectGemm(
      dWte,
      add(dWte0, ref.dWte),
      {
        a: dlogits,
        b: x,
        c: dWte0,
        m: V,
        n: C,
        k: M,
        transA: true,
        accumulate: true,
      },
      "dWte (+=)",
      variant,
    );
    release(tx, twte, tlogits, tdl, tdx, tdWte);
  });

  Deno.test(`Matmul.gemm() is exact near Mesa's loop cap (K=${variant === "hardware" ? "1,040,000" : "262,000"}, ${variant})`, async () => {
    // The only loop of an invocation is the K loop (K/4 steps in the software variant, K/16 in the
    // hardware one); every other loop is unrolled. With these K an invocation runs 65,500 and 65,000
    // K steps: any other loop left in the kernel would push it past the cap and cut the sum short.
    // The f16 kernel runs ceil(K/4) = 65,500 steps (1 and 0.5 are exact in f16). The texture
    // variant cannot pack A (1, 262,000) into a texture (65,500 texels > maxTextureDimension2D), so
    // this also checks its fallback to the software kernels.
    const [g, mm] = await matmul(variant);
    const K = variant === "hardware" ? 1_040_000 : 262_000;
    const a = new Float32Array(K).fill(1), b = new Float32Array(K * 2).fill(0.5);
    const ta = g.tensor([1, K], a, "a"),
      tb = g.tensor([K, 2], b, "b"),
      tc = poisoned(g, [1, 2], "c");
    const batch = g.batch();
    mm.gemm(batch, { a: ta, b: tb, c: tc, m: 1, n: 2, k: K });
    const ran = batch.kernels.filter((n) => n.startsWith("matmul.gemm"));
    const want = variant === "texture" || variant === "texture-8x8"
      ? GEMM_KERNEL.software
      : GEMM_KERNEL[variant];
    assert.ok(ran.length === 1 && ran[0].startsWith(want), `ran ${ran.join(", ")}`);
    await batch.submit();
    const [c] = await g.read([tc]);
    assert.deepEqual([...c], [K / 2, K / 2]); // sums of 0.5 up to 520,000 are exact in f32
    release(ta, tb, tc);
  });

  Deno.test(`Matmul.gemm() and biasBackward() refuse shapes over the loop cap, naming the kernel (${variant})`, async () => {
    const [g, mm] = await matmul(variant);
    const K = variant === "hardware" ? 1_048_600 : 262_200;
    const ta = g.tensor([1, K], undefined, "a"),
      tb = g.tensor([K, 1], undefined, "b"),
      tc = g.tensor([1, 1], undefined, "c");
    assert.throws(
      () => mm.gemm(g.batch(), { a: ta, b: tb, c: tc, m: 1, n: 1, k: K }),
      /Cannot run kernel "matmul\.gemm_.*loop iterations/,
    );
    const M = 32 * 65_535;
    const dy = g.tensor([M], undefined, "dy"), db = g.tensor([1], undefined, "dBias");
    assert.throws(
      () => mm.biasBackward(g.batch(), dy, db, M, 1),
      /Cannot run kernel "matmul\.dbias".*loop iterations/,
    );
    release(ta, tb, tc, dy, db);
  });
}

// CPU adapters sum each column in one invocation (matmul.dbias_columns) below the loop cap and
// fall back to the workgroup tree (matmul.dbias) past it; GPUs always use the tree.
for (
  const [variant, M, N, want] of [
    ["software", 1000, 9, "matmul.dbias_columns"],
    ["software", 70_000, 3, "matmul.dbias"],
    ["hardware", 1000, 9, "matmul.dbias"],
  ] as const
) {
  Deno.test(`Matmul.biasBackward() matches the reference over ${M} rows, strided and offset (${want}, ${variant})`, async () => {
    const [g, mm] = await matmul(variant);
    const [ld, off] = [N + 2, 3];
    const rng = new Rng(9 + M);
    const dy = randn(rng, off + (M - 1) * ld + N), db0 = randn(rng, N);
    const tdy = upload(g, [dy.length], dy, "dy"), tdb = upload(g, [N], db0, "dBias");
    const batch = g.batch();
    mm.biasBackward(batch, tdy, tdb, M, N, ld, off);
    assert.deepEqual(batch.kernels, [want]);
    await batch.submit();
    const [db] = await g.read([tdb]);
    const ones = new Float64Array(M).fill(1);
    const expected = db0.slice();
    for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) expected[n] += dy[off + m * ld + n];
    expectGemm(db, expected, {
      a: ones,
      b: dy,
      c: db0,
      m: 1,
      n: N,
      k: M,
      offsetB: off,
      ldb: ld,
      accumulate: true,
    }, "dBias (+=)");
    release(tdy, tdb);
  });
}

Deno.test("Matmul methods throw a RangeError naming the tensor when a shape does not match", async () => {
  const [g, mm] = await matmul("software");
  const x = g.tensor([4, 3], undefined, "x"),
    W = g.tensor([3, 5], undefined, "W"),
    y = g.tensor([4, 5], undefined, "y");
  const wrongW = g.tensor([4, 5], undefined, "c_fc.weight"),
    bias = g.tensor([4], undefined, "c_fc.bias");
  const b = g.batch();
  assert.throws(
    () => mm.linearForward(b, x, wrongW, null, y, 4, 3, 5),
    /Cannot run kernel "matmul\.linearForward": tensor "c_fc\.weight" has 20 elements, expected W \(3,5\)/,
  );
  assert.throws(
    () => mm.linearForward(b, x, W, bias, y, 4, 3, 5),
    /tensor "c_fc\.bias" has 4 elements, expected bias \(5\)/,
  );
  assert.throws(
    () => mm.linearBackward(b, { x, W, dy: y, dx: null, dW: wrongW }, 4, 3, 5),
    /tensor "c_fc\.weight".*dW \(3,5\)/,
  );
  assert.throws(
    () => mm.tiedForward(b, x, W, y, 4, 3, 6),
    /tensor "W" has 15 elements, expected wte \(6,3\)/,
  );
  assert.throws(
    () => mm.gemm(b, { a: x, b: W, c: y, m: 4, n: 5, k: 3, offsetC: 1 }),
    /tensor "y" \(C \(M,N\) 4×5\) has 20 elements, needs 21/,
  );
  assert.throws(
    () => mm.gemm(b, { a: x, b: W, c: y, m: 4, n: 5, k: 3, ldb: 4 }),
    /row stride 4 of "W"/,
  );
  assert.throws(
    () => mm.gemm(b, { a: x, b: W, c: x, m: 4, n: 3, k: 3, ldb: 5 }),
    /C "x" is also A/,
  );
  assert.equal(b.length, 0);
  release(x, W, y, wrongW, bias);
});

Deno.test("gemmRef() agrees with the explicit linear and tied references on every layout", () => {
  const rng = new Rng(21);
  const [M, K, N] = [5, 4, 3];
  const x = randn(rng, M * K), W = randn(rng, K * N), dy = randn(rng, M * N), bias = randn(rng, N);
  const y = new Float64Array(M * N);
  gemmRef({ a: x, b: W, c: y, bias, m: M, n: N, k: K });
  assertClose(y, linearForwardRef(x, W, bias, M, K, N), { rtol: 1e-14, atol: 1e-14 }, "A·B + bias");
  const ref = linearBackwardRef(x, W, dy, M, K, N);
  const dx = new Float64Array(M * K), dW = new Float64Array(K * N);
  gemmRef({ a: dy, b: W, c: dx, m: M, n: K, k: N, transB: true });
  gemmRef({ a: x, b: dy, c: dW, m: K, n: N, k: M, transA: true });
  assertClose(dx, ref.dx, { rtol: 1e-14, atol: 1e-14 }, "A·Bᵀ");
  assertClose(dW, ref.dW, { rtol: 1e-14, atol: 1e-14 }, "Aᵀ·B");
  // Aᵀ·Bᵀ: Wᵀ·xᵀ with W stored (K,N) and x stored (M,K) is (x·W)ᵀ.
  const tt = new Float64Array(N * M);
  gemmRef({ a: W, b: x, c: tt, m: N, n: M, k: K, transA: true, transB: true });
  const yT = linearForwardRef(x, W, null, M, K, N);
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) assert.ok(Math.abs(tt[j * M + i] - yT[i * N + j]) < 1e-12);
  }
});

Deno.test("matmul reference backwards match central finite differences", () => {
  const rng = new Rng(3);
  const [M, K, N] = [3, 4, 5];
  const x = randn(rng, M * K), W = randn(rng, K * N), bias = randn(rng, N), w = randn(rng, M * N);
  const g = linearBackwardRef(x, W, w, M, K, N); // L = Σ w·y, so dL/dy = w
  const tol = { rtol: 1e-6, atol: 1e-8 };
  for (let i = 0; i < M * K; i++) {
    assertClose(
      [g.dx[i]],
      [centralDiff((v) => dot(linearForwardRef(v, W, bias, M, K, N), w), x, i)],
      tol,
      `dx[${i}]`,
    );
  }
  for (let i = 0; i < K * N; i++) {
    assertClose(
      [g.dW[i]],
      [centralDiff((v) => dot(linearForwardRef(x, v, bias, M, K, N), w), W, i)],
      tol,
      `dW[${i}]`,
    );
  }
  for (let i = 0; i < N; i++) {
    assertClose(
      [g.dBias[i]],
      [centralDiff((v) => dot(linearForwardRef(x, W, v, M, K, N), w), bias, i)],
      tol,
      `dBias[${i}]`,
    );
  }
  const [C, V] = [4, 6];
  const xt = randn(rng, M * C), wte = randn(rng, V * C), wl = randn(rng, M * V);
  const t = tiedBackwardRef(xt, wte, wl, M, C, V);
  for (let i = 0; i < M * C; i++) {
    assertClose(
      [t.dx[i]],
      [centralDiff((v) => dot(tiedForwardRef(v, wte, M, C, V), wl), xt, i)],
      tol,
      `tied dx[${i}]`,
    );
  }
  for (let i = 0; i < V * C; i++) {
    assertClose(
      [t.dWte[i]],
      [centralDiff((v) => dot(tiedForwardRef(xt, v, M, C, V), wl), wte, i)],
      tol,
      `dWte[${i}]`,
    );
  }
});

/** Elementwise a + b. */
function add(a: Float64Array, b: Float64Array): Float64Array {
  return a.map((v, i) => v + b[i]);
}

/** Reads the non-null tensors with one wait; nulls come back as null in their places. */
async function readSome(g: Gpu, ts: (Tensor | null)[]): Promise<(Float32Array | null)[]> {
  const got = await g.read(ts.filter((t) => t !== null));
  return ts.map((t) => (t ? got.shift()! : null));
}

/**
 * Checks `got` against `expected` with the γ_{K+3}·Σ|a·b| tolerance, the magnitudes taken from
 * gemmRef on the spec (its own result is not used: `expected` comes from an explicit reference).
 */
function expectGemm(
  got: Float32Array,
  expected: Float64Array,
  spec: Omit<GemmRefSpec, "c"> & { c?: Float64Array },
  name: string,
  config: Config = "software",
): void {
  const scale = gemmRef({
    ...spec,
    c: spec.c ? spec.c.slice() : new Float64Array(expected.length),
  });
  const tol = tolerance(config, spec.k, spec.a, spec.b, spec.alpha);
  assertGemm(got, expected, scale, new Float64Array(got.length), tol, `${config} ${name}`);
}
