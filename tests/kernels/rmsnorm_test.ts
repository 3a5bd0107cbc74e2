import assert from "node:assert/strict";
import { type Gpu, RMSNorm, type RMSNormVariant, Rng } from "../../mod.ts";
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
import { rmsnormBackward, rmsnormForward } from "../ref/rmsnorm.ts";

// Tolerances, from f32 rounding bounds (u = 2⁻²⁴, one rounding is ≤ u relative). Every f32 sum of a
// row runs through `depth` additions in a row: ⌈C/64⌉ strided terms then a 6-level tree
// (workgroup variant), or C/4 terms per vec4 lane then 2 levels (rows variant). A sum of such a
// chain has error ≤ depth·u·Σ|terms|.
// - rstd: Σx² has only positive terms, so its relative error is ≤ depth·u; the square root halves
//   it; ·(1/C), + eps and inverseSqrt (2 ulp = 4u) add 6u: rtol (depth/2 + 6)·u.
// - out = weight·(x·rstd): two more roundings and no cancellation: rtol (depth/2 + 8)·u, atol 0.
// - dx += (dnorm − norm·m)·rstd with m = mean(dnorm·norm): the bracket can cancel, so its error is
//   absolute: m is off by ≤ (depth + 4)·u·A (A = mean |dnorm·norm|, the terms carry 3 roundings,
//   ·(1/C) one more) and the rest adds a few u of |dnorm| and |norm|·A; rstd scales it all.
//   atol (depth + 8)·u·max over rows of rstd·(max |dnorm| + max |norm|·A); rtol 2u for the f32
//   add into dx0.
// - dweight += Σ_rows dout·norm: chunk sums of ≤ rows-per-chunk terms, then ≤ 256 chunks, each
//   term 2 roundings: atol (terms in a chain + 4)·u·(largest column Σ|dout·norm|); rtol 2u for
//   the add into dw0.
// Backward is checked on the rstd the GPU saved (already checked against the reference's), so its
// tolerance covers its own rounding, not the forward's again.
const UNIT_ROUNDOFF = 2 ** -24;

/** Additions in a row that one f32 sum over a row of C goes through in `variant`. */
function sumDepth(C: number, variant: "workgroup" | "rows"): number {
  return variant === "rows" ? C / 4 + 2 : Math.ceil(C / 64) + 6;
}

/** Tolerance of the accumulated dx (see above). */
function dxTol(
  dout: Float64Array,
  x: Float64Array,
  weight: Float64Array,
  rstd: Float64Array,
  N: number,
  C: number,
  depth: number,
): { rtol: number; atol: number } {
  let worst = 0;
  for (let n = 0; n < N; n++) {
    let maxDnorm = 0, maxNorm = 0, a = 0;
    for (let c = 0; c < C; c++) {
      const dnorm = Math.abs(weight[c] * dout[n * C + c]), norm = Math.abs(x[n * C + c] * rstd[n]);
      maxDnorm = Math.max(maxDnorm, dnorm);
      maxNorm = Math.max(maxNorm, norm);
      a += dnorm * norm / C;
    }
    worst = Math.max(worst, rstd[n] * (maxDnorm + maxNorm * a));
  }
  return { rtol: 2 * UNIT_ROUNDOFF, atol: (depth + 8) * UNIT_ROUNDOFF * worst };
}

/** Tolerance of the accumulated dweight, a two-stage column sum of N rows (see above). */
function dweightTol(
  dout: Float64Array,
  x: Float64Array,
  rstd: Float64Array,
  N: number,
  C: number,
): { rtol: number; atol: number } {
  const rowsPerChunk = Math.max(64, Math.ceil(N / 256));
  const chain = Math.min(N, rowsPerChunk) + Math.ceil(N / rowsPerChunk);
  let absSum = 0;
  for (let c = 0; c < C; c++) {
    let s = 0;
    for (let n = 0; n < N; n++) s += Math.abs(dout[n * C + c] * x[n * C + c] * rstd[n]);
    absSum = Math.max(absSum, s);
  }
  return { rtol: 2 * UNIT_ROUNDOFF, atol: (chain + 4) * UNIT_ROUNDOFF * absSum };
}

