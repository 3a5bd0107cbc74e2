import assert from "node:assert/strict";
import { AdamW, type AdamWHyper, Gpu, Rng } from "../../mod.ts";
import { assertClose, gpu, randn, release, upload } from "../helpers.ts";
import { adamwStep } from "../ref/adamw.ts";

const STEPS = 4;
const LR = 1e-2;

/**
 * Per-element error bounds, from a running error analysis of the f32 update. Each f32 operation is
 * correctly rounded or within 2.5 ulps (WGSL's sqrt and division), so an operation with operands of
 * size s adds an error of about s·2⁻²³. Terms cancel (m = m + (1 − β1)(g − m) can be much smaller than
 * g and m), so the bounds scale with the operands' sizes, not the result's:
 *   m: += 2⁻²²·(|m| + |g|) per step (lerp: three operations on values ≤ |m| + |g|);
 *   v: += 2⁻²²·v per step (no cancellation: all terms are ≥ 0);
 *   p: += 2⁻²²·|p| (decay and add) + stepSize·(m's bound / denom + 2⁻²⁰·|m/denom|) (the ratio's
 *      error from m, plus ~8 ulps from sqrt, two divisions and the add of eps).
 */
class Bounds {
  readonly m: Float64Array;
  readonly v: Float64Array;
  readonly p: Float64Array;
  constructor(n: number) {
    [this.m, this.v, this.p] = [new Float64Array(n), new Float64Array(n), new Float64Array(n)];
  }
  /** Adds one step's bounds, given the state before (p0, m0) and after (m, v) the reference step. */
  add(
    p0: Float64Array,
    m0: Float64Array,
    g: Float64Array,
    m: Float64Array,
    v: Float64Array,
    h: AdamWHyper,
    frozen: (i: number) => boolean,
  ): void {
    const stepSize = h.lr / (1 - h.beta1 ** h.step), bc2Sqrt = Math.sqrt(1 - h.beta2 ** h.step);
    for (let i = 0; i < m.length; i++) {
      if (frozen(i)) continue;
      this.m[i] += 2 ** -22 * (Math.abs(m0[i]) + Math.abs(g[i]));
      this.v[i] += 2 ** -22 * v[i];
      const denom = Math.sqrt(v[i]) / bc2Sqrt + h.eps;
      this.p[i] += 2 ** -22 * Math.abs(p0[i]) +
        stepSize * (this.m[i] / denom + 2 ** -20 * Math.abs(m[i] / denom));
    }
  }
}

/** Asserts |actual − expected| ≤ bound elementwise, reporting the first failures. */
function assertWithin(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  bound: ArrayLike<number>,
  name: string,
): void {
  const bad: string[] = [];
  for (let i = 0; i < expected.length; i++) {
    const err = Math.abs(actual[i] - expected[i]);
    if (!(err <= bound[i]) && bad.length < 5) {
      bad.push(`[${i}] got ${actual[i]}, expected ${expected[i]} ± ${bound[i]}`);
    }
  }
  if (bad.length > 0) {
    throw new Error(`${name}: elements outside their error bound; first: ${bad.join("; ")}`);
  }
}

function mask(rng: Rng, n: number, pOne: number): Float64Array {
  return Float64Array.from({ length: n }, () => rng.float() < pOne ? 1 : 0);
}

for (const n of [1, 7, 33, 97, 1000]) {
  for (const clipped of [false, true]) {
    const masked = n > 1;
    Deno.test(
      `AdamW.step() matches the reference over ${STEPS} steps for n=${n}${
        masked ? " with masks" : ""
      }, clipping ${clipped ? "on" : "off"}`,
      async () => {
        const g = await gpu();
        const k = await AdamW.create(g);
        const rng = new Rng(n * 2 + (clipped ? 1 : 0));
        const param = randn(rng, n), m = randn(rng, n, 0.1);
        const v = randn(rng, n, 0.1).map((x) => Math.fround(x * x)); // a state from earlier steps
        const gradMask = masked ? mask(rng, n, 0.7) : null,
          wdMask = masked ? mask(rng, n, 0.5) : null;
        if (gradMask) gradMask[0] = 0; // at least one frozen element
        const param0 = param.slice(), m0 = m.slice(), v0 = v.slice();
        const clipScale = Math.fround(0.37);
        const tp = upload(g, [n], param, "param"),
          tm = upload(g, [n], m, "m"),
          tv = upload(g, [n], v, "v");
        const tgm = gradMask && upload(g, [n], gradMask, "gradMask"),
          twm = wdMask && upload(g, [n], wdMask, "wdMask");
        const tclip = clipped ? upload(g, [2], [123, clipScale], "clip") : null; // [norm, scale] as GradNorm writes
        const bounds = new Bounds(n);
        const batch = g.batch();
        for (let step = 1; step <= STEPS; step++) {
          // Gradients from 1e-4 to 10 in size: small ones make eps matter, large ones the decay.
          const grad = randn(rng, n).map((x, i) => Math.fround(x * 10 ** ((i % 6) - 4)));
          const tg = upload(g, [n], grad, `grad${step}`);
          const h: AdamWHyper = {
            lr: LR,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weightDecay: 0.1,
            step,
          };
          k.step(
            batch,
            { param: tp, grad: tg, m: tm, v: tv, gradMask: tgm, wdMask: twm },
            h,
            tclip,
          );
          const [pBefore, mBefore] = [param.slice(), m.slice()];
          const scaled = grad.map((x) => x * (clipped ? clipScale : 1));
          adamwStep(param, grad, m, v, gradMask, wdMask, clipped ? clipScale : 1, h);
          bounds.add(pBefore, mBefore, scaled, m, v, h, (i) => gradMask?.[i] === 0);
          await batch.submit();
          tg.release();
        }
        const [gp, gm, gv] = await g.read([tp, tm, tv]);
        assertWithin(gp, param, bounds.p, "param");
        assertWithin(gm, m, bounds.m, "m");
        assertWithin(gv, v, bounds.v, "v");
        for (let i = 0; i < n; i++) {
          if (gradMask?.[i] === 0) {
            assert.ok(
              gp[i] === param0[i] && gm[i] === m0[i] && gv[i] === v0[i],
              `frozen element ${i} changed`,
            );
          } else {
            assert.notEqual(gp[i], param0[i], `trainable element ${i} did not move`);
          }
        }
        release(tp, tm, tv, ...[tgm, twm, tclip].filter((t) => t !== null));
      },
    );
  }
}

