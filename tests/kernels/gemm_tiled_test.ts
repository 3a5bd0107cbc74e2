import assert from "node:assert/strict";
import { Rng, type Tensor } from "../../mod.ts";
import {
  configName,
  GemmTiled,
  shapeClass,
  TILE_CONFIGS,
  type TileConfig,
} from "../../kernels/gemm_tiled.ts";
import { assertClose, gpu, poisoned, randn, release, upload } from "../helpers.ts";
import { gemmRef, type GemmRefSpec } from "../ref/matmul.ts";

// Tolerance (as in matmul_test.ts). Every output is a K-term f32 dot product (fused multiply-adds
// here, which only remove roundings) followed by at most three more roundings (·alpha, +bias, +C):
// at most γ_{K+3} · (|alpha|·Σ_k |a_k·b_k| + |bias| + |C_old|), γ_n = n·u/(1 − n·u), u = 2⁻²⁴
// (Higham §3.1), relative to the magnitude of the terms, not to the (possibly cancelled) result.
const U = 2 ** -24;
const gamma = (n: number) => (n * U) / (1 - n * U);
// f16-compute: both operands are rounded to f16 (unit roundoff u16 = 2⁻¹¹) and so is their
// product, so each term carries |θ| ≤ 3·u16 + 3·u16² + u16³ on top of the f32 sum's γ_{K+3}.
// Below 2⁻¹⁴ f16 rounding is absolute (at most 2⁻²⁵ per rounding): at most
// K·2⁻²⁵·(max|a| + max|b| + 1)·(1 + u16)·|alpha| in all, the `abs` term.
const U16 = 2 ** -11;
const f16Theta = 3 * U16 + 3 * U16 ** 2 + U16 ** 3;
const maxAbs = (x: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]));
  return m;
};

/** One GEMM: the spec without data; C is NaN-poisoned unless accumulated. */
interface Case {
  label: string;
  spec: Omit<GemmRefSpec, "a" | "b" | "c" | "bias">;
  bias: boolean;
  /** Zero op(A) above ("lower") or below ("upper") each batch entry's diagonal. */
  triangular?: "lower" | "upper";
  /** Compare only the lower triangle (n ≤ m) of C; the rest may be left as it was. */
  lowerC?: boolean;
}

const two = (v: GemmRefSpec["strideA"]): [number, number] =>
  typeof v === "number" ? [v, 0] : v ? [v[0], v[1]] : [0, 0];

function extent(
  off: number,
  s: [number, number],
  bt: [number, number],
  rows: number,
  cols: number,
  ld: number,
) {
  return off + (bt[0] - 1) * s[0] + (bt[1] - 1) * s[1] + (rows - 1) * ld + cols;
}