interface Case {
  N: number;
  C: number;
  eps?: number;
  xStd?: number;
  /** dweight passed as null (a frozen weight). */
  frozen?: boolean;
  /** Forced kernel variant (default: what the adapter picks). */
  variant?: RMSNormVariant;
}

async function check(
  g: Gpu,
  { N, C, eps = 1e-5, xStd = 1, frozen = false, variant }: Case,
): Promise<void> {
  const k = await RMSNorm.create(g, { variant });
  const depth = sumDepth(C, k.variantFor(C));
  const rng = new Rng(N * 1000 + C);
  const x = randn(rng, N * C, xStd), weight = randn(rng, C);
  const dout = randn(rng, N * C), dx0 = randn(rng, N * C), dw0 = randn(rng, C);
  const tx = upload(g, [N, C], x, "x"), tw = upload(g, [C], weight, "weight");
  const tout = poisoned(g, [N, C], "out"), trstd = poisoned(g, [N], "rstd");
  // The += outputs start at random non-zero values, so a kernel that wrote = would fail.
  const tdout = upload(g, [N, C], dout, "dout"), tdx = upload(g, [N, C], dx0, "dx");
  const tdw = upload(g, [C], dw0, "dweight");
  const batch = g.batch();
  k.forward(batch, tx, tw, tout, trstd, N, C, eps);
  k.backward(batch, tdout, tx, tw, trstd, tdx, frozen ? null : tdw, N, C);
  await batch.submit();
  const [out, rstd, dx, dw] = await g.read([tout, trstd, tdx, tdw]);

  const ref = rmsnormForward(x, weight, N, C, eps);
  const gpuRstd = Float64Array.from(rstd);
  const refDx = dx0.slice(), refDw = dw0.slice();
  rmsnormBackward(dout, x, weight, gpuRstd, refDx, frozen ? null : refDw, N, C);
  assertClose(out, ref.out, { rtol: (depth / 2 + 8) * UNIT_ROUNDOFF, atol: 0 }, "out");
  assertClose(rstd, ref.rstd, { rtol: (depth / 2 + 6) * UNIT_ROUNDOFF, atol: 0 }, "rstd");
  assertClose(dx, refDx, dxTol(dout, x, weight, gpuRstd, N, C, depth), "dx (accumulated)");
  // A frozen weight's gradient buffer is not bound, so it keeps its initial values exactly.
  const dwTol = frozen ? { rtol: 0, atol: 0 } : dweightTol(dout, x, gpuRstd, N, C);
  assertClose(dw, refDw, dwTol, "dweight (accumulated)");
  release(tx, tw, tout, trstd, tdout, tdx, tdw);
  k.release();
}

// Row counts not a multiple of the rows variant's 64-row workgroups, row lengths not a multiple of
// the workgroup variant's 64 lanes; the rows variant needs C % 4 = 0.
for (const variant of ["auto", "workgroup", "rows"] as const) {
  for (const N of [1, 7, 70, 300]) {
    for (const C of [1, 3, 4, 36, 100, 768]) {
      if (variant === "rows" && C % 4 !== 0) continue;
      Deno.test(`RMSNorm.forward() and backward() (${variant} variant) match the reference for N=${N}, C=${C}`, async () => {
        await check(await gpu(), { N, C, variant });
      });
    }
  }
}

Deno.test("RMSNorm.backward() skips a frozen dweight (null) on every variant", async () => {
  const g = await gpu();
  for (const variant of ["auto", "workgroup", "rows"] as const) {
    await check(g, { N: 70, C: 36, variant, frozen: true });
  }
  await check(g, { N: 7, C: 3, frozen: true });
});

Deno.test("RMSNorm.forward() uses eps (small rows, eps = 1e-2)", async () => {
  // With x of std 0.01, mean(x²) (~1e-4) is small next to eps, so a kernel that ignored the eps
  // argument (or used 1e-5) would be off by far more than the tolerance.
  const g = await gpu();
  for (const variant of ["workgroup", "rows"] as const) {
    await check(g, { N: 7, C: 36, eps: 1e-2, xStd: 0.01, variant });
  }
});

