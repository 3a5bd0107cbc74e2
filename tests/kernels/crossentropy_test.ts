import assert from "node:assert/strict";
import { CrossEntropy, type CrossEntropyVariant, Rng } from "../../mod.ts";
import { assertClose, centralDiff, gpu, poisoned, randn, release, upload } from "../helpers.ts";
import {
  crossEntropyBackward,
  crossEntropyForward,
  crossEntropyMean,
} from "../ref/crossentropy.ts";

const IGNORE = -100;

/** Targets in [0, V), about a quarter of them ignored (row 0 never is, so the scale is finite). */
function randomTargets(rng: Rng, N: number, V: number): Int32Array {
  const t = new Int32Array(N);
  for (let r = 0; r < N; r++) t[r] = r > 0 && rng.float() < 0.25 ? IGNORE : rng.int(V);
  return t;
}

/**
 * Tolerances. The loss is mx + log(Σ exp(x − mx)) − x_t in f32: the sum of up to V terms carries a
 * relative error of about (V/256 + 8)·2⁻²⁴ (each invocation adds V/256 terms, then an 8-level
 * tree), which log turns into an absolute error; the additions at the logits' magnitude m lose a
 * few ulps of m. So atol = 1e-5 + 4·ulp(m), rtol 1e-6. The gradient (softmax − onehot)·scale has
 * the relative error of exp(x − mx)/sum (a few ulps plus the sum's error): rtol 2e-5 with atol
 * 1e-6·scale for elements that cancel (the target's p − 1 ≈ 0 when p ≈ 1).
 */
function tolerances(logits: Float64Array, scale: number) {
  const m = logits.reduce((a, x) => Math.max(a, Math.abs(x)), 0);
  return {
    loss: { rtol: 1e-6, atol: 1e-5 + 4 * m * 2 ** -23 },
    grad: { rtol: 2e-5, atol: 1e-6 * scale },
  };
}

const SHAPES = [[1, 1, 0], [7, 7, 0], [33, 97, 0], [97, 300, 0], [7, 300, 1000], [1, 50257, 0], [
  2,
  50257,
  30,
]];
// The rows variant (one invocation per row, vec4) needs V % 4 = 0; it runs on these shapes too,
// and the workgroup variant on the ones the default gives the rows variant here.
const CASES: [number, number, number, CrossEntropyVariant][] = [
  ...SHAPES.map(([N, V, offset]) => [N, V, offset, "auto"] as [number, number, number, "auto"]),
  ...[[1, 4, 0], [33, 8, 0], [97, 300, 0], [7, 256, 1000], [65, 1024, 0]].flatMap((
    [N, V, offset],
  ) =>
    (["rows", "workgroup"] as const).map((v) =>
      [N, V, offset, v] as [number, number, number, CrossEntropyVariant]
    )
  ),
];
for (const [N, V, offset, variant] of CASES) {
  for (const mode of ["separate dlogits", "in place", "loss only"] as const) {
    const which = variant === "auto" ? "" : ` (${variant} variant)`;
    Deno.test(`CrossEntropy.forward()${which} matches the reference for N=${N} V=${V} logits offset ${offset}, ${mode}`, async () => {
      const g = await gpu();
      const k = await CrossEntropy.create(g, { variant });
      const rng = new Rng(N * 7 + V);
      // N(0, 3²) logits shifted by `offset`: a shift of 1000 overflows exp unless the max is subtracted.
      const logits = randn(rng, N * V, 3).map((x) => Math.fround(x + offset));
      const targets = randomTargets(rng, N, V);
      const scale = CrossEntropy.meanScale(targets, V);
      const tlogits = upload(g, [N, V], logits, "logits");
      const ttargets = g.tensor([N], targets, "targets");
      const tlosses = poisoned(g, [N], "losses");
      const tdlogits = mode === "separate dlogits" ? poisoned(g, [N, V], "dlogits") : null;
      const batch = g.batch();
      k.forward(batch, tlogits, ttargets, tlosses, mode === "in place" ? tlogits : tdlogits, scale);
      await batch.submit();
      const [losses, grads] = await g.read([tlosses, tdlogits ?? tlogits]);
      const tol = tolerances(logits, scale);
      assertClose(
        losses,
        crossEntropyForward(logits, targets, N, V),
        tol.loss,
        "losses (0 for ignored rows)",
      );
      if (mode === "loss only") {
        assertClose(grads, logits, { rtol: 0, atol: 0 }, "logits (unchanged)");
      } else {
        assertClose(
          grads,
          crossEntropyBackward(logits, targets, N, V, scale),
          tol.grad,
          "dlogits (0 rows for ignored rows)",
        );
      }
      release(tlogits, ttargets, tlosses, ...(tdlogits ? [tdlogits] : []));
    });
  }
}