/** Runs `cases` in one batch with `mm` and checks each against gemmRef. */
async function runCases(mm: GemmTiled, seed: number, cases: Case[], config?: TileConfig) {
  const g = await gpu();
  const rng = new Rng(seed);
  const batch = g.batch();
  const runs: { c: Tensor; ref: GemmRefSpec; before: Float64Array; cs: Case; tensors: Tensor[] }[] =
    [];
  for (const cs of cases) {
    const s = cs.spec;
    const bt: [number, number] = typeof s.batch === "number"
      ? [s.batch, 1]
      : s.batch
      ? [s.batch[0], s.batch[1]]
      : [1, 1];
    const [aRows, aCols] = s.transA ? [s.k, s.m] : [s.m, s.k];
    const [bRows, bCols] = s.transB ? [s.n, s.k] : [s.k, s.n];
    const lda = s.lda ?? aCols;
    const a = randn(rng, extent(s.offsetA ?? 0, two(s.strideA), bt, aRows, aCols, lda));
    if (cs.triangular) {
      const [sa0, sa1] = two(s.strideA);
      for (let o = 0; o < bt[0]; o++) {
        for (let h = 0; h < bt[1]; h++) {
          for (let i = 0; i < s.m; i++) {
            for (let p = 0; p < s.k; p++) {
              const zero = cs.triangular === "lower" ? p > i : p < i;
              const at = (s.offsetA ?? 0) + o * sa0 + h * sa1 +
                (s.transA ? p * lda + i : i * lda + p);
              if (zero) a[at] = 0;
            }
          }
        }
      }
    }
    const b = randn(rng, extent(s.offsetB ?? 0, two(s.strideB), bt, bRows, bCols, s.ldb ?? bCols));
    const cLen = extent(s.offsetC ?? 0, two(s.strideC), bt, s.m, s.n, s.ldc ?? s.n);
    const before = s.accumulate ? randn(rng, cLen) : new Float64Array(cLen).fill(NaN);
    const bias = cs.bias ? randn(rng, (s.offsetBias ?? 0) + s.n) : null;
    const ta = upload(g, [a.length], a, "A"), tb = upload(g, [b.length], b, "B");
    const tc = s.accumulate ? upload(g, [cLen], before, "C") : poisoned(g, [cLen], "C");
    const tbias = bias ? upload(g, [bias.length], bias, "bias") : null;
    mm.gemm(batch, {
      ...s,
      a: ta,
      b: tb,
      c: tc,
      bias: tbias,
      triangularA: cs.triangular,
      lowerC: cs.lowerC,
    }, config);
    runs.push({
      c: tc,
      ref: { ...s, a, b, c: before.slice(), bias },
      before,
      cs,
      tensors: [ta, tb, tc, ...(tbias ? [tbias] : [])],
    });
  }
  await batch.submit();
  const outs = await g.read(runs.map((r) => r.c));
  runs.forEach((r, i) => {
    const alpha = Math.fround(r.ref.alpha ?? 1); // the kernel receives alpha as an f32
    const scale = gemmRef({ ...r.ref, alpha });
    const k = r.ref.k;
    const tol = mm.precision === "f32" ? { rel: gamma(k + 3), abs: 0 } : {
      rel: gamma(k + 3) + f16Theta * (1 + gamma(k + 3)),
      abs: Math.abs(alpha) * k * 2 ** -25 * (1 + U16) * (maxAbs(r.ref.a) + maxAbs(r.ref.b) + 1),
    };
    const name = `${config ? configName(config) : "auto"} ${mm.precision} ${r.cs.label}`;
    const actual: number[] = [], expected: number[] = [];
    const [m, n] = [r.ref.m, r.ref.n];
    const ldc = r.ref.ldc ?? n;
    for (let e = 0; e < outs[i].length; e++) {
      if (scale[e] > 0) {
        if (r.cs.lowerC) {
          // Which (row, column) of its batch entry is e? Only the lower triangle is promised.
          const local = (e - (r.ref.offsetC ?? 0)) % (two(r.ref.strideC)[0] || Infinity);
          const row = Math.floor(local / ldc) % m, col = local % ldc;
          if (col > row && col < n) continue;
        }
        const unit = tol.rel * scale[e] + tol.abs;
        actual.push(outs[i][e] / unit);
        expected.push(r.ref.c[e] / unit);
      } else if (!Object.is(outs[i][e], Math.fround(r.before[e]))) {
        throw new Error(
          `${name}: element [${e}] outside C was changed from ${r.before[e]} to ${outs[i][e]}`,
        );
      }
    }
    assertClose(
      actual,
      expected,
      { rtol: 0, atol: 1 },
      `${name} (errors in units of the allowed error)`,
    );
    release(...r.tensors);
  });
}

/**
 * Cases for one configuration: every layout (NN, NT, TN, TT), each with both operands vec4-aligned
 * (the vec4 kernels), both unaligned (odd offsets, row and batch strides) and one unaligned (both
 * run the scalar kernels), over two-level batches, with
 * the epilogues (none, bias, accumulate, bias + accumulate, alpha) taking turns. M, N span two
 * blocks and K three K tiles plus a remainder (an odd tile count exercises both buffers), none a
 * multiple of any tile.
 */
function layoutCases(c: TileConfig): Case[] {
  const m = c.bm + 5, n = c.bn + 3, k = 2 * c.bk + 3;
  const cases: Case[] = [];
  let turn = 0;
  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      for (const [alignA, alignB] of [[true, true], [false, false], [true, false]]) {
        const [aRows, aCols] = transA ? [k, m] : [m, k];
        const [bRows, bCols] = transB ? [n, k] : [k, n];
        const lda = alignA ? Math.ceil(aCols / 4) * 4 + 4 : aCols + 1;
        const ldb = alignB ? Math.ceil(bCols / 4) * 4 : bCols + 3;
        const offA = alignA ? 8 : 1, offB = alignB ? 4 : 3;
        const sA = aRows * lda + (alignA ? 4 : 1), sB = bRows * ldb + (alignB ? 0 : 5);
        const epi = turn++ % 5;
        cases.push({
          label: `${transA ? "T" : "N"}${transB ? "T" : "N"} A ${alignA ? "vec4" : "scalar"} B ${
            alignB ? "vec4" : "scalar"
          } ${
            ["plain", "bias", "accumulate", "bias+accumulate", "alpha"][epi]
          } (${m}×${n}×${k}, batch [2,1])`,
          spec: {
            m,
            n,
            k,
            transA,
            transB,
            lda,
            ldb,
            ldc: n + 2,
            offsetA: offA,
            offsetB: offB,
            offsetC: 3,
            offsetBias: 1,
            batch: [2, 1],
            strideA: [sA, 0],
            strideB: [sB, 0],
            strideC: [m * (n + 2) + 1, 0],
            accumulate: epi === 2 || epi === 3,
            alpha: epi === 4 ? -0.7 : 1,
          },
          bias: epi === 1 || epi === 3,
        });
      }
    }
  }
  return cases;
}

const instances = new Map<string, Promise<GemmTiled>>();
async function tiled(c: TileConfig, precision: "f32" | "f16-compute" = "f32"): Promise<GemmTiled> {
  const key = `${configName(c)}:${precision}`;
  if (!instances.has(key)) {
    instances.set(
      key,
      gpu().then((g) => GemmTiled.create(g, { configs: [c], precision })),
    );
  }
  return await instances.get(key)!;
}

