import assert from "node:assert/strict";
import { type Gpu, LayerNorm, type LayerNormVariant, Rng } from "../../mod.ts";
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
import { layernormBackward, layernormForward } from "../ref/layernorm.ts";

// Tolerances. Inputs are N(0,1)-ish, so every intermediate is O(1) except rstd (up to 1/√eps ≈ 316
// when C = 1, where x − mean is exactly 0 and rstd multiplies nothing).
// - out, mean: f32 sums of C ≤ 768 terms (12 strided terms per invocation, then a 6-level tree)
//   and inverseSqrt (2 ulp): relative error of norm ≲ 20ε ≈ 1.2e-6; rtol 1e-5, atol 1e-5 for
//   values near 0 (out = norm·weight + bias can cancel).
// - rstd: one relative error as above: rtol 1e-5.
// - dx: rstd·(dnorm − mean(dnorm) − norm·mean(dnorm·norm)): the bracket cancels terms of size
//   |dnorm| and keeps a few ulps of their rounding (a compiler that contracts weight·dout − mean
//   into an FMA, as NVIDIA's does, leaves the product's own rounding error even where the exact
//   bracket is 0, e.g. C = 1), and rstd scales that up: atol 16·u·max rstd·max |dnorm|, plus
//   1e-6 for the f32 accumulation into dx0 (u = 2⁻²⁴).
// - dweight, dbias: f32 column sums of N O(1) terms (chunks of ≥ 64 rows, then ≤ 256 chunks):
//   each term carries a few ulps from f32 norm, and a sum of K terms adds at most K·u·Σ|term|
//   (u = 2⁻²⁴) of rounding, with K = rows per chunk + chunks (two-stage): atol scales with that.
const OUT_TOL = { rtol: 1e-5, atol: 1e-5 };
const RSTD_TOL = { rtol: 1e-5, atol: 0 };
const UNIT_ROUNDOFF = 2 ** -24;

/** Tolerance for a column sum of N terms whose largest column of |terms| sums to `absSum`. */
function sumTol(N: number, absSum: number): { rtol: number; atol: number } {
  const rowsPerChunk = Math.max(64, Math.ceil(N / 256));
  return { rtol: 0, atol: (Math.min(N, rowsPerChunk + 256) + 4) * UNIT_ROUNDOFF * absSum };
}

/** Largest column sum of |dout·norm| and of |dout| (for the dweight/dbias tolerances). */
function columnAbsSums(
  dout: Float64Array,
  x: Float64Array,
  mean: Float64Array,
  rstd: Float64Array,
  N: number,
  C: number,
) {
  let w = 0, b = 0;
  for (let c = 0; c < C; c++) {
    let sw = 0, sb = 0;
    for (let n = 0; n < N; n++) {
      sw += Math.abs(dout[n * C + c] * (x[n * C + c] - mean[n]) * rstd[n]);
      sb += Math.abs(dout[n * C + c]);
    }
    w = Math.max(w, sw);
    b = Math.max(b, sb);
  }
  return { w, b };
}

interface Case {
  N: number;
  C: number;
  eps?: number;
  xStd?: number;
  frozen?: "weight" | "bias" | "both";
  /** Adds spread·(c − (C−1)/2) to column c, so that no row has a tiny variance. */
  spread?: number;
  /** Forced kernel variant (default: what the adapter picks). */
  variant?: LayerNormVariant;
}

