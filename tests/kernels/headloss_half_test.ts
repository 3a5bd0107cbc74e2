/**
 * HeadLoss (the chunked LM head + cross-entropy, kernels/headloss.ts) over a frozen W stored as
 * packed halves: losses and dx against the float64 reference on the *rounded* W, in vocabulary
 * chunks, and with W over a forced small storage-binding limit (bound as half views of its chunks).
 */
import assert from "node:assert/strict";
import {
  CrossEntropy,
  Gpu,
  type HalfDtype,
  HeadLoss,
  Matmul,
  type MatmulVariant,
  Rng,
} from "../../mod.ts";
import { assertClose, gpu, poisoned, randn, release, upload } from "../helpers.ts";
import { crossEntropyBackward, crossEntropyForward } from "../ref/crossentropy.ts";
import { roundAllRef } from "../ref/half.ts";
import { tiedBackwardRef, tiedForwardRef } from "../ref/matmul.ts";

// Tolerances as in headloss_test.ts (the rounded W is widened exactly, so the f32 error analysis
// there holds unchanged): the loss within 5e-5 + 1e-5 relative (twice a C-term logit's rounding
// plus the log-sum-exp's), dx within 1e-4 relative plus 1e-5 of its largest value.
const LOSS_TOL = { rtol: 1e-5, atol: 5e-5 };
const gradTol = (ref: Float64Array) => ({
  rtol: 1e-4,
  atol: 1e-5 * ref.reduce((a, v) => Math.max(a, Math.abs(v)), 0),
});

function reference(
  x: Float64Array,
  W: Float64Array,
  tg: Int32Array,
  M: number,
  C: number,
  V: number,
  scale: number,
) {
  const logits = tiedForwardRef(x, W, M, C, V);
  const losses = crossEntropyForward(logits, tg, M, V);
  const dlogits = crossEntropyBackward(logits, tg, M, V, scale);
  return { losses, dx: tiedBackwardRef(x, W, dlogits, M, C, V).dx };
}

async function run(
  g: Gpu,
  variant: MatmulVariant,
  dtype: HalfDtype,
  M: number,
  C: number,
  V: number,
  budget: number,
  seed: number,
) {
  const rng = new Rng(seed);
  const x = randn(rng, M * C), W = randn(rng, V * C, 0.3);
  const tg = new Int32Array(M).map((_, r) => r > 0 && rng.float() < 0.25 ? -100 : rng.int(V));
  tg[0] = V - 1;
  const scale = CrossEntropy.meanScale(tg, V);
  const Vc = HeadLoss.chunkColumns(g, M, V, C, budget);
  const head = new HeadLoss(
    g,
    await Matmul.create(g, { variant, halfB: [dtype] }),
    await CrossEntropy.create(g),
  );
  const t = {
    x: upload(g, [M, C], x, "x"),
    weight: g.tensor([V, C], Float32Array.from(W), "W", dtype),
    targets: g.tensor([M], tg, "targets"),
    losses: poisoned(g, [M], "losses"),
    stats: poisoned(g, [M, 3], "stats"),
    scratch: poisoned(g, [M, Vc], "scratch"),
  };
  const dx = poisoned(g, [M, C], "dx");
  const batch = g.batch();
  head.forward(batch, t);
  head.backward(batch, t, { dx, dW: null }, scale);
  await batch.submit();
  const [losses, gdx] = await g.read([t.losses, dx]);
  release(...Object.values(t), dx);
  return { losses, dx: gdx, Vc, ref: reference(x, roundAllRef(W, dtype), tg, M, C, V, scale) };
}

for (const dtype of ["f16", "bf16"] as HalfDtype[]) {
  // The software variant reads a half B the same way as in matmul_half_test.ts (its pipelines are
  // slow to compile here); texture is the CPU default, hardware the GPU one.
  for (const variant of ["texture", "hardware"] as MatmulVariant[]) {
    Deno.test(`HeadLoss over a ${dtype} W matches the reference on the rounded W in vocabulary chunks (${variant} matmul)`, async () => {
      const g = await gpu();
      for (
        const [M, C, V, budget] of [[7, 33, 97, 7 * 32 * 4], [13, 24, 67, 13 * 20 * 4], [
          5,
          8,
          52,
          1 << 20,
        ]]
      ) {
        const r = await run(g, variant, dtype, M, C, V, budget, M + V);
        assertClose(r.losses, r.ref.losses, LOSS_TOL, `losses M=${M} V=${V} Vc=${r.Vc}`);
        assertClose(r.dx, r.ref.dx, gradTol(r.ref.dx), `dx M=${M} V=${V} Vc=${r.Vc}`);
      }
    });
  }
  Deno.test(`HeadLoss binds a ${dtype} W over the storage-binding limit as half views of its chunks, bit for bit as unchunked`, async () => {
    // W (701, 36) in halves is 50,472 bytes; a forced 32 KiB limit makes it a chunked tensor.
    const [M, C, V] = [9, 36, 701];
    const small = await Gpu.create({ maxBindingBytes: 32768 });
    try {
      const chunked = await run(small, "texture", dtype, M, C, V, 4096, 17);
      assert.ok(chunked.Vc < V && V % chunked.Vc !== 0, `Vc ${chunked.Vc}`);
      const shared = await gpu();
      // The same chunk width on the shared device (its budget alone sets Vc there).
      const whole = await run(shared, "texture", dtype, M, C, V, 4096, 17);
      assert.equal(whole.Vc, chunked.Vc);
      assert.deepEqual([chunked.losses, chunked.dx], [whole.losses, whole.dx]);
      assertClose(chunked.losses, chunked.ref.losses, LOSS_TOL, "losses");
      assertClose(chunked.dx, chunked.ref.dx, gradTol(chunked.ref.dx), "dx");
    } finally {
      small.destroy();
    }
  });
}