for (const config of TILE_CONFIGS) {
  Deno.test(`GemmTiled ${configName(config)} matches gemmRef on every layout, alignment and epilogue`, async () => {
    await runCases(await tiled(config), 1, layoutCases(config), config);
  });
}

Deno.test("GemmTiled handles 1×1×1, two-level batches and the triangular hints", async () => {
  const c = TILE_CONFIGS[4]; // 32×32: several blocks along each side at these sizes
  const mm = await tiled(c);
  const T = 71, hs = 9, H = 3; // attention-like: per (b, h) heads in a (B, T, H·hs) layout
  await runCases(mm, 2, [
    { label: "1×1×1", spec: { m: 1, n: 1, k: 1 }, bias: true },
    {
      label: "two-level batch [2,3] (heads), NT",
      spec: {
        m: T,
        n: T,
        k: hs,
        transB: true,
        lda: H * hs,
        ldb: H * hs,
        batch: [2, 3],
        strideA: [T * H * hs, hs],
        strideB: [T * H * hs, hs],
        strideC: [3 * T * T, T * T],
      },
      bias: false,
    },
    {
      label: "triangularA lower (causal P·V), NN",
      spec: { m: T, n: hs, k: T, batch: 2, strideA: T * T, strideB: T * hs, strideC: T * hs },
      bias: false,
      triangular: "lower",
    },
    {
      label: "triangularA upper (Pᵀ·dO), TN, accumulate",
      spec: {
        m: T,
        n: hs,
        k: T,
        transA: true,
        batch: 2,
        strideA: T * T,
        strideB: T * hs,
        strideC: T * hs,
        accumulate: true,
      },
      bias: false,
      triangular: "upper",
    },
    {
      label: "lowerC (causal scores), NT",
      spec: {
        m: T,
        n: T,
        k: hs,
        transB: true,
        batch: 2,
        strideA: T * hs,
        strideB: T * hs,
        strideC: T * T,
        alpha: 1 / 3,
      },
      bias: false,
      lowerC: true,
    },
  ], c);
});

Deno.test("GemmTiled f16-compute matches gemmRef within f16's rounding on every layout", async () => {
  const g = await gpu();
  assert.ok(g.hasF16, "lavapipe has shader-f16; the f16 path must be tested here");
  const c = TILE_CONFIGS[4];
  await runCases(await tiled(c, "f16-compute"), 3, layoutCases(c), c);
});

Deno.test("GemmTiled.configFor() picks big blocks for big shapes and tune() records a choice", async () => {
  const g = await gpu();
  const mm = await GemmTiled.create(g, { configs: [TILE_CONFIGS[3], TILE_CONFIGS[4]] });
  // Untuned: 64×64 blocks once they make 256 workgroups, else the smaller block.
  assert.equal(configName(mm.configFor({ m: 1024, n: 1024, k: 8 })), configName(TILE_CONFIGS[3]));
  assert.equal(configName(mm.configFor({ m: 40, n: 40, k: 8 })), configName(TILE_CONFIGS[4]));
  const shape = { m: 45, n: 37, k: 11, transB: true };
  const table = await mm.tune([shape], 2);
  const chosen = table[shapeClass(shape)];
  assert.ok([TILE_CONFIGS[3], TILE_CONFIGS[4]].map(configName).includes(chosen), `tuned ${chosen}`);
  assert.equal(configName(mm.configFor(shape)), chosen);
  assert.equal(mm.tuned[shapeClass(shape)], chosen);
  // The tuned choice runs and is correct.
  await runCases(mm, 4, [{ label: "tuned", spec: { ...shape }, bias: true }]);
});

Deno.test("GemmTiled.gemm() refuses bad shapes naming the tensor, and K over the loop cap", async () => {
  const g = await gpu();
  const mm = await tiled(TILE_CONFIGS[4]);
  const a = g.tensor([6], undefined, "small A"), b = g.tensor([6]), c = g.tensor([4]);
  const c1 = g.tensor([1]);
  try {
    assert.throws(() => mm.gemm(g.batch(), { a, b, c, m: 2, n: 2, k: 4 }), /"small A"/);
    assert.throws(() => mm.gemm(g.batch(), { a, b, c: a, m: 2, n: 2, k: 3 }), /also A/);
    assert.throws(
      () => mm.gemm(g.batch(), { a, b, c, m: 0, n: 2, k: 3 }),
      /M must be a positive integer/,
    );
    // 16-deep K tiles: K = 16·65,535 + 16 needs 65,537 loop iterations (+ the store loops).
    const k = 16 * 65535 + 16;
    const longA = g.tensor([k], undefined, "long A"), longB = g.tensor([k], undefined, "long B");
    try {
      assert.throws(
        () => mm.gemm(g.batch(), { a: longA, b: longB, c: c1, m: 1, n: 1, k }),
        /gemm_tiled.*loop iterations/,
      );
    } finally {
      release(longA, longB);
    }
  } finally {
    release(a, b, c, c1);
  }
});
