import assert from "node:assert/strict";
import { counterHash, Dropout, type Gpu, Params, Rng, type Tensor } from "../../mod.ts";
import dropoutCode from "../../kernels/dropout.wgsl" with { type: "text" };
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
import { dropoutBackward, dropoutForward, dropoutMask, dropoutScale } from "../ref/dropout.ts";

// Forward is exact: x and scale are f32, so x·scale is exact in f64 and the GPU's correctly rounded
// f32 product is its f32 rounding. Backward adds that product to dx in f32: one rounding of a sum
// of O(1) terms (|dx0| + |dout·scale| ≲ 50 here) is ≤ 0.5 ulp ≈ 3e-6 absolute: atol 4e-6.
const BWD_TOL = { rtol: 1.2e-7, atol: 4e-6 };

/** Asserts that the f32 GPU values equal the f32 rounding of the reference, bit for bit (so −0 ≠ 0). */
function assertExact(actual: Float32Array, expected: Float64Array, name: string): void {
  const want = Float32Array.from(expected);
  for (let i = 0; i < actual.length; i++) {
    if (!Object.is(actual[i], want[i])) {
      throw new Error(`${name}: [${i}] got ${actual[i]}, expected ${want[i]}`);
    }
  }
  assert.equal(actual.length, want.length, `${name}: length`);
}

/** Runs forward on x and backward on dout (into dx0) with one mask; returns out and dx. */
async function runDropout(
  g: Gpu,
  x: Float64Array,
  dout: Float64Array,
  dx0: Float64Array,
  p: number,
  seed: number,
  offset?: number,
): Promise<[Float32Array, Float32Array]> {
  const k = await Dropout.create(g);
  const n = x.length;
  const tx = upload(g, [n], x, "x"), tout = poisoned(g, [n]);
  const tdout = upload(g, [n], dout, "dout"), tdx = upload(g, [n], dx0, "dx");
  const batch = g.batch();
  k.forward(batch, tx, tout, p, seed, offset);
  k.backward(batch, tdout, tdx, p, seed, offset);
  await batch.submit();
  const [out, dx] = await g.read([tout, tdx]);
  release(tx, tout, tdout, tdx);
  return [out, dx];
}

for (const n of [1, 7, 33, 97, 97 * 768]) {
  for (const p of [0, 0.1, 0.5]) {
    Deno.test(`Dropout.forward() and backward() match the reference for n=${n}, p=${p}`, async () => {
      const g = await gpu();
      const rng = new Rng(n);
      const x = randn(rng, n, 3), dout = randn(rng, n, 3), dx0 = randn(rng, n, 3);
      const seed = 0x9e3779b9 ^ n;
      const [out, dx] = await runDropout(g, x, dout, dx0, p, seed >>> 0);
      const refDx = dx0.slice();
      dropoutBackward(dout, refDx, p, seed >>> 0);
      assertExact(out, dropoutForward(x, p, seed >>> 0), "out");
      assertClose(dx, refDx, BWD_TOL, "dx (accumulated)");
    });
  }
}

Deno.test("Dropout.forward() in place (out = x) matches the reference", async () => {
  const g = await gpu();
  const k = await Dropout.create(g);
  const n = 97;
  const x = randn(new Rng(9), n, 3);
  const t = upload(g, [n], x, "x");
  const batch = g.batch();
  k.forward(batch, t, t, 0.3, 5, 11);
  await batch.submit();
  assertExact(await t.read(), dropoutForward(x, 0.3, 5, 11), "x (in place)");
  release(t);
});

Deno.test("Dropout.forward() with p = 0 is the identity", async () => {
  const g = await gpu();
  const n = 1000;
  const x = randn(new Rng(8), n, 3);
  const [out, dx] = await runDropout(g, x, x, new Float64Array(n), 0, 42);
  assertExact(out, x, "out");
  assertExact(dx, x, "dx");
});

Deno.test("Dropout.backward() uses the mask of forward() and the reference, with offsets that wrap", async () => {
  const g = await gpu();
  const n = 97;
  const ones = new Float64Array(n).fill(1);
  for (const offset of [0, 1000, 2 ** 32 - 10]) {
    const [out, dx] = await runDropout(g, ones, ones, new Float64Array(n), 0.3, 7, offset);
    const scale = dropoutScale(0.3);
    const mask = dropoutMask(n, 0.3, 7, offset);
    assertExact(out, Float64Array.from(mask, (m) => m * scale), `forward mask at offset ${offset}`);
    assertExact(dx, Float64Array.from(mask, (m) => m * scale), `backward mask at offset ${offset}`);
    assert.ok(mask.includes(0) && mask.includes(1), "the mask has both values");
  }
});

/** The GPU keep mask (1 kept, 0 dropped) for n elements. */
async function gpuMask(g: Gpu, n: number, p: number, seed: number): Promise<Uint8Array> {
  const k = await Dropout.create(g);
  const tx = g.tensor([n], new Float32Array(n).fill(1), "x"), tout = poisoned(g, [n]);
  const batch = g.batch();
  k.forward(batch, tx, tout, p, seed);
  await batch.submit();
  const out = await tout.read();
  release(tx, tout);
  return Uint8Array.from(out, (v) => (v === 0 ? 0 : 1));
}

