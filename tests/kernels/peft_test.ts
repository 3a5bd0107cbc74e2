import assert from "node:assert/strict";
import { type AdapterActivation, PeftKernels, Rng, type RowsSpec } from "../../mod.ts";
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
  actGradRef,
  actRef,
  erf,
  rowsGradRef,
  scaleGradRef,
  scaleRef,
  setRowsRef,
} from "../ref/peft.ts";

const SHAPES: [number, number][] = [[1, 1], [7, 33], [97, 7], [33, 97], [1000, 3]];

// One f32 multiply of f32 inputs is correctly rounded (≤ ½ ulp); WGSL's division may be off by
// up to 2.5 ulp, so the divide variant allows 3 ulp.
const MUL_TOL = { rtol: 1.2e-7, atol: 1e-30 };
const DIV_TOL = { rtol: 3.6e-7, atol: 1e-30 };

for (const [M, N] of SHAPES) {
  Deno.test(`PeftKernels.scale() matches the reference for (${M},${N}) by column and row, × and ÷`, async () => {
    const g = await gpu();
    const k = await PeftKernels.create(g);
    const rng = new Rng(M * 31 + N);
    const x = randn(rng, M * N);
    for (const byRow of [false, true]) {
      for (const divide of [false, true]) {
        const l = randn(rng, byRow ? M : N).map((v) => v + Math.sign(v) * 0.5);
        const tx = upload(g, [M, N], x, "x"), tl = upload(g, [l.length], l, "l");
        const out = poisoned(g, [M, N]);
        const batch = g.batch();
        k.scale(batch, tx, tl, out, M, N, { byRow, divide });
        await batch.submit();
        const [y] = await g.read([out]);
        assertClose(
          y,
          scaleRef(x, l, M, N, byRow, divide),
          divide ? DIV_TOL : MUL_TOL,
          `out byRow=${byRow} divide=${divide}`,
        );
        release(tx, tl, out);
      }
    }
  });

  Deno.test(`PeftKernels.scaleGrad() matches the reference for (${M},${N}) and accumulates`, async () => {
    const g = await gpu();
    const k = await PeftKernels.create(g);
    const rng = new Rng(M * 7 + N);
    const dy = randn(rng, M * N), x = randn(rng, M * N), dl0 = randn(rng, N);
    const tdy = upload(g, [M, N], dy, "dy"), tx = upload(g, [M, N], x, "x");
    const tdl = upload(g, [N], dl0, "dl");
    const batch = g.batch();
    k.scaleGrad(batch, tdy, tx, tdl, M, N);
    await batch.submit();
    const [dl] = await g.read([tdl]);
    const ref = dl0.slice();
    scaleGradRef(dy, x, ref, M, N);
    // A sum of M f32 products: the error is bounded by a few ulp of Σ|dy·x| per term added
    // (lane sums of ⌈M/64⌉ terms, then a 6-level tree): atol 1e-6 · max column Σ|dy·x|.
    let maxAbs = 0;
    for (let n = 0; n < N; n++) {
      let s = Math.abs(dl0[n]);
      for (let m = 0; m < M; m++) s += Math.abs(dy[m * N + n] * x[m * N + n]);
      maxAbs = Math.max(maxAbs, s);
    }
    assertClose(dl, ref, { rtol: 0, atol: 1e-6 * maxAbs }, "dl (accumulated)");
    release(tdy, tx, tdl);
  });
}

const ROWS: RowsSpec[] = [
  { B: 1, T: 1, n: 1, ldd: 1, doff: 0, w: 1, lds: 1, soff: 0 },
  { B: 2, T: 7, n: 3, ldd: 33, doff: 0, w: 33, lds: 33, soff: 0 }, // prompt tuning shape
  { B: 3, T: 9, n: 4, ldd: 21, doff: 7, w: 14, lds: 97, soff: 42 }, // prefix: layer 3 of 7, C=7
  { B: 7, T: 33, n: 7, ldd: 99, doff: 33, w: 66, lds: 198, soff: 132 },
];

for (const s of ROWS) {
  const tag = `B=${s.B} T=${s.T} n=${s.n} ldd=${s.ldd} doff=${s.doff} w=${s.w} lds=${s.lds}`;
  Deno.test(`PeftKernels.setRows() and rowsGrad() match the reference for ${tag}`, async () => {
    const g = await gpu();
    const k = await PeftKernels.create(g);
    const rng = new Rng(s.B * 100 + s.lds);
    const src = randn(rng, s.n * s.lds), add = randn(rng, s.n * s.w);
    const dst0 = randn(rng, s.B * s.T * s.ldd), dsrc0 = randn(rng, s.n * s.lds);
    for (const withAdd of [false, true]) {
      const tsrc = upload(g, [s.n, s.lds], src, "src"), tadd = upload(g, [s.n, s.w], add, "add");
      const tdst = upload(g, [s.B, s.T, s.ldd], dst0, "dst");
      const tgrad = upload(g, [s.B, s.T, s.ldd], dst0, "grad");
      const tdsrc = upload(g, [s.n, s.lds], dsrc0, "dsrc");
      const batch = g.batch();
      k.setRows(batch, tsrc, withAdd ? tadd : null, tdst, s);
      k.rowsGrad(batch, tgrad, tdsrc, s);
      await batch.submit();
      const [dst, grad, dsrc] = await g.read([tdst, tgrad, tdsrc]);
      const refDst = dst0.slice(), refGrad = dst0.slice(), refDsrc = dsrc0.slice();
      setRowsRef(src, withAdd ? add : null, refDst, s);
      rowsGradRef(refGrad, refDsrc, s);
      // Copies (and one f32 add) are exact or correctly rounded; the sums over B are short.
      assertClose(dst, refDst, MUL_TOL, `dst (add=${withAdd}), other rows untouched`);
      assertClose(
        grad,
        refGrad,
        { rtol: 0, atol: 0 },
        "grad: virtual rows zeroed, the rest untouched",
      );
      assertClose(dsrc, refDsrc, { rtol: 1e-6, atol: 1e-6 }, "dsrc (accumulated)");
      release(tsrc, tadd, tdst, tgrad, tdsrc);
    }
  });
}

