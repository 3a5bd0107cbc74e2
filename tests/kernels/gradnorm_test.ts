import assert from "node:assert/strict";
import { AdamW, Gpu, GradNorm, Rng } from "../../mod.ts";
import { assertClose, gpu, poisoned, randn, release, upload } from "../helpers.ts";
import { adamwStep } from "../ref/adamw.ts";
import { gradNorm } from "../ref/gradnorm.ts";

/**
 * The sum of squares has only non-negative terms, so its relative error is at most the number of
 * f32 additions on any path times 2⁻²⁴: 32 per invocation + 8 tree levels + ceil(P/256) + 8 in the
 * finish pass, under 60 here (3.6e-6); √ halves that. So the norm gets rtol 2e-6, the scale
 * maxNorm/(norm + 1e-6) one more rounding: rtol 3e-6. Exact zeros need atol 0.
 */
const NORM_TOL = { rtol: 2e-6, atol: 0 };
const SCALE_TOL = { rtol: 3e-6, atol: 0 };

const CASES: { sizes: number[]; masked: boolean[]; what: string }[] = [
  { sizes: [1], masked: [false], what: "one element" },
  { sizes: [7, 33, 97], masked: [false, true, false], what: "sizes 7, 33, 97, one masked" },
  {
    sizes: [10_000, 1, 8192],
    masked: [true, false, true],
    what: "sizes 10,000, 1, 8,192 (chunk edges), two masked",
  },
];

for (const { sizes, masked, what } of CASES) {
  Deno.test(`GradNorm.compute() matches the reference for ${what}, with and without clipping`, async () => {
    const g = await gpu();
    const k = await GradNorm.create(g);
    const rng = new Rng(sizes[0]);
    const host = sizes.map((n, i) => ({
      grad: randn(rng, n, 0.5),
      mask: masked[i] ? Float64Array.from({ length: n }, () => rng.float() < 0.6 ? 1 : 0) : null,
    }));
    const tensors = host.map(({ grad, mask }, i) => ({
      grad: upload(g, [grad.length], grad, `grad${i}`),
      mask: mask && upload(g, [mask.length], mask, `mask${i}`),
    }));
    const [norm] = gradNorm(host, 0);
    // Clipping on (below and above the norm) and off (0, negative, infinite maxNorm).
    for (const maxNorm of [norm / 3, norm * 2, 0, -1, Infinity]) {
      const out = poisoned(g, [2], "out");
      const batch = g.batch();
      k.compute(batch, tensors, out, maxNorm);
      await batch.submit();
      const [[n, s]] = await g.read([out]);
      const [refNorm, refScale] = gradNorm(host, maxNorm);
      assertClose([n], [refNorm], NORM_TOL, `norm (maxNorm ${maxNorm})`);
      assertClose([s], [refScale], SCALE_TOL, `clipScale (maxNorm ${maxNorm})`);
      out.release();
    }
    k.release();
    release(...tensors.flatMap(({ grad, mask }) => mask ? [grad, mask] : [grad]));
  });
}

Deno.test("GradNorm.compute() reduces more than 256 partial sums, deterministically", async () => {
  const g = await gpu();
  const k = await GradNorm.create(g);
  const n = 257 * 8192 + 5; // 258 workgroups of partial sums: the finish pass loops twice
  const grad = randn(new Rng(9), n, 1e-3);
  const t = upload(g, [n], grad, "big");
  const outs = [poisoned(g, [2], "out1"), poisoned(g, [2], "out2")];
  const batch = g.batch();
  for (const out of outs) k.compute(batch, [t], out, 0.5);
  await batch.submit();
  const [a, b] = await g.read(outs);
  const [refNorm, refScale] = gradNorm([{ grad }], 0.5);
  assertClose([a[0], a[1]], [refNorm, refScale], SCALE_TOL, "[norm, scale]");
  assert.deepEqual(b, a, "a second run must give the same bits");
  k.release();
  release(t, ...outs);
});

