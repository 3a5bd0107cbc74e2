import assert from "node:assert/strict";
import { Attention, Rng } from "../../mod.ts";
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
  attentionBackward,
  attentionDropFactors,
  attentionForward,
  type DropoutSpec,
} from "../ref/attention.ts";

// f32 against float64 with unit-normal inputs: each score is an f32 dot product over hs terms
// (error ~ √hs·2⁻²⁴ of Σ|q·k|), softmax adds exp and a normalisation (a few ulps), and out/dq/dk/dv
// are f32 sums over up to T terms of magnitude ~1 that can cancel towards 0, so the error is absolute
// rather than relative. Measured max errors on lavapipe: ≤ 1.8e-6 for T ≤ 97, 3.9e-6 at T = 1024
// (values up to ~5); atol = rtol = 2e-5 leaves ≥ 5× headroom, while an indexing or masking error
// is off by O(0.1). With grouped-query heads dk and dv sum the terms of g query heads (g ≤ 3
// here), g times as many: measured ≤ 7e-7·(1 + |value|) on every variant over all 27
// (H,kvHeads) × hs × T combinations of the GQA shapes below, so the same tolerance holds.
const TOL = { rtol: 2e-5, atol: 2e-5 };

type Variant = "workgroup" | "rows" | "gemm";

interface Run {
  out: Float32Array;
  att: Float32Array;
  dqkv: Float32Array;
}

/**
 * A shape (B,T,C,H) or (B,T,C,H,kvHeads): C = H·hs is the width of q and out; kvHeads defaults
 * to H (multi-head).
 */
type Shape = number[];

/** The width W = (H + 2·kvHeads)·hs of a qkv row. */
function qkvWidth([, , C, H, kvHeads = H]: Shape): number {
  return C + 2 * kvHeads * (C / H);
}

/**
 * Runs forward then backward on the GPU with every output (and the scratch) poisoned with NaN;
 * with `dropout`, the same p and seed in both, and a poisoned dropout scratch.
 */
async function runGpu(
  variant: Variant,
  qkv: Float64Array,
  dout: Float64Array,
  shape: Shape,
  dropout?: DropoutSpec,
): Promise<Run> {
  const [B, T, C, H, kvHeads = H] = shape, W = qkvWidth(shape);
  const g = await gpu();
  const k = await Attention.create(g, { variant });
  const tqkv = upload(g, [B, T, W], qkv, "qkv"), tdout = upload(g, [B, T, C], dout, "dout");
  const tout = poisoned(g, [B, T, C], "out");
  const tatt = poisoned(g, Attention.scratchShape(B, T, H), "att");
  const tdatt = poisoned(g, Attention.scratchShape(B, T, H), "datt");
  const tdqkv = poisoned(g, [B, T, W], "dqkv");
  const scratch = poisoned(g, Attention.scratchShape(B, T, H), "dropout.scratch");
  const batch = g.batch();
  k.forward(batch, tqkv, tout, tatt, B, T, C, H, kvHeads, dropout && { ...dropout, scratch });
  k.backward(batch, tdout, tqkv, tatt, tdatt, tdqkv, B, T, C, H, kvHeads, dropout);
  await batch.submit();
  const [out, att, dqkv] = await g.read([tout, tatt, tdqkv]);
  release(tqkv, tdout, tout, tatt, tdatt, tdqkv, scratch);
  return { out, att, dqkv };
}

async function checkAgainstReference(
  variant: Variant,
  shape: Shape,
  seed: number,
  dropout?: DropoutSpec,
): Promise<void> {
  const [B, T, C, H, kvHeads = H] = shape;
  const rng = new Rng(seed);
  const qkv = randn(rng, B * T * qkvWidth(shape)), dout = randn(rng, B * T * C);
  const got = await runGpu(variant, qkv, dout, shape, dropout);
  const ref = attentionForward(qkv, B, T, C, H, kvHeads, dropout);
  assertClose(got.out, ref.out, TOL, "out");
  assertClose(got.att, ref.att, TOL, "att");
  assertClose(
    got.dqkv,
    attentionBackward(dout, qkv, ref.att, B, T, C, H, kvHeads, dropout),
    TOL,
    "dqkv",
  );
}