Deno.test("RMSNorm picks the rows variant on a software adapter only where C allows it", async () => {
  const g = await gpu();
  const k = await RMSNorm.create(g);
  assert.equal(k.variantFor(33), "workgroup");
  assert.equal(k.variantFor(128), g.isSoftware ? "rows" : "workgroup");
  assert.equal(k.variantFor(130_808), g.isSoftware ? "rows" : "workgroup");
  assert.equal(k.variantFor(130_812), "workgroup");
  const rows = await RMSNorm.create(g, { variant: "rows" });
  const t = g.tensor([4], undefined, "x");
  assert.throws(
    () => rows.forward(g.batch(), t, t, t, t, 1, 3, 1e-5),
    /Cannot run kernel "rmsnorm.forward \(rows variant\)": C=3 is not a multiple of 4/,
  );
  assert.throws(
    () => rows.backward(g.batch(), t, t, t, t, t, null, 1, 130_812),
    /Cannot run kernel "rmsnorm.backward \(rows variant\)": a row of C=130812 needs 65536 loop iterations/,
  );
  release(t);
});

Deno.test("RMSNorm handles N = 100,000 rows (folded grid, two-stage dweight under the loop cap)", async () => {
  // 100,000 rows need a 2-D grid (> 65,535 workgroups) and 256 chunks of 391 rows for dweight.
  await check(await gpu(), { N: 100_000, C: 3 });
});

Deno.test("RMSNorm is correct at the longest rows it accepts (just under the loop cap)", async () => {
  // Workgroup variant: forward and backward loop 2·(32,763 + 1) + (6 + 1) = 65,535 times per
  // invocation at C = 64·32,763. Rows variant: 2·(32,702 + 1) (+ 128 of slack) = 65,534 at
  // C = 130,808. If the wrapper's count were short, Mesa would stop the loops early and leave
  // poisoned outputs or wrong row statistics.
  const g = await gpu();
  const C = 64 * 32_763;
  await check(g, { N: 1, C, variant: "workgroup" });
  await check(g, { N: 1, C: 130_808, variant: "rows" });
  const k = await RMSNorm.create(g, { variant: "workgroup" });
  const t = g.tensor([1], undefined, "x");
  assert.throws(
    () => k.forward(g.batch(), t, t, t, t, 1, C + 1, 1e-5),
    /a row of C=2096833 needs 65537 loop iterations/,
  );
  release(t);
});

Deno.test("rmsnorm reference matches Hugging Face LlamaRMSNorm on a hand-computed row", () => {
  // mean(x²) = (9 + 16)/2 = 12.5; out = weight·x/√(12.5 + eps).
  const { out, rstd } = rmsnormForward(
    new Float64Array([3, 4]),
    new Float64Array([1, 2]),
    1,
    2,
    0.5,
  );
  assertClose(rstd, [1 / Math.sqrt(13)], { rtol: 1e-15, atol: 0 }, "rstd");
  assertClose(out, [3 / Math.sqrt(13), 8 / Math.sqrt(13)], { rtol: 1e-15, atol: 0 }, "out");
});

Deno.test("rmsnorm reference backward matches central finite differences", () => {
  // C = 1 and a large eps too: there eps is what keeps dL/dx from vanishing.
  for (const [N, C, eps] of [[3, 7, 1e-5], [2, 1, 0.5]]) {
    const rng = new Rng(11 + C);
    const x = randn(rng, N * C), weight = randn(rng, C), w = randn(rng, N * C);
    const { rstd } = rmsnormForward(x, weight, N, C, eps);
    const dx = new Float64Array(N * C), dweight = new Float64Array(C);
    rmsnormBackward(w, x, weight, rstd, dx, dweight, N, C); // L = Σ w·out
    const loss = (xs: Float64Array, ws: Float64Array) =>
      dot(rmsnormForward(xs, ws, N, C, eps).out, w);
    // h = 1e-6 in f64: truncation ~h²·|L'''| and rounding ~ε·|L|/h ≈ 1e-9, against O(1) gradients.
    const tol = { rtol: 1e-6, atol: 1e-7 };
    for (let i = 0; i < N * C; i++) {
      assertClose([dx[i]], [centralDiff((v) => loss(v, weight), x, i)], tol, `dL/dx[${i}]`);
    }
    for (let c = 0; c < C; c++) {
      assertClose(
        [dweight[c]],
        [centralDiff((v) => loss(x, v), weight, c)],
        tol,
        `dL/dweight[${c}]`,
      );
    }
  }
});

