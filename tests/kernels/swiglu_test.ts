import assert from "node:assert/strict";
import { type Gpu, Rng, SwiGLU } from "../../mod.ts";
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
import { swigluBackward, swigluForward } from "../ref/swiglu.ts";

// Tolerances. Inputs are exact f32 values, so the GPU's error is its own: t = e^(−|g|), which
// WGSL allows to be off by (3 + 2|g|) ulp, then a handful of roundings (u = 2⁻²⁴ each).
// - out = g·σ·up and dup = dout·g·σ: σ carries at most t's relative error (σ = 1/(1 + t) damps it
//   for g ≥ 0), so the relative error is ≲ (3 + 2|g|)·2u + 4u. Where it matters (|silu| not tiny,
//   |g| ≤ 20 since |silu(−20)| = 4e−8) that is ≤ 43·2u + 4u ≈ 5.4e−6: rtol 1e−5. Beyond, values
//   are below 4e−8·|up| and atol covers them: atol 1e−7·scale, scale = the largest |up| (or |dout|).
// - dgate = dout·up·σ·(1 + g·(1 − σ)): the bracket cancels near g ≈ −1.28 (where silu' = 0) with
//   terms of size ≤ 1.3 and σ ≈ 0.22, so besides the relative error above it keeps an absolute
//   error of a few ulps of 1, times |dout·up|: atol 1e−6·max |dout·up|.
const RTOL = 1e-5;

type Variant = "vec4" | "scalar";

/** Largest |a[i]·b[i]| (or |a[i]| alone), at least 1. */
function scale(a: Float64Array, b?: Float64Array): number {
  let m = 1;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] * (b ? b[i] : 1)));
  return m;
}

/** Runs forward and backward on the GPU with NaN-poisoned outputs and compares to the reference. */
async function check(
  g: Gpu,
  gate: Float64Array,
  up: Float64Array,
  dout: Float64Array,
  variant: Variant,
): Promise<void> {
  const n = gate.length;
  const k = await SwiGLU.create(g, { variant });
  const tgate = upload(g, [n], gate, "gate"), tup = upload(g, [n], up, "up");
  const tdout = upload(g, [n], dout, "dout");
  const tout = poisoned(g, [n], "out"),
    tdgate = poisoned(g, [n], "dgate"),
    tdup = poisoned(g, [n], "dup");
  const batch = g.batch();
  k.forward(batch, tgate, tup, tout);
  k.backward(batch, tgate, tup, tdout, tdgate, tdup);
  // The vec4 kernels run whenever n is a multiple of 4; otherwise (and for "scalar") the scalar ones.
  const vec = variant === "vec4" && n % 4 === 0;
  assert.deepEqual(
    batch.kernels,
    vec ? ["swiglu.forward_vec4", "swiglu.backward_vec4"] : ["swiglu.forward", "swiglu.backward"],
  );
  await batch.submit();
  const [out, dgate, dup] = await g.read([tout, tdgate, tdup]);
  const ref = swigluBackward(gate, up, dout);
  assertClose(out, swigluForward(gate, up), { rtol: RTOL, atol: 1e-7 * scale(up) }, "out");
  assertClose(dgate, ref.dgate, { rtol: RTOL, atol: 1e-6 * scale(dout, up) }, "dgate");
  assertClose(dup, ref.dup, { rtol: RTOL, atol: 1e-7 * scale(dout) }, "dup");
  release(tgate, tup, tdout, tout, tdgate, tdup);
}

/** Random gate (N(0, 3²): mostly the curved part of silu, some tails), up and dout N(0, 1). */
function inputs(n: number): [Float64Array, Float64Array, Float64Array] {
  const rng = new Rng(n + 1);
  return [randn(rng, n, 3), randn(rng, n), randn(rng, n)];
}

// Odd sizes (1 element, less than a vec4, a workgroup + 1, 100,003) run the scalar kernels in
// both variants; 4, 260 and 100,004 are multiples of 4 but not of the vec4 kernels' 4 vec4s × 256
// invocations, so the vec4 kernels' tails are covered too.
for (const variant of ["vec4", "scalar"] as const) {
  for (const n of [1, 3, 5, 257, 100_003, 4, 260, 100_004]) {
    Deno.test(`SwiGLU.forward() and backward() match the reference for n=${n} (${variant})`, async () => {
      await check(await gpu(), ...inputs(n), variant);
    });
  }
}

/** Gates where a naive kernel breaks: ±80 is where the kernel switches to saturated values. */
const LARGE_GATES = [
  100,
  -100,
  1e4,
  -1e4,
  1e30,
  -1e30,
  3.4e38,
  -3.4e38,
  79.9,
  -79.9,
  80,
  -80,
  80.1,
  -80.1,
  20,
  -20,
  17,
  -17,
  -1.278,
  0,
  1e-30,
  -1e-30,
  88.8,
  -88.8,
].map(Math.fround);

Deno.test("SwiGLU.forward() and backward() stay finite and match the reference at large |gate|", async () => {
  const g = await gpu();
  const n = LARGE_GATES.length; // 24: the vec4 kernels run too
  const rng = new Rng(3);
  // |up|, |dout| < 1 keep out = g·up and dup = dout·g finite at g = ±3.4e38.
  const uniform = () => Float64Array.from({ length: n }, () => Math.fround(rng.uniform(-1, 1)));
  const up = uniform(), dout = uniform();
  const gate = Float64Array.from(LARGE_GATES);
  for (const variant of ["vec4", "scalar"] as const) {
    await check(g, gate, up, dout, variant);
    // An odd count: the scalar kernels even in the vec4 variant.
    await check(
      g,
      gate.subarray(0, n - 1),
      up.subarray(0, n - 1),
      dout.subarray(0, n - 1),
      variant,
    );
  }
});