/** The variants that accept a shape: rows needs hs to be a multiple of 4. */
function variantsFor([, , C, H]: Shape): Variant[] {
  return (C / H) % 4 === 0 ? ["workgroup", "rows", "gemm"] : ["workgroup", "gemm"];
}

const SHAPES: [number[], string][] = [
  [[1, 1, 4, 1], "a single token"],
  [[2, 7, 12, 3], "hs=4"],
  [[1, 33, 20, 4], "hs=5"],
  [[2, 97, 24, 2], "hs=12"],
  [[1, 70, 6, 6], "hs=1, T over one workgroup's 64 keys"],
  // hs = 128: each workgroup thread owns two channels; the rows variant holds 32 vec4 per vector.
  [[2, 130, 256, 2], "hs=128"],
  // A naive kernel looping over one query row's keys and channels (T·hs = 65,536) would pass
  // Mesa's 65,535-iteration cap and silently stop early; every row is compared.
  [[1, 1024, 64, 1], "a GPT-2-small row, T=1024, hs=64"],
];

// Grouped-query and multi-query heads: each (H, kvHeads) meets each head size hs (5, 8, 12) and
// each T (1, 7, 33) once (a Latin square); then a large group and a large head.
SHAPES.push(
  [[1, 20, 32, 8, 1], "multi-query, g=8"],
  // Each workgroup thread owns two channels of dk and dv; the key column spans two strides of 64.
  [[2, 70, 256, 2, 1], "multi-query, hs=128, T over one workgroup's 64 keys"],
);
const HEAD_GROUPS: [number, number, string][] = [
  [4, 2, "grouped-query, g=2"],
  [3, 1, "multi-query, g=3"],
  [6, 3, "grouped-query, g=2 over 3 kv heads"],
];
const HEAD_SIZES = [5, 8, 12], LENGTHS = [1, 7, 33];
HEAD_GROUPS.forEach(([H, kvHeads, what], i) => {
  HEAD_SIZES.forEach((hs, j) => {
    const T = LENGTHS[(i + j) % 3];
    SHAPES.push([[T === 1 ? 3 : 2, T, H * hs, H, kvHeads], `${what}, hs=${hs}`]);
  });
});

for (const [shape, why] of SHAPES) {
  for (const variant of variantsFor(shape)) {
    Deno.test(
      `\`Attention.forward()\` and \`backward()\` (${variant}) match the reference for ` +
        `(B,T,C,H${shape.length > 4 ? ",kvHeads" : ""})=(${shape.join(",")}): ${why}`,
      () => checkAgainstReference(variant, shape, shape[0] * 1000 + shape[1]),
    );
  }
}

// Attention-probability dropout on every shape and variant: GPT-2's p = 0.1 and a heavy p = 0.5
// in turn. The kept probabilities are scaled by up to 2 and dL/d prob with them, one more f32
// rounding each: measured max error ≤ 2.0e-6·(1 + |value|) on every variant over all these shapes
// at p = 0.1 and 0.5, so TOL keeps ≥ 10× headroom, while a mask differing from the reference at
// one element is off by a whole probability times v, O(0.01–1).
SHAPES.forEach(([shape, why], i) => {
  const dropout = { p: i % 2 ? 0.5 : 0.1, seed: 1000 + i };
  for (const variant of variantsFor(shape)) {
    Deno.test(
      `\`Attention.forward()\` and \`backward()\` (${variant}) with dropout p=${dropout.p} match the ` +
        `reference for (B,T,C,H${shape.length > 4 ? ",kvHeads" : ""})=(${shape.join(",")}): ${why}`,
      () => checkAgainstReference(variant, shape, shape[0] * 1000 + shape[1], dropout),
    );
  }
});

