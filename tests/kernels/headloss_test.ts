import assert from "node:assert/strict";
import {
  CrossEntropy,
  type CrossEntropyVariant,
  Gpu,
  HeadLoss,
  Matmul,
  type MatmulVariant,
  Rng,
} from "../../mod.ts";
import { assertClose, centralDiff, gpu, poisoned, randn, release, upload } from "../helpers.ts";
import { crossEntropyBackward, crossEntropyForward } from "../ref/crossentropy.ts";
import { tiedBackwardRef, tiedForwardRef } from "../ref/matmul.ts";

const IGNORE = -100;

/** Targets in [0, V), a quarter of them ignored (row 0 never is), the last vocabulary id once. */
function targetsFor(rng: Rng, M: number, V: number): Int32Array {
  const t = new Int32Array(M);
  for (let r = 0; r < M; r++) t[r] = r > 0 && rng.float() < 0.25 ? IGNORE : rng.int(V);
  t[0] = V - 1; // in the last, partial chunk
  return t;
}

/**
 * Float64 reference through the plain references: logits = x·Wᵀ, the cross-entropy's losses and
 * dlogits, then dx = dlogits·W and dW = dlogitsᵀ·x.
 */
function reference(
  x: Float64Array,
  W: Float64Array,
  targets: Int32Array,
  M: number,
  C: number,
  V: number,
  scale: number,
) {
  const logits = tiedForwardRef(x, W, M, C, V);
  const losses = crossEntropyForward(logits, targets, M, V);
  const dlogits = crossEntropyBackward(logits, targets, M, V, scale);
  const { dx, dWte } = tiedBackwardRef(x, W, dlogits, M, C, V);
  return { losses, dx, dW: dWte };
}

/**
 * Tolerances. Each f32 logit is a C-term dot product, off by at most about C·2⁻²⁴·Σ|x·W| (here
 * x ~ N(0,1), W ~ N(0, 0.3²): under 1e-5 for C ≤ 33). The loss adds the log-sum-exp's rounding
 * (its sum of V terms, chunk by chunk, relative 2⁻²⁴ per addition on any path: under 1e-5) to
 * twice the logit error: atol 5e-5 + rtol 1e-5. The gradient's softmax inherits the logits'
 * absolute error as a relative one (e^(x+δ) = e^x(1+δ)) and dx, dW sum V or M such terms: rtol
 * 1e-4 with atol 1e-5 of the largest reference value (for sums that cancel). A chunk missed or
 * counted twice would be off by O(1).
 */
const LOSS_TOL = { rtol: 1e-5, atol: 5e-5 };
function gradTol(ref: Float64Array) {
  return { rtol: 1e-4, atol: 1e-5 * ref.reduce((a, v) => Math.max(a, Math.abs(v)), 0) };
}

interface Case {
  M: number;
  C: number;
  V: number;
  Vc: number;
}

/** Runs forward + backward on `g` and returns losses, dx, dW (null when frozen). */
async function run(
  g: Gpu,
  head: HeadLoss,
  { M, C, V, Vc }: Case,
  host: { x: Float64Array; W: Float64Array; dW0: Float64Array; targets: Int32Array },
  frozen: boolean,
  scale: number,
) {
  const t = {
    x: upload(g, [M, C], host.x, "x"),
    weight: upload(g, [V, C], host.W, "W"),
    targets: g.tensor([M], host.targets, "targets"),
    losses: poisoned(g, [M], "losses"),
    stats: poisoned(g, [M, 3], "stats"),
    scratch: poisoned(g, [M, Vc], "scratch"),
  };
  const dx = poisoned(g, [M, C], "dx");
  const dW = frozen ? null : upload(g, [V, C], host.dW0, "dW");
  const batch = g.batch();
  head.forward(batch, t);
  head.backward(batch, t, { dx, dW }, scale);
  await batch.submit();
  const [losses, gdx, gdW] = await g.read([t.losses, dx, dW ?? dx]);
  release(...Object.values(t), dx, ...(dW ? [dW] : []));
  return { losses, dx: gdx, dW: frozen ? null : gdW };
}