async function check(
  g: Gpu,
  { N, C, eps, xStd = 1, frozen, spread = 0, variant }: Case,
): Promise<void> {
  const k = await LayerNorm.create(g, { variant });
  const rng = new Rng(N * 1000 + C);
  const x = randn(rng, N * C, xStd), weight = randn(rng, C), bias = randn(rng, C);
  for (let i = 0; i < N * C; i++) x[i] = Math.fround(x[i] + spread * ((i % C) - (C - 1) / 2));
  const dout = randn(rng, N * C), dx0 = randn(rng, N * C);
  const dw0 = randn(rng, C), db0 = randn(rng, C);
  const tx = upload(g, [N, C], x, "x"),
    tw = upload(g, [C], weight, "weight"),
    tb = upload(g, [C], bias, "bias");
  const tout = poisoned(g, [N, C], "out"),
    tmean = poisoned(g, [N], "mean"),
    trstd = poisoned(g, [N], "rstd");
  const tdout = upload(g, [N, C], dout, "dout"), tdx = upload(g, [N, C], dx0, "dx");
  const tdw = upload(g, [C], dw0, "dweight"), tdb = upload(g, [C], db0, "dbias");
  const withW = frozen !== "weight" && frozen !== "both",
    withB = frozen !== "bias" && frozen !== "both";
  const batch = g.batch();
  k.forward(batch, tx, tw, tb, tout, tmean, trstd, N, C, eps);
  k.backward(batch, tdout, tx, tw, tmean, trstd, tdx, withW ? tdw : null, withB ? tdb : null, N, C);
  await batch.submit();
  const [out, mean, rstd, dx, dw, db] = await g.read([tout, tmean, trstd, tdx, tdw, tdb]);

  const ref = layernormForward(x, weight, bias, N, C, eps);
  // Backward is checked on the mean and rstd the GPU saved (already checked against ref.mean and
  // ref.rstd), so its tolerance covers its own rounding, not the forward's again.
  const gpuMean = Float64Array.from(mean), gpuRstd = Float64Array.from(rstd);
  const refDx = dx0.slice(), refDw = dw0.slice(), refDb = db0.slice();
  layernormBackward(
    dout,
    x,
    weight,
    gpuMean,
    gpuRstd,
    refDx,
    withW ? refDw : null,
    withB ? refDb : null,
    N,
    C,
  );
  const abs = columnAbsSums(dout, x, gpuMean, gpuRstd, N, C);
  assertClose(out, ref.out, OUT_TOL, "out");
  assertClose(mean, ref.mean, { rtol: 1e-5, atol: 1e-6 * xStd }, "mean");
  assertClose(rstd, ref.rstd, RSTD_TOL, "rstd");
  let maxDnorm = 0;
  for (let i = 0; i < N * C; i++) maxDnorm = Math.max(maxDnorm, Math.abs(weight[i % C] * dout[i]));
  const dxAtol = 16 * UNIT_ROUNDOFF * gpuRstd.reduce((a, b) => Math.max(a, b)) * maxDnorm + 1e-6;
  assertClose(dx, refDx, { rtol: 1e-5, atol: dxAtol }, "dx (accumulated)");
  // A frozen parameter's gradient buffer is not bound, so it keeps its initial values exactly.
  assertClose(dw, refDw, withW ? sumTol(N, abs.w) : { rtol: 0, atol: 0 }, "dweight (accumulated)");
  assertClose(db, refDb, withB ? sumTol(N, abs.b) : { rtol: 0, atol: 0 }, "dbias (accumulated)");
  release(tx, tw, tb, tout, tmean, trstd, tdout, tdx, tdw, tdb);
  k.release();
}

for (const N of [1, 7, 33, 97]) {
  for (const C of [1, 7, 33, 97, 768]) {
    Deno.test(`LayerNorm.forward() and backward() match the reference for N=${N}, C=${C}`, async () => {
      await check(await gpu(), { N, C });
    });
  }
}

// The rows variant (one invocation per row, vec4) needs C % 4 = 0; both variants are checked on
// the same shapes, row counts not a multiple of its 64-row workgroups.
for (const variant of ["rows", "workgroup"] as const) {
  for (const [N, C] of [[1, 4], [33, 36], [97, 128], [7, 768]]) {
    Deno.test(`LayerNorm.forward() and backward() (${variant} variant) match the reference for N=${N}, C=${C}`, async () => {
      await check(await gpu(), { N, C, variant });
      await check(await gpu(), { N, C, variant, frozen: "both" });
    });
  }
}

Deno.test("LayerNorm picks the rows variant on a software adapter only where C allows it", async () => {
  const g = await gpu();
  const k = await LayerNorm.create(g);
  assert.equal(k.variantFor(33), "workgroup");
  assert.equal(k.variantFor(128), g.isSoftware ? "rows" : "workgroup");
  const rows = await LayerNorm.create(g, { variant: "rows" });
  const t = g.tensor([4], undefined, "x");
  assert.throws(
    () => rows.forward(g.batch(), t, t, t, t, t, t, 1, 3),
    /Cannot run kernel "layernorm.forward \(rows variant\)": C=3 is not a multiple of 4/,
  );
  release(t);
});

Deno.test("LayerNorm.backward() skips frozen dweight and/or dbias", async () => {
  const g = await gpu();
  for (const frozen of ["weight", "bias", "both"] as const) {
    await check(g, { N: 97, C: 33, frozen });
  }
});

Deno.test("LayerNorm.forward() uses eps (small-variance rows, eps = 1e-2)", async () => {
  // With x of std 0.01 the variance (~1e-4) is small next to eps, so a kernel that ignored the
  // eps argument (or used 1e-5) would be off by far more than the tolerance.
  await check(await gpu(), { N: 7, C: 33, eps: 1e-2, xStd: 0.01 });
});

Deno.test("LayerNorm handles N = 100,000 rows (folded grid, two-stage column sums under the loop cap)", async () => {
  // 100,000 rows need a 2-D grid (> 65,535 workgroups) and 256 chunks of 391 rows for dweight/dbias.
  // Among 100,000 random rows of 3 some have a tiny variance, whose huge rstd amplifies f32
  // rounding in dx far past any fixed tolerance (an ill-conditioned input, not a kernel error):
  // the spread keeps every row's variance near 1.
  await check(await gpu(), { N: 100_000, C: 3, spread: 1.2, xStd: 0.3 });
});