for (const variant of ["workgroup", "rows", "gemm"] as const) {
  Deno.test(`\`Attention\` (${variant}) with dropout p = 0 is bit-identical to no dropout, and a scratch is not needed`, async () => {
    const shape = [2, 9, 16, 4, 2], [B, T, C] = shape;
    const rng = new Rng(21);
    const qkv = randn(rng, B * T * qkvWidth(shape)), dout = randn(rng, B * T * C);
    const plain = await runGpu(variant, qkv, dout, shape);
    const zero = await runGpu(variant, qkv, dout, shape, { p: 0, seed: 99 });
    assert.deepEqual(zero, plain);
    // The same dispatches as without dropout (no scratch given).
    const g = await gpu();
    const k = await Attention.create(g, { variant });
    const t = g.tensor([B, T, qkvWidth(shape)], undefined, "qkv"), out = g.tensor([B, T, C]);
    const dt = g.tensor([B, T, qkvWidth(shape)], undefined, "dqkv");
    const att = g.tensor(Attention.scratchShape(B, T, 4));
    const datt = g.tensor(Attention.scratchShape(B, T, 4));
    const [withZero, without] = [g.batch(), g.batch()];
    k.forward(withZero, t, out, att, B, T, C, 4, 2, { p: 0, seed: 99 });
    k.backward(withZero, out, t, att, datt, dt, B, T, C, 4, 2, { p: 0, seed: 99 });
    k.forward(without, t, out, att, B, T, C, 4, 2);
    k.backward(without, out, t, att, datt, dt, B, T, C, 4, 2);
    assert.equal(withZero.length, without.length, "dispatches");
    release(t, out, dt, att, datt);
  });
}

/**
 * The dropped probabilities as forward and backward see them, read from the outputs of one
 * forward/backward on the GPU: with q = 0 every row is uniform (att[t, s] = 1/(t+1)); with T = hs
 * and v_s = e_s, out[b,t,h·hs + s] = drop(att)[b,h,t,s]; with dout[t] = e_t, dv_j[s] = Σ_h∈group
 * drop(att)[b,h,t=c,s] at channel c (one kv head per query head here, so no sum).
 */
async function gpuDropped(variant: Variant, B: number, T: number, H: number, dropout: DropoutSpec) {
  const C = H * T, W = 3 * C;
  const qkv = new Float64Array(B * T * W), dout = new Float64Array(B * T * C);
  for (let b = 0; b < B; b++) {
    for (let s = 0; s < T; s++) {
      for (let h = 0; h < H; h++) {
        qkv[(b * T + s) * W + 2 * C + h * T + s] = 1;
        dout[(b * T + s) * C + h * T + s] = 1;
      }
    }
  }
  const got = await runGpu(variant, qkv, dout, [B, T, C, H], dropout);
  const forward = new Float32Array(B * H * T * T), backward = new Float32Array(B * H * T * T);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let t = 0; t < T; t++) {
        for (let s = 0; s < T; s++) {
          const i = ((b * H + h) * T + t) * T + s;
          forward[i] = got.out[(b * T + t) * C + h * T + s];
          backward[i] = got.dqkv[(b * T + s) * W + 2 * C + h * T + t];
        }
      }
    }
  }
  return { forward, backward, att: got.att };
}