function hostData(c: Case, seed: number) {
  const rng = new Rng(seed);
  return {
    x: randn(rng, c.M * c.C),
    W: randn(rng, c.V * c.C, 0.3),
    dW0: randn(rng, c.V * c.C, 0.1),
    targets: targetsFor(rng, c.M, c.V),
  };
}

// V is never a multiple of Vc except in the one-chunk case (Vc = V).
const CASES: Case[] = [
  { M: 7, C: 33, V: 97, Vc: 32 }, // 32 + 32 + 32 + 1
  { M: 13, C: 24, V: 67, Vc: 20 }, // 20 + 20 + 20 + 7
  { M: 33, C: 5, V: 300, Vc: 64 },
  { M: 5, C: 8, V: 52, Vc: 52 }, // one chunk
  { M: 1, C: 1, V: 9, Vc: 4 },
];
const MATMULS: MatmulVariant[] = ["texture", "software", "hardware"];

for (const ceVariant of ["rows", "workgroup"] as CrossEntropyVariant[]) {
  for (const mmVariant of MATMULS) {
    for (const c of CASES) {
      Deno.test(`HeadLoss matches the float64 reference for M=${c.M} C=${c.C} V=${c.V} in chunks of ${c.Vc} (${ceVariant} cross-entropy, ${mmVariant} matmul)`, async () => {
        const g = await gpu();
        const head = new HeadLoss(
          g,
          await Matmul.create(g, { variant: mmVariant }),
          await CrossEntropy.create(g, { variant: ceVariant }),
        );
        const host = hostData(c, c.M * 31 + c.V);
        const scale = CrossEntropy.meanScale(host.targets, c.V);
        const ref = reference(host.x, host.W, host.targets, c.M, c.C, c.V, scale);
        for (const frozen of [false, true]) {
          const out = await run(g, head, c, host, frozen, scale);
          assertClose(out.losses, ref.losses, LOSS_TOL, "losses (0 for ignored rows)");
          for (let r = 0; r < c.M; r++) {
            if (host.targets[r] === IGNORE) assert.equal(out.losses[r], 0, `ignored row ${r}`);
          }
          assertClose(out.dx, ref.dx, gradTol(ref.dx), "dx");
          if (!frozen) {
            const expected = host.dW0.map((v, i) => v + ref.dW[i]);
            assertClose(out.dW!, expected, gradTol(ref.dW), "dW (accumulated)");
          }
        }
      });
    }
  }
}

Deno.test("HeadLoss gives zero losses and gradients when every target is ignored, and NaN rows for a bad target", async () => {
  const g = await gpu();
  const head = new HeadLoss(g, await Matmul.create(g), await CrossEntropy.create(g));
  const c = { M: 4, C: 6, V: 23, Vc: 8 };
  const host = hostData(c, 5);
  host.targets.fill(IGNORE);
  const none = await run(g, head, c, host, false, CrossEntropy.meanScale(host.targets, c.V));
  assert.deepEqual([...none.losses], [0, 0, 0, 0]);
  assert.deepEqual([...none.dx], new Array(c.M * c.C).fill(0));
  assert.deepEqual(none.dW, Float32Array.from(host.dW0), "dW unchanged");
  // Row 1's target is out of range (the CPU check, meanScale, is skipped on purpose).
  host.targets.set([3, c.V, IGNORE, 22]);
  const bad = await run(g, head, c, host, true, 0.5);
  assert.ok(Number.isNaN(bad.losses[1]), "the bad row's loss is NaN");
  assert.ok(bad.dx.slice(c.C, 2 * c.C).every(Number.isNaN), "so is its input gradient");
  assert.ok([0, 2, 3].every((r) => Number.isFinite(bad.losses[r])), "other rows are unaffected");
  assert.ok(bad.dx.slice(0, c.C).every(Number.isFinite));
});

