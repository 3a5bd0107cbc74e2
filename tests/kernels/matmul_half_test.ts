/**
 * Matmul with B stored as packed halves (frozen base weights in f16 or bf16, runtime/tensor.ts):
 * every kernel variant widens B as it reads it and must equal the float64 reference computed on
 * the *rounded* B, within the same f32 bound as an f32 GEMM (the halves are widened exactly, so
 * only the f32 dot product rounds).
 */
import assert from "node:assert/strict";
import {
  type Gpu,
  type HalfDtype,
  Matmul,
  type MatmulVariant,
  Rng,
  type Tensor,
} from "../../mod.ts";
import { assertClose, gpu, poisoned, randn, release, upload } from "../helpers.ts";
import { gemmRef, type GemmRefSpec } from "../ref/matmul.ts";
import { roundAllRef } from "../ref/half.ts";

// Tolerance: the f32 dot product of K terms plus at most three more roundings (alpha, bias, C):
// γ_{K+3}·(Σ|a·b| + |bias| + |C|) with γ_n = n·u/(1 − n·u), u = 2⁻²⁴ (Higham §3.1), as in
// matmul_test.ts. f16-storage also rounds A and the (already half) B to f16 in its pack step; the
// reference rounds them the same way first, so the same f32 bound applies.
const U = 2 ** -24;
const gamma = (n: number) => (n * U) / (1 - n * U);

type Config = MatmulVariant | "f16-storage";
const CONFIGS: Config[] = ["software", "hardware", "texture", "f16-storage"];
const DTYPES: HalfDtype[] = ["f16", "bf16"];
/** The GEMM kernels that must run: each variant's own packed-half kernel, never a fallback. */
const GEMM_KERNEL: Record<Config, string> = {
  software: "matmul.gemm_registers.",
  hardware: "matmul.gemm_shared.",
  texture: "matmul.gemm_texture.",
  "f16-storage": "matmul.gemm_f16.",
};

const cache = new Map<string, Promise<Matmul>>();
function matmul(g: Gpu, config: Config): Promise<Matmul> {
  const key = `${config}`;
  if (!cache.has(key)) {
    const opts = config === "f16-storage"
      ? { precision: "f16-storage" as const }
      : { variant: config as MatmulVariant };
    cache.set(key, Matmul.create(g, { ...opts, halfB: DTYPES }));
  }
  return cache.get(key)!;
}

interface Case {
  label: string;
  spec: Omit<GemmRefSpec, "a" | "b" | "c" | "bias">;
  bias?: boolean;
}

const CASES: Case[] = [
  { label: "1×1×1", spec: { m: 1, n: 1, k: 1 } },
  { label: "x·W (Conv1D), odd shape", spec: { m: 7, n: 33, k: 97 }, bias: true },
  { label: "x·Wᵀ (nn.Linear)", spec: { m: 33, n: 7, k: 5, transB: true } },
  { label: "dy·Wᵀ, accumulate", spec: { m: 9, n: 65, k: 33, transB: true, accumulate: true } },
  { label: "aligned W", spec: { m: 16, n: 64, k: 32 }, bias: true },
  { label: "aligned Wᵀ", spec: { m: 5, n: 48, k: 64, transB: true } },
  // A head chunk: W rows from an odd offset with the full row stride, C a column block.
  {
    label: "head chunk (odd offsetB, ldc)",
    spec: { m: 6, n: 11, k: 9, transB: true, offsetB: 27, ldc: 20, offsetC: 4 },
  },
  { label: "offsetB multiple of 4", spec: { m: 3, n: 8, k: 12, offsetB: 8, ldb: 12 } },
  { label: "Aᵀ·B", spec: { m: 13, n: 9, k: 21, transA: true, alpha: 0.5 } },
];

for (const config of CONFIGS) {
  for (const dtype of DTYPES) {
    Deno.test(`Matmul.gemm() (${config}) reads a ${dtype} B as the float64 reference on the rounded B`, async () => {
      const g = await gpu();
      if (config === "f16-storage" && !g.hasF16) return; // needs shader-f16 (lavapipe has it)
      const mm = await matmul(g, config);
      const rng = new Rng(config.length * 7 + dtype.length);
      const batch = g.batch();
      const runs: {
        c: Tensor;
        ref: GemmRefSpec;
        before: Float64Array;
        t: Tensor[];
        label: string;
      }[] = [];
      for (const cs of CASES) {
        const s = cs.spec;
        const [aRows, aCols] = s.transA ? [s.k, s.m] : [s.m, s.k];
        const [bRows, bCols] = s.transB ? [s.n, s.k] : [s.k, s.n];
        const a = randn(rng, (s.offsetA ?? 0) + (aRows - 1) * (s.lda ?? aCols) + aCols);
        const bLen = (s.offsetB ?? 0) + (bRows - 1) * (s.ldb ?? bCols) + bCols;
        // Values spread over many binades, some below f16's normal range (subnormals).
        const b = Float64Array.from(randn(rng, bLen), (v, i) => v * 2 ** ((i % 23) - 14));
        const cLen = (s.offsetC ?? 0) + (s.m - 1) * (s.ldc ?? s.n) + s.n;
        const before = s.accumulate ? randn(rng, cLen) : new Float64Array(cLen).fill(NaN);
        const bias = cs.bias ? randn(rng, s.n) : null;
        const ta = upload(g, [a.length], a, "A");
        const tb = g.tensor([bLen], Float32Array.from(b), "W", dtype);
        const tc = s.accumulate ? upload(g, [cLen], before, "C") : poisoned(g, [cLen], "C");
        const tbias = bias ? upload(g, [s.n], bias, "bias") : null;
        mm.gemm(batch, { ...s, a: ta, b: tb, c: tc, bias: tbias });
        let bRef = roundAllRef(b, dtype);
        let aRef = a;
        if (config === "f16-storage") {
          bRef = roundAllRef(bRef, "f16");
          aRef = roundAllRef(a, "f16");
        }
        runs.push({
          c: tc,
          ref: { ...s, a: aRef, b: bRef, c: before.slice(), bias },
          before,
          t: [ta, tb, tc, ...(tbias ? [tbias] : [])],
          label: cs.label,
        });
      }
      const gemms = batch.kernels.filter((n) => n.startsWith("matmul.gemm"));
      assert.ok(gemms.every((n) => n.startsWith(GEMM_KERNEL[config])), gemms.join());
      await batch.submit();
      const outs = await g.read(runs.map((r) => r.c));
      runs.forEach((r, i) => {
        const alpha = Math.fround(r.ref.alpha ?? 1);
        const scale = gemmRef({ ...r.ref, alpha });
        const got = outs[i], actual: number[] = [], expected: number[] = [];
        for (let j = 0; j < got.length; j++) {
          if (scale[j] > 0) {
            const unit = gamma(r.ref.k + 3) * scale[j] + 1e-45;
            actual.push(got[j] / unit);
            expected.push(r.ref.c[j] / unit);
          } else {
            assert.ok(
              Object.is(got[j], Math.fround(r.before[j])),
              `${r.label}: gap [${j}] written`,
            );
          }
        }
        assertClose(actual, expected, { rtol: 0, atol: 1 }, `${config} ${dtype} ${r.label}`);
        release(...r.t);
      });
    });
  }
}
