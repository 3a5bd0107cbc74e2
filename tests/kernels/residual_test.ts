import { Residual, Rng } from "../../mod.ts";
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
import { residualBackward, residualForward } from "../ref/residual.ts";

// Sums of two f32 values: the GPU result is the correctly rounded f32 of the f64 sum,
// so the error is at most half an ulp: rtol 1e-7 (plus a tiny atol for values near 0).
const TOL = { rtol: 1.2e-7, atol: 1e-30 };

for (const n of [1, 7, 33, 97, 1000]) {
  Deno.test(`Residual.forward() and backward() match the reference for n=${n}`, async () => {
    const g = await gpu();
    const k = await Residual.create(g);
    const rng = new Rng(n);
    const a = randn(rng, n), b = randn(rng, n), dout = randn(rng, n);
    const da0 = randn(rng, n), db0 = randn(rng, n);
    const ta = upload(g, [n], a), tb = upload(g, [n], b), tout = poisoned(g, [n]);
    const tdout = upload(g, [n], dout), tda = upload(g, [n], da0), tdb = upload(g, [n], db0);
    const batch = g.batch();
    k.forward(batch, ta, tb, tout);
    k.backward(batch, tdout, tda, tdb);
    await batch.submit();
    const [out, da, db] = await g.read([tout, tda, tdb]);
    const refDa = da0.slice(), refDb = db0.slice();
    residualBackward(dout, refDa, refDb);
    assertClose(out, residualForward(a, b), TOL, "out");
    assertClose(da, refDa, TOL, "da (accumulated)");
    assertClose(db, refDb, TOL, "db (accumulated)");
    release(ta, tb, tout, tdout, tda, tdb);
  });
}

Deno.test("residual reference backward matches central finite differences", () => {
  const rng = new Rng(3);
  const n = 7;
  const a = randn(rng, n), b = randn(rng, n), w = randn(rng, n);
  const da = new Float64Array(n), db = new Float64Array(n);
  residualBackward(w, da, db); // L = Σ w·(a + b), so dL/dout = w
  for (let i = 0; i < n; i++) {
    const fa = centralDiff((x) => dot(residualForward(x, b), w), a, i);
    const fb = centralDiff((x) => dot(residualForward(a, x), w), b, i);
    assertClose([da[i], db[i]], [fa, fb], { rtol: 1e-6, atol: 1e-8 }, `d/d[${i}]`);
  }
});