Deno.test("AdamW.step() applies the clipScale GradNorm.compute() wrote, on the GPU", async () => {
  // End to end without readback: GradNorm writes [norm, scale]; AdamW reads the scale. Clipping on
  // (maxNorm below the norm) must match the reference with the reference's scale, and clipping off
  // (maxNorm 0) must match the unclipped reference. Tolerance: one AdamW step from zero moments,
  // whose update is ±lr·|g|/(|g| + eps·…) (see adamw_test.ts); 1e-6 relative plus 1e-7 covers it.
  const g = await gpu();
  const gn = await GradNorm.create(g);
  const adamw = await AdamW.create(g);
  const n = 33;
  const rng = new Rng(3);
  const grad = randn(rng, n), param = randn(rng, n);
  const h = { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, step: 1 };
  for (const maxNorm of [0.5, 0]) {
    const tg = upload(g, [n], grad, "grad"), tp = upload(g, [n], param, "param");
    const tm = upload(g, [n], new Float64Array(n), "m"),
      tv = upload(g, [n], new Float64Array(n), "v");
    const out = poisoned(g, [2], "norm_scale");
    const batch = g.batch();
    gn.compute(batch, [tg], out, maxNorm);
    adamw.step(batch, { param: tp, grad: tg, m: tm, v: tv }, h, out);
    await batch.submit();
    const [gp, gm] = await g.read([tp, tm]);
    const [, scale] = gradNorm([{ grad }], maxNorm);
    assert.ok(maxNorm === 0 ? scale === 1 : scale < 0.2, "the test must clip in one case only");
    const p = param.slice(), m = new Float64Array(n), v = new Float64Array(n);
    adamwStep(p, grad, m, v, null, null, scale, h);
    assertClose(gp, p, { rtol: 1e-6, atol: 1e-7 }, `param (maxNorm ${maxNorm})`);
    assertClose(gm, m, { rtol: 4e-6, atol: 0 }, `m = (1 − β1)·g·scale (maxNorm ${maxNorm})`);
    release(tg, tp, tm, tv, out);
  }
  gn.release();
});

Deno.test("GradNorm.compute() rejects a bad out or mask naming the tensor", async () => {
  const g = await gpu();
  const k = await GradNorm.create(g);
  const grad = g.tensor([5], new Float32Array(5), "grad"),
    mask = g.tensor([4], new Float32Array(4), "mask");
  const out = g.tensor([2], undefined, "out"), out3 = g.tensor([3], undefined, "out3");
  const b = g.batch();
  assert.throws(
    () => k.compute(b, [grad], out3, 1),
    /tensor "out3" \(out\) has 3 elements, expected 2/,
  );
  assert.throws(
    () => k.compute(b, [{ grad, mask }], out, 1),
    /tensor "mask" has 4 elements, expected 5/,
  );
  assert.throws(() => k.compute(b, [grad], out, NaN), /maxNorm is NaN/);
  k.release();
  release(grad, mask, out, out3);
});

Deno.test("GradNorm.compute() sums tensors over the storage-binding limit chunk by chunk", async () => {
  const rng = new Rng(21);
  const sizes = [40_000, 7, 20_000];
  const host = sizes.map((n, i) => ({
    grad: randn(rng, n, 0.5),
    mask: i !== 1 ? Float64Array.from({ length: n }, () => rng.float() < 0.6 ? 1 : 0) : null,
  }));
  const run = async (g: Awaited<ReturnType<typeof gpu>>) => {
    const k = await GradNorm.create(g);
    const tensors = host.map(({ grad, mask }, i) => ({
      grad: upload(g, [grad.length], grad, `grad${i}`),
      mask: mask && upload(g, [mask.length], mask, `mask${i}`),
    }));
    const out = poisoned(g, [2], "out");
    const batch = g.batch();
    k.compute(batch, tensors, out, 1);
    await batch.submit();
    const [result] = await g.read([out]);
    k.release();
    release(out, ...tensors.flatMap(({ grad, mask }) => mask ? [grad, mask] : [grad]));
    return result;
  };
  const whole = await run(await gpu());
  // 64 KiB: chunks of two workgroups' elements, so every partial sum is the one without chunks.
  const wide = await Gpu.create({ maxBindingBytes: 65536 });
  // 4 KiB: under one workgroup's 32 KiB, so the sums are split differently (reference tolerance).
  const narrow = await Gpu.create({ maxBindingBytes: 4096 });
  try {
    assert.deepEqual(await run(wide), whole, "same bits with chunks of whole workgroups");
    const [refNorm, refScale] = gradNorm(host, 1);
    const [n, s] = await run(narrow);
    assertClose([n], [refNorm], NORM_TOL, "norm (4 KiB chunks)");
    assertClose([s], [refScale], SCALE_TOL, "clipScale (4 KiB chunks)");
  } finally {
    wide.destroy();
    narrow.destroy();
  }
});