// (B,H,T) = (2,4,128): 8 · 128·129/2 = 66,048 causal probabilities. The kept count is
// Binomial(n, 1 − p), σ = √(n·p·(1 − p)) ≈ 77 at p = 0.1, 128 at p = 0.5; a 5σ bound fails by
// chance with probability < 6e-7, while a mask applied twice, or not at all, misses it by far.
for (const variant of ["workgroup", "rows", "gemm"] as const) {
  for (const p of [0.1, 0.5]) {
    Deno.test(`\`Attention\` (${variant}) dropout p=${p}: keeps 1 − p of the probabilities, forward and backward use the same mask, and it is the reference's`, async () => {
      const [B, H, T, seed] = [2, 4, 128, 31];
      const { forward, backward, att } = await gpuDropped(variant, B, T, H, { p, seed });
      const factors = attentionDropFactors(B * H * T * T, { p, seed });
      let kept = 0, n = 0;
      for (let b = 0; b < B; b++) {
        for (let h = 0; h < H; h++) {
          for (let t = 0; t < T; t++) {
            for (let s = 0; s < T; s++) {
              const i = ((b * H + h) * T + t) * T + s;
              // q = 0: the undropped probabilities are 1/(t+1) on the causal part, 0 above it.
              const want = s <= t ? Math.fround(1 / (t + 1)) : 0;
              assertClose([att[i]], [want], { rtol: 2e-7, atol: 0 }, `att[${i}]`);
              // One product att·scale rounded to f32: exact in forward and backward alike.
              const dropped = Math.fround(att[i] * factors[i]);
              if (forward[i] !== dropped || backward[i] !== dropped) {
                throw new Error(
                  `drop(att)[${i}] (b ${b}, h ${h}, t ${t}, s ${s}): forward ${forward[i]}, ` +
                    `backward ${backward[i]}, reference ${dropped}`,
                );
              }
              if (s <= t) {
                n++;
                if (forward[i] !== 0) kept++;
              }
            }
          }
        }
      }
      const sigma = Math.sqrt(n * p * (1 - p));
      assert.ok(
        Math.abs(kept - n * (1 - p)) <= 5 * sigma,
        `kept ${kept} of ${n}, expected ${n * (1 - p)} ± ${5 * sigma}`,
      );
      console.log(`  ${variant} p=${p}: kept ${kept} of ${n} = ${(kept / n).toFixed(4)}`);
    });
  }
}

// The largest T the wrapper gives the rows variant at hs = 128: its loop bound
// T·(hs/2 + 6) + hs/2 + 128 is 65,502 here. Had the bound undercounted (as an earlier one that left
// out Mesa's per-loop exit tests did, failing here at T = 977), Mesa would stop the last rows early.
Deno.test("`Attention` (rows) matches the reference just under the loop cap, (B,T,C,H)=(1,933,128,1)", () => {
  return checkAgainstReference("rows", [1, 933, 128, 1], 933);
});

for (
  const [variant, shape] of [
    ...(["workgroup", "rows", "gemm"] as const).map((v) => [v, [2, 9, 8, 2]] as const),
    ...(["workgroup", "rows", "gemm"] as const).map((v) => [v, [2, 9, 16, 4, 2]] as const),
  ]
) {
  Deno.test(`\`Attention.forward()\` (${variant}) is causal for (B,T,C,H[,kvHeads])=(${shape}): a later token's k and v leave earlier outputs unchanged`, async () => {
    const [B, T, C] = shape, W = qkvWidth([...shape]);
    const rng = new Rng(11);
    const qkv = randn(rng, B * T * W), dout = randn(rng, B * T * C);
    const changed = qkv.slice();
    const tChanged = 5;
    for (let b = 0; b < B; b++) {
      const row = (b * T + tChanged) * W;
      for (let c = C; c < W; c++) changed[row + c] += 1 + rng.normal();
    }
    const before = await runGpu(variant, qkv, dout, [...shape]);
    const after = await runGpu(variant, changed, dout, [...shape]);
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < T; t++) {
        const row = Array.from(before.out.subarray((b * T + t) * C, (b * T + t + 1) * C));
        const rowAfter = Array.from(after.out.subarray((b * T + t) * C, (b * T + t + 1) * C));
        if (t < tChanged) assert.deepEqual(rowAfter, row, `out[${b},${t}] changed`);
        else assert.notDeepEqual(rowAfter, row, `out[${b},${t}] did not change`);
      }
    }
  });
}