Deno.test("HeadLoss binds a W over the storage-binding limit as views of its chunks, bit for bit as with offsets", async () => {
  // W (701, 36) is 100,944 bytes; a forced 64 KiB limit makes it a chunked tensor.
  const c = { M: 9, C: 36, V: 701, Vc: 0 };
  const host = hostData(c, 17);
  const scale = CrossEntropy.meanScale(host.targets, c.V);
  const small = await Gpu.create({ maxBindingBytes: 65536 });
  try {
    const budget = 4096; // a small scratch: many chunks
    c.Vc = HeadLoss.chunkColumns(small, c.M, c.V, c.C, budget);
    assert.ok(c.Vc < c.V && c.V % c.Vc !== 0 && c.Vc % 4 === 0, `Vc ${c.Vc}`);
    const chunked = await run(
      small,
      new HeadLoss(small, await Matmul.create(small), await CrossEntropy.create(small)),
      c,
      host,
      false,
      scale,
    );
    const shared = await gpu();
    const whole = await run(
      shared,
      new HeadLoss(shared, await Matmul.create(shared), await CrossEntropy.create(shared)),
      c,
      host,
      false,
      scale,
    );
    assert.deepEqual(chunked, whole);
    const ref = reference(host.x, host.W, host.targets, c.M, c.C, c.V, scale);
    assertClose(chunked.losses, ref.losses, LOSS_TOL, "losses");
    assertClose(chunked.dx, ref.dx, gradTol(ref.dx), "dx");
  } finally {
    small.destroy();
  }
});

Deno.test("HeadLoss.chunkColumns() takes V when the logits fit the budget, else aligned chunks that fit", async () => {
  const g = await gpu();
  assert.equal(HeadLoss.chunkColumns(g, 2048, 256, 128, 32 << 20), 256);
  // GPT-2 small at 2,048 tokens: 411 MB of logits; a 32 MiB scratch holds 4,096 columns, so 13
  // chunks of 3,868 (the last overlapping the one before by 27).
  assert.equal(HeadLoss.chunkColumns(g, 2048, 50257, 768, 32 << 20), 3868);
  const small = await Gpu.create({ maxBindingBytes: 65536 });
  try {
    // W (1000, 36) is over 64 KiB: chunked even though the logits fit.
    const vc = HeadLoss.chunkColumns(small, 2, 1000, 36, 1 << 20);
    assert.ok(vc < 1000 && vc % 4 === 0 && vc * 144 + small.offsetAlignment <= 65536);
    assert.throws(
      () => HeadLoss.chunkColumns(small, 5000, 1000, 36, 1 << 20),
      /Cannot chunk the LM head: 4 vocabulary rows of 5000 logits/,
    );
  } finally {
    small.destroy();
  }
});

Deno.test("the head + loss reference's dx and dW match central finite differences of its mean loss", () => {
  const c = { M: 4, C: 5, V: 11, Vc: 4 };
  const host = hostData(c, 8);
  const scale = CrossEntropy.meanScale(host.targets, c.V);
  const ref = reference(host.x, host.W, host.targets, c.M, c.C, c.V, scale);
  const loss = () =>
    scale * reference(host.x, host.W, host.targets, c.M, c.C, c.V, scale).losses.reduce(
      (a, b) => a + b,
      0,
    );
  const rng = new Rng(2);
  for (const [name, param, grad] of [["x", host.x, ref.dx], ["W", host.W, ref.dW]] as const) {
    for (let s = 0; s < 6; s++) {
      const i = rng.int(param.length);
      const fd = centralDiff(loss, param, i, 1e-5);
      assert.ok(
        Math.abs(fd - grad[i]) <= 1e-7 + 1e-5 * Math.abs(grad[i]),
        `${name}[${i}]: analytic ${grad[i]}, finite difference ${fd}`,
      );
    }
  }
});