// With a uniform hash the kept count is Binomial(n, 1 − p): σ = √(n·p·(1 − p)) ≤ 158 for
// n = 100,000. A 5σ bound fails by chance with probability < 6e-7 per check, while a biased
// hash (or a threshold off by a few percent) misses it by far.
Deno.test("Dropout.forward() keeps a fraction 1 − p within 5σ for n = 100,000", async () => {
  const g = await gpu();
  const n = 100_000;
  for (const p of [0.1, 0.5, 0.9]) {
    for (const seed of [0, 1, 0xffffffff]) {
      const mask = await gpuMask(g, n, p, seed);
      const kept = mask.reduce((a, b) => a + b, 0);
      const sigma = Math.sqrt(n * p * (1 - p));
      assert.ok(
        Math.abs(kept - n * (1 - p)) <= 5 * sigma,
        `p=${p} seed=${seed}: kept ${kept}, expected ${n * (1 - p)} ± ${5 * sigma}`,
      );
      const want = dropoutMask(n, p, seed);
      const at = mask.findIndex((m, i) => m !== want[i]);
      assert.equal(at, -1, `p=${p} seed=${seed}: GPU mask differs from the reference at [${at}]`);
    }
  }
});

// Two independent masks at p = 0.5 disagree at Binomial(n, 0.5) positions: σ = √n/2 ≈ 158.
Deno.test("Dropout.forward() with different seeds gives independent masks", async () => {
  const g = await gpu();
  const n = 100_000;
  const a = await gpuMask(g, n, 0.5, 1), b = await gpuMask(g, n, 0.5, 2);
  let differ = 0;
  for (let i = 0; i < n; i++) differ += a[i] ^ b[i];
  assert.ok(
    Math.abs(differ - n / 2) <= 5 * Math.sqrt(n) / 2,
    `masks differ at ${differ} of ${n} positions`,
  );
});

// A test-only entry point appended to kernels/dropout.wgsl writes counter_hash's raw bits.
const HASH_BITS_WGSL = `
@group(0) @binding(6) var<storage, read_write> bits: array<u32>;
@compute @workgroup_size(64)
fn hash_bits(@builtin(global_invocation_id) gid: vec3u) {
  if (gid.x < p.n) { bits[gid.x] = counter_hash(p.seed, p.offset + gid.x); }
}`;

Deno.test("counter_hash in dropout.wgsl gives the same bits as counterHash()", async () => {
  const g = await gpu();
  const k = await g.kernel({
    name: "dropout.hash_bits (test)",
    code: dropoutCode + HASH_BITS_WGSL,
    entry: "hash_bits",
    bindings: ["uniform", null, null, null, null, null, "write"],
  });
  const n = 4096;
  const cases: [number, number][] = [[0, 0], [1, 0], [12345, 777], [0x9e3779b9, 2 ** 31], [
    0xffffffff,
    2 ** 32 - 100,
  ]];
  const outs: Tensor[] = [];
  const batch = g.batch();
  for (const [seed, offset] of cases) {
    const t = g.tensor([n], new Uint32Array(n).fill(0xdeadbeef), "bits");
    batch.dispatch(
      k,
      [t],
      new Params().u32(n).u32(seed).u32(offset).u32(0).f32(1).bytes,
      Math.ceil(n / 64),
    );
    outs.push(t);
  }
  await batch.submit();
  const got = await g.read(outs);
  cases.forEach(([seed, offset], c) => {
    const bits = new Uint32Array(got[c].buffer);
    for (let i = 0; i < n; i++) {
      const want = counterHash(seed, (offset + i) >>> 0);
      if (bits[i] !== want) {
        throw new Error(
          `seed ${seed}, index ${(offset + i) >>> 0}: GPU ${bits[i].toString(16)}, TS ${
            want.toString(16)
          }`,
        );
      }
    }
  });
  release(...outs);
});

Deno.test("dropout reference backward matches central finite differences", () => {
  const rng = new Rng(6);
  const n = 33;
  const x = randn(rng, n), w = randn(rng, n);
  const dx = new Float64Array(n);
  dropoutBackward(w, dx, 0.4, 99); // L = Σ w·dropout(x), so dL/dout = w
  for (let i = 0; i < n; i++) {
    const fd = centralDiff((v) => dot(dropoutForward(v, 0.4, 99), w), x, i);
    // L is linear in x, so the central difference is exact up to f64 rounding ~ε·|L|/h.
    assertClose([dx[i]], [fd], { rtol: 1e-7, atol: 1e-8 }, `dL/dx[${i}]`);
  }
});

Deno.test("Dropout throws clearly on a bad p, seed, offset or size", async () => {
  const g = await gpu();
  const k = await Dropout.create(g);
  const x = g.tensor([4], undefined, "x"), out = g.tensor([5], undefined, "out");
  const batch = g.batch();
  for (const p of [1, -0.1, 1.5, NaN]) {
    assert.throws(
      () => k.forward(batch, x, x, p, 1),
      new RegExp(
        `Cannot run kernel "dropout.forward": the drop probability p must be in \\[0, 1\\), got ${p}`,
      ),
    );
  }
  assert.throws(
    () => k.backward(batch, x, x, 1, 1),
    /"dropout.backward": the drop probability p must be in \[0, 1\)/,
  );
  assert.throws(
    () => k.forward(batch, x, x, 0.1, -1),
    /seed must be an integer in \[0, 2\^32\), got -1/,
  );
  assert.throws(() => k.forward(batch, x, x, 0.1, 1.5), /seed must be an integer/);
  assert.throws(
    () => k.forward(batch, x, x, 0.1, 1, 2 ** 32),
    /offset must be an integer in \[0, 2\^32\)/,
  );
  assert.throws(
    () => k.forward(batch, x, out, 0.1, 1),
    /Cannot run kernel "dropout.forward": tensor "out" has 5 elements, expected 4/,
  );
  assert.throws(
    () => k.backward(batch, out, x, 0.1, 1),
    /Cannot run kernel "dropout.backward": tensor "x" has 4 elements, expected 5/,
  );
  assert.throws(
    () => k.backward(batch, x, x, 0.1, 1),
    /Cannot run kernel "dropout.backward": tensors "x" and "x" are the same buffer/,
  );
  assert.equal(batch.length, 0);
  release(x, out);
});