Deno.test("`Attention.variantFor()` picks rows only where the rows kernels fit, and forcing them elsewhere throws", async () => {
  const g = await gpu();
  const auto = await Attention.create(g);
  if (g.isSoftware) {
    // Software adapters run the batched-GEMM variant wherever B·H fits one GEMM's batch.
    assert.equal(auto.variantFor(128, 128, 4, 16), "gemm");
    assert.equal(auto.variantFor(33, 20, 4), "gemm");
  } else {
    assert.equal(auto.variantFor(934, 128, 1), "workgroup");
    assert.equal(auto.variantFor(33, 20, 4), "workgroup");
  }
  const gemm = await Attention.create(g, { variant: "gemm" });
  assert.equal(gemm.variantFor(33, 20, 4), "gemm");
  assert.throws(
    () => gemm.variantFor(8, 8, 2, 40_000),
    /gemm variant.*B·kvHeads=80000 heads exceed 65535/,
  );
  // Each GEMM is batched over (b, kv head) pairs, so fewer kv heads fit more sequences.
  assert.equal(gemm.variantFor(8, 8, 2, 40_000, 1), "gemm");
  const rows = await Attention.create(g, { variant: "rows" });
  assert.throws(() => rows.variantFor(934, 128, 1), /rows variant.*65,535|65535/);
  // The key pass loops over the g query heads of a group: 8·(512·18 + 2) + 144 = 73,888 > 65,535.
  assert.equal(rows.variantFor(512, 512, 8), "rows");
  assert.throws(() => rows.variantFor(512, 512, 8, 1, 1), /rows variant.*g=8/);
  assert.throws(() => rows.variantFor(33, 20, 4), /rows variant.*C\/H=5 is not a multiple of 4/);
  const workgroup = await Attention.create(g, { variant: "workgroup" });
  assert.equal(workgroup.variantFor(7, 12, 3), "workgroup");
});

for (
  const [B, T, C, H, kvHeads] of [[2, 4, 6, 2, 2], [2, 4, 12, 4, 2], [1, 5, 6, 3, 1]]
) {
  Deno.test(`attention reference backward matches central finite differences for (B,T,C,H,kvHeads)=(${[B, T, C, H, kvHeads]})`, () => {
    const rng = new Rng(5);
    const W = qkvWidth([B, T, C, H, kvHeads]);
    const qkv = randn(rng, B * T * W), w = randn(rng, B * T * C);
    const { att } = attentionForward(qkv, B, T, C, H, kvHeads);
    const dqkv = attentionBackward(w, qkv, att, B, T, C, H, kvHeads);
    // L = Σ out·w
    const loss = (x: Float64Array) => dot(attentionForward(x, B, T, C, H, kvHeads).out, w);
    const fd = Array.from(qkv, (_, i) => centralDiff(loss, qkv, i));
    assertClose(dqkv, fd, { rtol: 1e-6, atol: 1e-8 }, "dqkv vs finite differences");
    // k and v of token 0 in batch 0 reach every query of every head in the group, so their
    // gradients must be non-trivial.
    const largest = (from: number, to: number) =>
      Math.max(...Array.from(dqkv.subarray(from, to), Math.abs));
    const kv = kvHeads * (C / H);
    assert.ok(largest(C, C + kv) > 1e-3, "dk of token 0 is ~0: the check would be vacuous");
    assert.ok(largest(C + kv, W) > 1e-3, "dv of token 0 is ~0: the check would be vacuous");
  });
}