const ACTS: AdapterActivation[] = ["relu", "swish", "gelu_new", "gelu"];

for (const act of ACTS) {
  for (const n of [1, 7, 33, 97]) {
    Deno.test(`PeftKernels.actForward() and actBackward() match the reference for ${act}, n=${n}`, async () => {
      const g = await gpu();
      const k = await PeftKernels.create(g);
      const rng = new Rng(n + act.length);
      const x = randn(rng, n, 3);
      const special = [0, -0, 1e-3, -1e-3, 40, -40, 200, -200];
      for (let i = 0; i < Math.min(n, special.length); i++) x[i] = Math.fround(special[i]);
      const dy = randn(rng, n);
      const tx = upload(g, [n], x, "x"), tdy = upload(g, [n], dy, "dy");
      const out = poisoned(g, [n]), dx = poisoned(g, [n], "dx");
      const batch = g.batch();
      k.actForward(batch, act, tx, out);
      k.actBackward(batch, act, tx, tdy, dx);
      await batch.submit();
      const [y, d] = await g.read([out, dx]);
      // exp/tanh-style functions are a few ulp in f32; the erf approximation of `gelu` adds up to
      // 1.5e−7·|x| absolute (Abramowitz & Stegun 7.1.26), hence atol 1e-6.
      const tol = act === "relu" ? { rtol: 0, atol: 0 } : { rtol: 2e-6, atol: 1e-6 };
      assertClose(y, actRef(x, act), tol, `${act} out`);
      assertClose(d, actGradRef(x, dy, act), tol, `${act} dx`);
      release(tx, tdy, out, dx);
    });
  }
}

Deno.test("peft references: erf matches known values", () => {
  const known: [number, number][] = [
    [0, 0],
    [0.5, 0.5204998778130465],
    [1, 0.8427007929497149],
    [-2, -0.9953222650189527],
    [2.5, 0.9995930479825550],
    [3, 0.9999779095030014],
    [5, 0.9999999999984626],
  ];
  for (const [z, e] of known) assertClose([erf(z)], [e], { rtol: 1e-14, atol: 1e-16 }, `erf(${z})`);
});

Deno.test("peft reference backward matches central finite differences (scale, activations)", () => {
  const rng = new Rng(5);
  const M = 3, N = 4;
  const x = randn(rng, M * N), l = randn(rng, N), w = randn(rng, M * N);
  // L = Σ w·(x ⊙ l): dL/dl = Σ_m w·x, dL/dx = w ⊙ l.
  const dl = new Float64Array(N);
  scaleGradRef(w, x, dl, M, N);
  for (let i = 0; i < N; i++) {
    const fd = centralDiff((v) => dot(scaleRef(x, v, M, N), w), l, i);
    assertClose([dl[i]], [fd], { rtol: 1e-6, atol: 1e-8 }, `dl[${i}]`);
  }
  const dx = scaleRef(w, l, M, N);
  for (let i = 0; i < M * N; i++) {
    const fd = centralDiff((v) => dot(scaleRef(v, l, M, N), w), x, i);
    assertClose([dx[i]], [fd], { rtol: 1e-6, atol: 1e-8 }, `dx[${i}]`);
  }
  for (const act of ACTS) {
    const z = Float64Array.from([-2.1, -0.7, 0.3, 1.4, 3.2]), wz = randn(rng, z.length);
    const g = actGradRef(z, wz, act);
    for (let i = 0; i < z.length; i++) {
      const fd = centralDiff((v) => dot(actRef(v, act), wz), z, i);
      assertClose([g[i]], [fd], { rtol: 1e-6, atol: 1e-8 }, `${act}'(${z[i]})`);
    }
  }
});

Deno.test("PeftKernels rejects bad shapes with errors naming the tensor", async () => {
  const g = await gpu();
  const k = await PeftKernels.create(g);
  const x = g.tensor([2, 3], undefined, "x"), l = g.tensor([2], undefined, "l");
  const out = g.tensor([2, 3], undefined, "out"), small = g.tensor([5], undefined, "small");
  const batch = g.batch();
  assert.throws(() => k.scale(batch, x, l, out, 2, 3), /tensor "l" \(l \(3\)\) has 2 elements/);
  assert.throws(() => k.scaleGrad(batch, x, small, l, 2, 3), /tensor "small"/);
  assert.throws(
    () =>
      k.setRows(batch, x, null, small, {
        B: 1,
        T: 2,
        n: 1,
        ldd: 3,
        doff: 0,
        w: 3,
        lds: 3,
        soff: 0,
      }),
    /tensor "small" \(dst/,
  );
  assert.throws(
    () => k.rowsGrad(batch, x, l, { B: 1, T: 2, n: 1, ldd: 3, doff: 1, w: 3, lds: 3, soff: 0 }),
    /exceed the destination row/,
  );
  assert.throws(
    () => k.actForward(batch, "tanh" as AdapterActivation, x, out),
    /unknown activation "tanh"/,
  );
  release(x, l, out, small);
});