Deno.test("LayerNorm is correct at the longest row it accepts (C = 64·21,839, just under the loop cap)", async () => {
  // Forward loops 3·(21,839 + 1) + 2·(6 + 1) = 65,534 times per invocation: if the wrapper's
  // count were short, Mesa would stop the loops early and the row statistics would be wrong.
  const C = 64 * 21_839;
  await check(await gpu(), { N: 1, C });
  const k = await LayerNorm.create(await gpu());
  const batch = (await gpu()).batch();
  const t = (await gpu()).tensor([1], undefined, "x");
  assert.throws(() => k.forward(batch, t, t, t, t, t, t, 1, C + 1), /needs 65537 loop iterations/);
  release(t);
});

Deno.test("layernorm reference backward matches central finite differences", () => {
  const rng = new Rng(11);
  const N = 3, C = 7;
  const x = randn(rng, N * C), weight = randn(rng, C), bias = randn(rng, C), w = randn(rng, N * C);
  const { mean, rstd } = layernormForward(x, weight, bias, N, C);
  const dx = new Float64Array(N * C), dweight = new Float64Array(C), dbias = new Float64Array(C);
  layernormBackward(w, x, weight, mean, rstd, dx, dweight, dbias, N, C); // L = Σ w·out
  const loss = (xs: Float64Array, ws: Float64Array, bs: Float64Array) =>
    dot(layernormForward(xs, ws, bs, N, C).out, w);
  // h = 1e-6 in f64: truncation ~h²·|L'''| and rounding ~ε·|L|/h ≈ 1e-9, against O(1) gradients.
  const tol = { rtol: 1e-6, atol: 1e-7 };
  for (let i = 0; i < N * C; i++) {
    assertClose([dx[i]], [centralDiff((v) => loss(v, weight, bias), x, i)], tol, `dL/dx[${i}]`);
  }
  for (let c = 0; c < C; c++) {
    assertClose(
      [dweight[c]],
      [centralDiff((v) => loss(x, v, bias), weight, c)],
      tol,
      `dL/dweight[${c}]`,
    );
    assertClose(
      [dbias[c]],
      [centralDiff((v) => loss(x, weight, v), bias, c)],
      tol,
      `dL/dbias[${c}]`,
    );
  }
});

Deno.test("LayerNorm throws clearly on bad shapes, eps and loop-cap-breaking sizes", async () => {
  const g = await gpu();
  const k = await LayerNorm.create(g);
  const N = 4, C = 5;
  const x = g.tensor([N, C], undefined, "x"),
    w = g.tensor([C], undefined, "weight"),
    b = g.tensor([C], undefined, "bias");
  const out = g.tensor([N, C], undefined, "out"), mean = g.tensor([N], undefined, "mean");
  const rstd = g.tensor([N], undefined, "rstd"), short = g.tensor([N * C - 1], undefined, "short");
  const batch = g.batch();
  assert.throws(
    () => k.forward(batch, short, w, b, out, mean, rstd, N, C),
    /Cannot run kernel "layernorm.forward": tensor "short" \(x \(N,C\)\) has 19 elements, needs 20/,
  );
  assert.throws(
    () => k.forward(batch, x, w, b, out, short, rstd, N + 20, C),
    /tensor "x" \(x \(N,C\)\) has 20 elements, needs 120/,
  );
  assert.throws(
    () => k.forward(batch, x, w, b, out, mean, rstd, N, C + 1),
    /tensor "x" \(x \(N,C\)\) has 20 elements, needs 24/,
  );
  assert.throws(
    () => k.forward(batch, x, w, b, out, mean, rstd, 0, C),
    /N and C must be positive integers, got N=0, C=5/,
  );
  assert.throws(
    () => k.forward(batch, x, w, b, out, mean, rstd, N, C, -1),
    /eps must be finite and ≥ 0, got -1/,
  );
  assert.throws(
    () => k.backward(batch, x, x, w, mean, rstd, short, null, null, N, C),
    /Cannot run kernel "layernorm.backward": tensor "short" \(dx \(N,C\)\) has 19 elements, needs 20/,
  );
  assert.throws(
    () => k.backward(batch, x, x, w, mean, rstd, out, null, mean, N, C),
    /tensor "mean" \(dbias \(C\)\) has 4 elements, needs 5/,
  );
  // Rows longer than the loop cap allows, and more rows than two-stage column sums can cover.
  assert.throws(
    () => k.forward(batch, x, w, b, out, mean, rstd, 1, 2_000_000),
    /Cannot run kernel "layernorm.forward": a row of C=2000000 needs 93767 loop iterations per invocation, over the 65535/,
  );
  assert.throws(
    () => k.backward(batch, x, x, w, mean, rstd, out, w, null, 20_000_000, 1),
    /Cannot run kernel "layernorm.backward": summing dweight\/dbias over N=20000000 rows needs 78126 loop iterations/,
  );
  assert.equal(batch.length, 0);
  release(x, w, b, out, mean, rstd, short);
});