for (
  const [B, T, C, H, kvHeads, p] of [[2, 4, 6, 2, 2, 0.3], [2, 5, 12, 4, 2, 0.5], [
    1,
    6,
    6,
    3,
    1,
    0.1,
  ]]
) {
  Deno.test(`attention reference backward with dropout p=${p} matches central finite differences for (B,T,C,H,kvHeads)=(${[B, T, C, H, kvHeads]})`, () => {
    const rng = new Rng(15), dropout = { p, seed: 77 };
    const W = qkvWidth([B, T, C, H, kvHeads]);
    const qkv = randn(rng, B * T * W), w = randn(rng, B * T * C);
    const { att } = attentionForward(qkv, B, T, C, H, kvHeads, dropout);
    const dqkv = attentionBackward(w, qkv, att, B, T, C, H, kvHeads, dropout);
    // L = Σ out·w; the mask depends on the seed and the position only, so it is fixed.
    const loss = (x: Float64Array) => dot(attentionForward(x, B, T, C, H, kvHeads, dropout).out, w);
    const fd = Array.from(qkv, (_, i) => centralDiff(loss, qkv, i));
    assertClose(dqkv, fd, { rtol: 1e-6, atol: 1e-8 }, "dqkv vs finite differences");
    // The mask drops some and keeps some probabilities, and changes the gradient.
    const factors = attentionDropFactors(B * H * T * T, dropout);
    assert.ok(factors.includes(0) && factors.some((f) => f > 1), "the mask has both values");
    const undropped = attentionBackward(w, qkv, att, B, T, C, H, kvHeads);
    assert.ok(undropped.some((v, i) => Math.abs(v - dqkv[i]) > 1e-3), "dropout changes dqkv");
  });
}

Deno.test("attention reference with kvHeads < H is multi-head attention over repeat_kv-expanded keys and values", () => {
  // Hugging Face's repeat_kv copies kv head j to query heads j·g … j·g+g−1; the gradient of a
  // copied input is the sum of its copies' gradients.
  const [B, T, H, kvHeads, hs] = [2, 5, 6, 2, 3], g = H / kvHeads, C = H * hs;
  const W = C + 2 * kvHeads * hs;
  const rng = new Rng(8);
  const qkv = randn(rng, B * T * W), dout = randn(rng, B * T * C);
  const expanded = new Float64Array(B * T * 3 * C);
  for (let r = 0; r < B * T; r++) {
    for (let h = 0; h < H; h++) {
      const j = Math.floor(h / g);
      for (let d = 0; d < hs; d++) {
        expanded[r * 3 * C + h * hs + d] = qkv[r * W + h * hs + d];
        expanded[r * 3 * C + C + h * hs + d] = qkv[r * W + C + j * hs + d];
        expanded[r * 3 * C + 2 * C + h * hs + d] = qkv[r * W + C + (kvHeads + j) * hs + d];
      }
    }
  }
  const gqa = attentionForward(qkv, B, T, C, H, kvHeads),
    mha = attentionForward(expanded, B, T, C, H);
  assertClose(gqa.out, mha.out, { rtol: 0, atol: 0 }, "out");
  assertClose(gqa.att, mha.att, { rtol: 0, atol: 0 }, "att");
  const dGqa = attentionBackward(dout, qkv, gqa.att, B, T, C, H, kvHeads);
  const dMha = attentionBackward(dout, expanded, mha.att, B, T, C, H);
  const summed = new Float64Array(B * T * W);
  for (let r = 0; r < B * T; r++) {
    for (let h = 0; h < H; h++) {
      const j = Math.floor(h / g);
      for (let d = 0; d < hs; d++) {
        summed[r * W + h * hs + d] = dMha[r * 3 * C + h * hs + d];
        summed[r * W + C + j * hs + d] += dMha[r * 3 * C + C + h * hs + d];
        summed[r * W + C + (kvHeads + j) * hs + d] += dMha[r * 3 * C + 2 * C + h * hs + d];
      }
    }
  }
  // Sums of the same terms in another order: float64 rounding only.
  assertClose(dGqa, summed, { rtol: 1e-12, atol: 1e-14 }, "dqkv");
});

