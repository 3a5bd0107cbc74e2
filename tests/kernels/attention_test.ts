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
import { attentionBackward, attentionForward } from "../ref/attention.ts";

// f32 against float64 with unit-normal inputs: each score is an f32 dot product over hs terms
// (error ~ √hs·2⁻²⁴ of Σ|q·k|), softmax adds exp and a normalisation (a few ulps), and out/dq/dk/dv
// are f32 sums over up to T terms of magnitude ~1 that can cancel towards 0, so the error is absolute
// rather than relative. Measured max errors on lavapipe: ≤ 1.8e-6 for T ≤ 97, 3.9e-6 at T = 1024
// (values up to ~5); atol = rtol = 2e-5 leaves ≥ 5× headroom, while an indexing or masking error
// is off by O(0.1).
const TOL = { rtol: 2e-5, atol: 2e-5 };

interface Run {
  out: Float32Array;
  att: Float32Array;
  dqkv: Float32Array;
}

/** Runs forward then backward on the GPU with every output (and the scratch) poisoned with NaN. */
async function runGpu(
  qkv: Float64Array,
  dout: Float64Array,
  B: number,
  T: number,
  C: number,
  H: number,
): Promise<Run> {
  const g = await gpu();
  const k = await Attention.create(g);
  const tqkv = upload(g, [B, T, 3 * C], qkv, "qkv"), tdout = upload(g, [B, T, C], dout, "dout");
  const tout = poisoned(g, [B, T, C], "out"),
    tatt = poisoned(g, Attention.scratchShape(B, T, H), "att");
  const tdatt = poisoned(g, Attention.scratchShape(B, T, H), "datt");
  const tdqkv = poisoned(g, [B, T, 3 * C], "dqkv");
  const batch = g.batch();
  k.forward(batch, tqkv, tout, tatt, B, T, C, H);
  k.backward(batch, tdout, tqkv, tatt, tdatt, tdqkv, B, T, C, H);
  await batch.submit();
  const [out, att, dqkv] = await g.read([tout, tatt, tdqkv]);
  release(tqkv, tdout, tout, tatt, tdatt, tdqkv);
  return { out, att, dqkv };
}

function checkAgainstReference(
  B: number,
  T: number,
  C: number,
  H: number,
  seed: number,
): Promise<void> {
  const rng = new Rng(seed);
  const qkv = randn(rng, B * T * 3 * C), dout = randn(rng, B * T * C);
  return runGpu(qkv, dout, B, T, C, H).then((got) => {
    const ref = attentionForward(qkv, B, T, C, H);
    assertClose(got.out, ref.out, TOL, "out");
    assertClose(got.att, ref.att, TOL, "att");
    assertClose(got.dqkv, attentionBackward(dout, qkv, ref.att, B, T, C, H), TOL, "dqkv");
  });
}

for (
  const [B, T, C, H] of [[1, 1, 4, 1], [2, 7, 12, 3], [1, 33, 20, 4], [2, 97, 24, 2], [1, 70, 6, 6]]
) {
  Deno.test(
    `\`Attention.forward()\` and \`backward()\` match the reference for (B,T,C,H)=(${B},${T},${C},${H})`,
    () => checkAgainstReference(B, T, C, H, B * 1000 + T),
  );
}

// A naive kernel looping over one query row's keys and channels (T·hs = 1024·64 = 65,536) or one
// head's full column would pass Mesa's 65,535-iteration cap and silently stop early; these shapes
// catch that with every row compared.
Deno.test("`Attention.forward()` and `backward()` match the reference for a long row (B,T,C,H)=(1,1024,64,1)", () => {
  return checkAgainstReference(1, 1024, 64, 1, 7);
});

// hs = 128 gives each thread two channels of the head.
Deno.test("`Attention.forward()` and `backward()` match the reference for hs=128 (B,T,C,H)=(2,130,256,2)", () => {
  return checkAgainstReference(2, 130, 256, 2, 8);
});

Deno.test("`Attention.forward()` is causal: changing a later token's k and v leaves earlier outputs unchanged", async () => {
  const [B, T, C, H] = [2, 9, 8, 2];
  const rng = new Rng(11);
  const qkv = randn(rng, B * T * 3 * C), dout = randn(rng, B * T * C);
  const changed = qkv.slice();
  const tChanged = 5;
  for (let b = 0; b < B; b++) {
    const row = (b * T + tChanged) * 3 * C;
    for (let c = C; c < 3 * C; c++) changed[row + c] += 1 + rng.normal();
  }
  const before = await runGpu(qkv, dout, B, T, C, H);
  const after = await runGpu(changed, dout, B, T, C, H);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const row = Array.from(before.out.subarray((b * T + t) * C, (b * T + t + 1) * C));
      const rowAfter = Array.from(after.out.subarray((b * T + t) * C, (b * T + t + 1) * C));
      if (t < tChanged) assert.deepEqual(rowAfter, row, `out[${b},${t}] changed`);
      else assert.notDeepEqual(rowAfter, row, `out[${b},${t}] did not change`);
    }
  }
});

Deno.test("attention reference backward matches central finite differences", () => {
  const [B, T, C, H] = [2, 4, 6, 2];
  const rng = new Rng(5);
  const qkv = randn(rng, B * T * 3 * C), w = randn(rng, B * T * C);
  const dqkv = attentionBackward(w, qkv, attentionForward(qkv, B, T, C, H).att, B, T, C, H);
  const loss = (x: Float64Array) => dot(attentionForward(x, B, T, C, H).out, w); // L = Σ out·w
  const fd = Array.from(qkv, (_, i) => centralDiff(loss, qkv, i));
  assertClose(dqkv, fd, { rtol: 1e-6, atol: 1e-8 }, "dqkv vs finite differences");
  // k of token 0 in batch 0 reaches every query, so its gradient must be non-trivial.
  assert.ok(Math.abs(dqkv[C]) > 1e-3, "dk[0,0] is ~0: the check would be vacuous");
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
  assert.equal(batch.length, 0);
  release(qkv, short, out, att, dqkv, tiny);
});