Deno.test("RMSNorm throws clearly on bad shapes, eps and loop-cap-breaking sizes", async () => {
  const g = await gpu();
  const k = await RMSNorm.create(g);
  const N = 4, C = 5;
  const x = g.tensor([N, C], undefined, "x"), w = g.tensor([C], undefined, "weight");
  const out = g.tensor([N, C], undefined, "out"), rstd = g.tensor([N], undefined, "rstd");
  const short = g.tensor([N * C - 1], undefined, "short");
  const batch = g.batch();
  assert.throws(
    () => k.forward(batch, short, w, out, rstd, N, C, 1e-5),
    /Cannot run kernel "rmsnorm.forward": tensor "short" \(x \(N,C\)\) has 19 elements, needs 20/,
  );
  assert.throws(
    () => k.forward(batch, x, w, out, rstd, N + 20, C, 1e-5),
    /tensor "x" \(x \(N,C\)\) has 20 elements, needs 120/,
  );
  assert.throws(
    () => k.forward(batch, x, rstd, out, rstd, N, C, 1e-5),
    /tensor "rstd" \(weight \(C\)\) has 4 elements, needs 5/,
  );
  assert.throws(
    () => k.forward(batch, x, w, out, w, 7, 2, 1e-5),
    /tensor "weight" \(rstd \(N\)\) has 5 elements, needs 7/,
  );
  assert.throws(
    () => k.forward(batch, x, w, out, rstd, 0, C, 1e-5),
    /N and C must be positive integers, got N=0, C=5/,
  );
  assert.throws(
    () => k.forward(batch, x, w, out, rstd, N, 2.5, 1e-5),
    /N and C must be positive integers, got N=4, C=2.5/,
  );
  for (const eps of [-1, NaN, Infinity]) {
    assert.throws(
      () => k.forward(batch, x, w, out, rstd, N, C, eps),
      new RegExp(`Cannot run kernel "rmsnorm.forward": eps must be finite and ≥ 0, got ${eps}`),
    );
  }
  assert.throws(
    () => k.backward(batch, short, x, w, rstd, out, null, N, C),
    /Cannot run kernel "rmsnorm.backward": tensor "short" \(dout \(N,C\)\) has 19 elements, needs 20/,
  );
  assert.throws(
    () => k.backward(batch, x, x, w, rstd, short, null, N, C),
    /tensor "short" \(dx \(N,C\)\) has 19 elements, needs 20/,
  );
  assert.throws(
    () => k.backward(batch, x, x, w, short, out, null, 20, 1),
    /tensor "short" \(rstd \(N\)\) has 19 elements, needs 20/,
  );
  assert.throws(
    () => k.backward(batch, x, x, w, rstd, out, rstd, N, C),
    /tensor "rstd" \(dweight \(C\)\) has 4 elements, needs 5/,
  );
  // Rows longer than the loop cap allows, and more rows than two-stage column sums can cover.
  assert.throws(
    () => k.forward(batch, x, w, out, rstd, 1, 5_000_000, 1e-5),
    /Cannot run kernel "rmsnorm.forward": a row of C=5000000 needs 156259 loop iterations per invocation, over the 65535/,
  );
  assert.throws(
    () => k.backward(batch, x, x, w, rstd, out, w, 20_000_000, 1),
    /Cannot run kernel "rmsnorm.backward": summing dweight over N=20000000 rows needs 78126 loop iterations/,
  );
  // Frozen, the same N needs no column sums, so only the sizes are checked.
  assert.throws(
    () => k.backward(batch, x, x, w, rstd, out, null, 20_000_000, 1),
    /tensor "x" \(dout \(N,C\)\) has 20 elements, needs 20000000/,
  );
  assert.equal(batch.length, 0);
  release(x, w, out, rstd, short);
});