Deno.test("`Attention` rejects bad shapes with an error naming the tensor or dimension", async () => {
  const g = await gpu();
  const k = await Attention.create(g);
  const [B, T, C, H] = [1, 4, 8, 2];
  const qkv = g.tensor([B, T, 3 * C], undefined, "qkv"),
    short = g.tensor([B, T, C], undefined, "qkvShort");
  const out = g.tensor([B, T, C], undefined, "out"),
    att = g.tensor(Attention.scratchShape(B, T, H), undefined, "att");
  const dqkv = g.tensor([B, T, 3 * C], undefined, "dqkv"), tiny = g.tensor([3], undefined, "tiny");
  const batch = g.batch();
  assert.throws(
    () => k.forward(batch, short, out, att, B, T, C, H),
    /attention\.forward.*"qkvShort" \(qkv/,
  );
  assert.throws(() => k.forward(batch, qkv, out, tiny, B, T, C, H), /"tiny" \(att \(B,H,T,T\)/);
  assert.throws(() => k.backward(batch, out, qkv, att, tiny, dqkv, B, T, C, H), /"tiny" \(datt/);
  assert.throws(
    () => k.backward(batch, out, qkv, att, att, short, B, T, C, H),
    /"qkvShort" \(dqkv/,
  );
  assert.throws(
    () => k.forward(batch, qkv, out, att, B, T, C, 3),
    /C=8 is not divisible by the number of heads H=3/,
  );
  assert.throws(() => k.forward(batch, qkv, out, att, B, 1025, C, H), /T=1025 is over/);
  assert.throws(() => k.forward(batch, qkv, out, att, B, T, 258, 1), /head size C\/H=258 is over/);
  assert.throws(() => k.forward(batch, qkv, out, att, 0, T, C, H), /B must be a positive integer/);
  assert.throws(
    () => k.forward(batch, qkv, out, att, B, T, 12, 6, 4),
    /attention\.forward.*number of heads H=6 is not divisible by the number of key\/value heads kvHeads=4/,
  );
  assert.throws(
    () => k.backward(batch, out, qkv, att, att, dqkv, B, T, 12, 6, 4),
    /attention\.backward.*H=6 is not divisible by .*kvHeads=4/,
  );
  assert.throws(
    () => k.forward(batch, qkv, out, att, B, T, C, H, 0),
    /kvHeads must be a positive integer, got 0/,
  );
  // A qkv sized for one kv head (W = (2 + 2·1)·4 = 16) is too short for two (W = 24).
  const narrow = g.tensor([B, T, 16], undefined, "narrow");
  k.forward(g.batch(), narrow, out, att, B, T, C, H, 1);
  assert.throws(
    () => k.forward(batch, narrow, out, att, B, T, C, H, 2),
    /"narrow" \(qkv \(B,T,\(H\+2·kvHeads\)·hs\)\) has 64 elements, needs 96/,
  );
  for (const p of [1, -0.1, NaN]) {
    assert.throws(
      () => k.forward(batch, qkv, out, att, B, T, C, H, H, { p, seed: 1, scratch: dqkv }),
      new RegExp(
        `attention\\.forward": the dropout probability p must be in \\[0, 1\\), got ${p}`,
      ),
    );
  }
  assert.throws(
    () => k.backward(batch, out, qkv, att, att, dqkv, B, T, C, H, H, { p: 0.1, seed: -1 }),
    /attention\.backward": the dropout seed must be an integer in \[0, 2\^32\), got -1/,
  );
  assert.throws(
    () => k.forward(batch, qkv, out, att, B, T, C, H, H, { p: 0.1, seed: 2 ** 32 }),
    /dropout seed must be an integer/,
  );
  assert.throws(
    () => k.forward(batch, qkv, out, att, B, T, C, H, H, { p: 0.1, seed: 1 }),
    /attention\.forward": dropout p=0\.1 needs dropout\.scratch, a \(B,H,T,T\) tensor/,
  );
  assert.throws(
    () => k.forward(batch, qkv, out, att, B, T, C, H, H, { p: 0.1, seed: 1, scratch: tiny }),
    /"tiny" \(dropout\.scratch \(B,H,T,T\)\) has 3 elements, needs 32/,
  );
  assert.throws(
    () => k.forward(batch, qkv, out, att, B, T, C, H, H, { p: 0.1, seed: 1, scratch: att }),
    /dropout\.scratch "att" is att's buffer/,
  );
  assert.equal(batch.length, 0);
  release(qkv, short, out, att, dqkv, tiny, narrow);
});