Deno.test("AdamW.step() decays weights only where wdMask is 1, in torch's order", async () => {
  // Zero gradient and zero moments: the Adam direction is 0/(0 + eps) = 0, so only the decay acts:
  // p · (1 − lr·wd) where wdMask = 1, p unchanged where wdMask = 0.
  const g = await gpu();
  const k = await AdamW.create(g);
  const n = 4;
  const param = [1, -2, 3, -4], wd = [1, 0, 1, 0];
  const tp = upload(g, [n], param, "param"), tg = upload(g, [n], new Float64Array(n), "grad");
  const tm = upload(g, [n], new Float64Array(n), "m"),
    tv = upload(g, [n], new Float64Array(n), "v");
  const twm = upload(g, [n], wd, "wdMask");
  const batch = g.batch();
  k.step(batch, { param: tp, grad: tg, m: tm, v: tv, wdMask: twm }, {
    lr: 0.5,
    beta1: 0.9,
    beta2: 0.99,
    eps: 1e-8,
    weightDecay: 0.25,
    step: 1,
  });
  await batch.submit();
  const [gp] = await g.read([tp]);
  assertClose(gp, [0.875, -2, 2.625, -4], { rtol: 0, atol: 0 }, "param"); // 1 − 0.5·0.25 = 0.875 exactly
  release(tp, tg, tm, tv, twm);
});

Deno.test("AdamW.step() rejects bad sizes and hyperparameters naming the tensor or value", async () => {
  const g = await gpu();
  const k = await AdamW.create(g);
  const t = (n: number, label: string) => g.tensor([n], new Float32Array(n), label);
  const [p, gr, m, v, shortMask, clip3] = [
    t(5, "p"),
    t(5, "g"),
    t(5, "m"),
    t(4, "v"),
    t(4, "gm"),
    t(3, "clip3"),
  ];
  const h = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, step: 1 };
  const b = g.batch();
  assert.throws(
    () => k.step(b, { param: p, grad: gr, m, v }, h),
    /tensor "v" has 4 elements, expected 5/,
  );
  assert.throws(
    () => k.step(b, { param: p, grad: gr, m, v: m, gradMask: shortMask }, h),
    /tensor "gm" has 4 elements/,
  );
  assert.throws(
    () => k.step(b, { param: p, grad: gr, m, v: m }, h, clip3),
    /"clip3" \(clip\) has 3 elements/,
  );
  assert.throws(
    () => k.step(b, { param: p, grad: gr, m, v: m }, { ...h, step: 0 }),
    /step 0 is not an integer ≥ 1/,
  );
  assert.throws(
    () => k.step(b, { param: p, grad: gr, m, v: m }, { ...h, beta2: 1 }),
    /beta2 1 is outside \[0, 1\)/,
  );
  release(p, gr, m, v, shortMask, clip3);
});

Deno.test("AdamW.step() updates tensors over the storage-binding limit chunk by chunk, bit for bit as unchunked", async () => {
  const n = 3001; // 12,004 bytes: four chunks of a forced 4,096-byte limit, the last one partial
  const rng = new Rng(77);
  const host = {
    param: randn(rng, n),
    grad: randn(rng, n),
    m: randn(rng, n, 0.1),
    v: randn(rng, n, 0.1).map((x) => Math.fround(x * x)),
    gradMask: mask(rng, n, 0.7),
    wdMask: mask(rng, n, 0.5),
  };
  const h: AdamWHyper = { lr: LR, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, step: 3 };
  const run = async (g: Awaited<ReturnType<typeof gpu>>) => {
    const k = await AdamW.create(g);
    const t = Object.fromEntries(
      Object.entries(host).map(([name, data]) => [name, upload(g, [n], data, name)]),
    ) as Record<keyof typeof host, ReturnType<typeof upload>>;
    const clip = upload(g, [2], [5, 0.37], "clip");
    const batch = g.batch();
    k.step(batch, t, h, clip);
    await batch.submit();
    const out = await g.read([t.param, t.m, t.v]);
    release(...Object.values(t), clip);
    return out;
  };
  const small = await Gpu.create({ maxBindingBytes: 4096 });
  try {
    assert.ok(small.rowChunks(n, 1).length > 1, "the forced limit splits the tensors");
    assert.deepEqual(await run(small), await run(await gpu()));
  } finally {
    small.destroy();
  }
});