Deno.test("CrossEntropy picks the rows variant on a software adapter only where V allows it", async () => {
  const g = await gpu();
  const k = await CrossEntropy.create(g);
  assert.equal(k.variantFor(50257), "workgroup");
  assert.equal(k.variantFor(256), g.isSoftware ? "rows" : "workgroup");
  assert.equal(k.variantFor(90_000), "workgroup"); // 3·(V/4 + 1) + 128 is over the loop cap
  const rows = await CrossEntropy.create(g, { variant: "rows" });
  assert.throws(() => rows.variantFor(7), /\(rows variant\)": V=7 is not a multiple of 4/);
  assert.throws(() => rows.variantFor(90_000), /\(rows variant\)": a row of V=90000 logits needs/);
});

Deno.test("CrossEntropy.forward() writes zero losses and gradients when every target is ignored", async () => {
  const g = await gpu();
  const k = await CrossEntropy.create(g);
  const [N, V] = [3, 5];
  const targets = new Int32Array(N).fill(IGNORE);
  const scale = CrossEntropy.meanScale(targets, V);
  assert.equal(scale, 0);
  const tlogits = upload(g, [N, V], randn(new Rng(1), N * V), "logits");
  const ttargets = g.tensor([N], targets, "targets");
  const tlosses = poisoned(g, [N], "losses"), tdlogits = poisoned(g, [N, V], "dlogits");
  const batch = g.batch();
  k.forward(batch, tlogits, ttargets, tlosses, tdlogits, scale);
  await batch.submit();
  const [losses, grads] = await g.read([tlosses, tdlogits]);
  assertClose(losses, new Float64Array(N), { rtol: 0, atol: 0 }, "losses");
  assertClose(grads, new Float64Array(N * V), { rtol: 0, atol: 0 }, "dlogits");
  release(tlogits, ttargets, tlosses, tdlogits);
});

Deno.test("CrossEntropy.meanScale() counts targets not ignored and rejects an out-of-range target naming its row", () => {
  assert.equal(CrossEntropy.meanScale([0, IGNORE, 4, 2], 5), 1 / 3);
  assert.throws(
    () => CrossEntropy.meanScale([0, 1, 5], 5),
    /Cannot use target 5 at row 2: targets must be in 0\.\.4 or -100/,
  );
  assert.throws(() => CrossEntropy.meanScale([-1], 5), /target -1 at row 0/);
});

Deno.test("CrossEntropy.forward() gives NaN for a row whose target it finds out of range", async () => {
  const g = await gpu();
  const k = await CrossEntropy.create(g);
  const [N, V] = [2, 4];
  const tlogits = upload(g, [N, V], randn(new Rng(2), N * V), "logits");
  const ttargets = g.tensor([N], new Int32Array([1, 4]), "targets"); // 4 skipped the CPU check
  const tlosses = poisoned(g, [N], "losses"), tdlogits = poisoned(g, [N, V], "dlogits");
  const batch = g.batch();
  k.forward(batch, tlogits, ttargets, tlosses, tdlogits, 0.5);
  await batch.submit();
  const [losses, grads] = await g.read([tlosses, tdlogits]);
  assert.ok(
    Number.isFinite(losses[0]) && grads.slice(0, V).every(Number.isFinite),
    "row 0 is valid",
  );
  assert.ok(Number.isNaN(losses[1]) && grads.slice(V).every(Number.isNaN), "row 1 is NaN");
  release(tlogits, ttargets, tlosses, tdlogits);
});

Deno.test("CrossEntropy.forward() rejects bad shapes naming the tensor", async () => {
  const g = await gpu();
  const k = await CrossEntropy.create(g);
  const [N, V] = [3, 5];
  const logits = g.tensor([N, V], undefined, "logits"), flat = g.tensor([N * V], undefined, "flat");
  const targets = g.tensor([N], new Int32Array(N), "targets"),
    shortTargets = g.tensor([N - 1], new Int32Array(N - 1), "t2");
  const losses = g.tensor([N], undefined, "losses"),
    dlogits = g.tensor([N, V - 1], undefined, "dlogits");
  const b = g.batch();
  assert.throws(
    () => k.forward(b, flat, targets, losses, null, 1),
    /"flat" has shape \[15\], expected \(N, V\)/,
  );
  assert.throws(
    () => k.forward(b, logits, shortTargets, losses, null, 1),
    /"t2" \(targets, \(N\)\) has 2 elements, expected 3/,
  );
  assert.throws(
    () => k.forward(b, logits, targets, losses, dlogits, 1),
    /"dlogits" \(dlogits, \(N, V\)\) has 12 elements, expected 15/,
  );
  release(logits, flat, targets, shortTargets, losses, dlogits);
});

Deno.test("cross-entropy reference backward matches central finite differences of the mean loss", () => {
  const rng = new Rng(4);
  const [N, V] = [4, 5];
  const logits = randn(rng, N * V, 2);
  const targets = [3, IGNORE, 0, 4];
  const scale = 1 / 3;
  const d = crossEntropyBackward(logits, targets, N, V, scale);
  const fd = Array.from(
    logits,
    (_, i) => centralDiff((x) => crossEntropyMean(x, targets, N, V, scale), logits, i),
  );
  assertClose(d, fd, { rtol: 1e-6, atol: 1e-8 }, "dL/dlogits");
});