Deno.test("SwiGLU.forward() and backward() match the reference at large |up| and |dout|", async () => {
  const rng = new Rng(4);
  const n = 1001;
  const gate = randn(rng, n, 3), up = randn(rng, n, 1e4), dout = randn(rng, n, 1e3);
  for (const variant of ["vec4", "scalar"] as const) {
    await check(await gpu(), gate, up, dout, variant);
    await check(await gpu(), gate.subarray(1), up.subarray(1), dout.subarray(1), variant);
  }
});

Deno.test("SwiGLU gives exact saturated values far out on each side (g = ±100, ±1e4)", async () => {
  const g = await gpu();
  const gate = [100, -100, 1e4, -1e4], up = [3, 3, -0.5, -0.5], dout = [2, 2, 2, 2];
  for (const variant of ["vec4", "scalar"] as const) {
    const k = await SwiGLU.create(g, { variant });
    const tgate = upload(g, [4], gate, "gate"), tup = upload(g, [4], up, "up");
    const tdout = upload(g, [4], dout, "dout");
    const tout = poisoned(g, [4], "out"),
      tdgate = poisoned(g, [4], "dgate"),
      tdup = poisoned(g, [4], "dup");
    const batch = g.batch();
    k.forward(batch, tgate, tup, tout);
    k.backward(batch, tgate, tup, tdout, tdgate, tdup);
    await batch.submit();
    const [out, dgate, dup] = await g.read([tout, tdgate, tdup]);
    const plus0 = (a: Float32Array) => [...a].map((v) => v + 0); // −0 and 0 compare equal
    // silu(g) = g and silu'(g) = 1 for g ≫ 0; silu = silu' = 0 for g ≪ 0 (exact in f32).
    assert.deepEqual(plus0(out), [300, 0, -5000, 0], `out (${variant})`);
    assert.deepEqual(plus0(dgate), [6, 0, -1, 0], `dgate (${variant})`);
    assert.deepEqual(plus0(dup), [200, 0, 2e4, 0], `dup (${variant})`);
    release(tgate, tup, tdout, tout, tdgate, tdup);
  }
});

Deno.test("SwiGLU handles n beyond 65,535 workgroups of 64 (2-D grid)", async () => {
  // 65,535·64 + 3 elements: the scalar kernels need 65,536 workgroups, folded into a 2-D grid.
  const g = await gpu();
  const n = 65_535 * 64 + 3;
  g.recorder = [];
  try {
    await check(g, ...inputs(n), "scalar");
    const groups = g.recorder.map((d) => d.groups);
    assert.ok(groups.length === 2 && groups.every(([, y]) => y > 1), `grids ${groups.join(" ")}`);
  } finally {
    g.recorder = null;
  }
});

Deno.test("swiglu reference backward matches central finite differences", () => {
  const rng = new Rng(5);
  const n = 33;
  const gate = randn(rng, n, 3), up = randn(rng, n), w = randn(rng, n);
  // L = Σ w·out, so dL/dout = w.
  const { dgate, dup } = swigluBackward(gate, up, w);
  // Central differences with h = 1e-6 in f64: truncation ~h²·|L'''| and rounding ~ε·|L|/h ≈ 1e-9.
  const tol = { rtol: 1e-6, atol: 1e-8 };
  for (let i = 0; i < n; i++) {
    const dg = centralDiff((v) => dot(swigluForward(v, up), w), gate, i);
    const du = centralDiff((v) => dot(swigluForward(gate, v), w), up, i);
    assertClose([dgate[i]], [dg], tol, `dL/dgate[${i}]`);
    assertClose([dup[i]], [du], tol, `dL/dup[${i}]`);
  }
});

Deno.test("swiglu reference stays finite at large |gate|", () => {
  const gate = Float64Array.from(LARGE_GATES), ones = new Float64Array(gate.length).fill(1);
  const { dgate, dup } = swigluBackward(gate, ones, ones);
  const out = swigluForward(gate, ones);
  assert.ok(out.every(Number.isFinite), `out: ${out}`);
  assert.ok(dgate.every(Number.isFinite), `dgate: ${dgate}`);
  assert.ok(dup.every(Number.isFinite), `dup: ${dup}`);
});

Deno.test("SwiGLU.forward() and backward() throw naming the tensor on a size mismatch", async () => {
  const g = await gpu();
  const k = await SwiGLU.create(g);
  const a = g.tensor([4], undefined, "gate"),
    b = g.tensor([5], undefined, "up"),
    c = g.tensor([3], undefined, "dup");
  const batch = g.batch();
  assert.throws(
    () => k.forward(batch, a, b, a),
    /Cannot run kernel "swiglu.forward": tensor "up" has 5 elements, expected 4/,
  );
  assert.throws(
    () => k.backward(batch, a, a, a, a, c),
    /Cannot run kernel "swiglu.backward": tensor "dup" has 3 elements, expected 4/,
  );
  assert.equal(batch.length, 0);
  release(a, b, c);
});
