import assert from "node:assert/strict";
import { Gelu, Rng } from "../../mod.ts";
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
import { geluBackward, geluForward } from "../ref/gelu.ts";

// The GPU evaluates x·σ(2u) in f32 with e^(−2u). Rounding u (relative ε = 6e-8) moves e^(−2u) by
// up to |2u|·ε, and |2u| ≤ 80 on the formula branch, so the relative error is at most ~5e-6 plus a
// few ulps from exp and the division: rtol 1e-5. atol 1e-7 covers outputs that are ~0 (x ≪ 0).
const FWD_TOL = { rtol: 1e-5, atol: 1e-7 };
// The gradient σ + 2x·u'·σ(1 − σ) cancels near x ≈ −0.75 (where it crosses 0) with terms of
// size ≤ 1, so besides the same relative error we allow a few ε of absolute error on O(1) terms
// times |dout| ≤ ~4: atol 1e-6. dx also holds its accumulated initial value.
const BWD_TOL = { rtol: 1e-5, atol: 1e-6 };

type Variant = "vec4" | "scalar";

async function run(x: Float64Array, variant: Variant): Promise<void> {
  const n = x.length;
  const g = await gpu();
  const k = await Gelu.create(g, { variant });
  const rng = new Rng(n + 1);
  const dout = randn(rng, n), dx0 = randn(rng, n);
  const tx = upload(g, [n], x, "x"), tout = poisoned(g, [n]);
  const tdout = upload(g, [n], dout, "dout"), tdx = upload(g, [n], dx0, "dx");
  const batch = g.batch();
  k.forward(batch, tx, tout);
  k.backward(batch, tx, tdout, tdx);
  // The vec4 kernels run whenever n is a multiple of 4; otherwise (and for "scalar") the scalar ones.
  const vec = variant === "vec4" && n % 4 === 0;
  assert.deepEqual(
    batch.kernels,
    vec ? ["gelu.forward_vec4", "gelu.backward_vec4"] : ["gelu.forward", "gelu.backward"],
  );
  await batch.submit();
  const [out, dx] = await g.read([tout, tdx]);
  const refDx = dx0.slice();
  geluBackward(x, dout, refDx);
  assertClose(out, geluForward(x), FWD_TOL, "out");
  assertClose(dx, refDx, BWD_TOL, "dx (accumulated)");
  release(tx, tout, tdout, tdx);
}

// 388 and 4,100 are multiples of 4 but not of the vec4 kernels' 4 vec4s × 256 invocations.
for (const variant of ["vec4", "scalar"] as const) {
  for (const n of [1, 7, 33, 97, 388, 4100, 97 * 768]) {
    Deno.test(`Gelu.forward() and backward() match the reference for n=${n} (${variant})`, async () => {
      await run(randn(new Rng(n), n, 3), variant);
    });
  }
}

Deno.test("Gelu.forward() and backward() stay finite and match the reference at large |x|", async () => {
  // ±10…±11 straddle the switch to the saturated branch (|u| = 40 near |x| ≈ 10.3).
  const special = [
    20,
    -20,
    100,
    -100,
    1e20,
    -1e20,
    10,
    -10,
    10.5,
    -10.5,
    11,
    -11,
    5,
    -5,
    0,
    3.4e38,
    -3.4e38,
    0.5,
    -0.75,
    1e-30,
  ];
  const x = Float64Array.from(special, Math.fround); // 20 values: the vec4 kernels run too
  for (const variant of ["vec4", "scalar"] as const) await run(x, variant);
});

Deno.test("Gelu.forward() gives exactly x and 0 far out on each side", async () => {
  const g = await gpu();
  const k = await Gelu.create(g);
  const x = new Float64Array([100, -100, 1e20, -1e20]);
  const tx = upload(g, [4], x, "x"), tout = poisoned(g, [4]);
  const batch = g.batch();
  k.forward(batch, tx, tout);
  await batch.submit();
  const out = await tout.read();
  assert.deepEqual([...out].map((v) => v + 0), [100, 0, 1e20, 0].map(Math.fround));
  release(tx, tout);
});

Deno.test("gelu reference backward matches central finite differences", () => {
  const rng = new Rng(5);
  const n = 33;
  const x = randn(rng, n, 3), w = randn(rng, n);
  const dx = new Float64Array(n);
  geluBackward(x, w, dx); // L = Σ w·gelu(x), so dL/dout = w
  for (let i = 0; i < n; i++) {
    const fd = centralDiff((v) => dot(geluForward(v), w), x, i);
    // Central differences with h = 1e-6 in f64: truncation ~h²·|f'''| and rounding ~ε·|L|/h ≈ 1e-9.
    assertClose([dx[i]], [fd], { rtol: 1e-6, atol: 1e-8 }, `dL/dx[${i}]`);
  }
});

Deno.test("Gelu.forward() and backward() throw naming the tensor on a size mismatch", async () => {
  const g = await gpu();
  const k = await Gelu.create(g);
  const x = g.tensor([4], undefined, "x"),
    out = g.tensor([5], undefined, "out"),
    dx = g.tensor([3], undefined, "dx");
  const batch = g.batch();
  assert.throws(
    () => k.forward(batch, x, out),
    /Cannot run kernel "gelu.forward": tensor "out" has 5 elements, expected 4/,
  );
  assert.throws(
    () => k.backward(batch, x, x, dx),
    /Cannot run kernel "gelu.backward": tensor "dx" has 3 elements, expected 4/,
  );
  assert.equal(batch.length, 0);
  release(x, out, dx);
});
