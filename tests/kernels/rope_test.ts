import assert from "node:assert/strict";
import { type Gpu, Rng, Rotary } from "../../mod.ts";
import { assertClose, centralDiff, dot, gpu, randn, release, type Tolerance } from "../helpers.ts";
import { ropeAngle, ropeBackward, ropeForward, type RopeShape } from "../ref/rope.ts";

const UNIT_ROUNDOFF = 2 ** -24;

// Tolerance. Each output is x1·cos ∓ x2·sin of one pair (x1, x2), with the table's cos and sin
// rounded to f32 (each within u = 2⁻²⁴ of the float64 cos/sin of the same f32 angle that the
// reference uses), two f32 products and one f32 sum (or a fused multiply-add): at most
// (|x1| + |x2|)·(u + 2u) ≤ 6u·max|x| off, whatever the angle. atol 8u·max|x|; no rtol, because
// the output can cancel to ~0 while its error scales with the inputs.
function pairTol(x: ArrayLike<number>, rotations = 1): Tolerance {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]));
  return { rtol: 0, atol: rotations * 8 * UNIT_ROUNDOFF * m };
}

/** Elements after the B·T rows: the kernels must leave them alone (they stay NaN). */
const TAIL = 5;

/** Uploads `data` followed by TAIL NaNs. */
function withTail(g: Gpu, data: Float64Array, label: string) {
  const all = new Float32Array(data.length + TAIL).fill(NaN);
  all.set(data);
  return g.tensor([all.length], all, label);
}

/** The q and k channels of a (B,T,(H+2Hkv)·d) buffer (false: a v channel). */
function rotated(s: RopeShape, at: number): boolean {
  return at % ((s.H + 2 * s.Hkv) * s.d) < (s.H + s.Hkv) * s.d;
}

/**
 * Runs forward on random qkv and backward on random dqkv (one batch) and compares both with the
 * reference: q/k within tolerance, v exactly equal to its input, the tail untouched. `vPart`
 * overrides the v channels' inputs (NaN: a kernel that mixes v into q or k spreads it).
 */
async function check(g: Gpu, k: Rotary, s: RopeShape, vPart?: number): Promise<void> {
  const { B, T, H, Hkv, d, offset, theta } = s;
  const n = B * T * (H + 2 * Hkv) * d;
  const rng = new Rng(((B * 41 + T) * 43 + H * 7 + Hkv) * 47 + d + offset + theta);
  const x = randn(rng, n), dy = randn(rng, n);
  if (vPart !== undefined) {
    for (let a = 0; a < n; a++) if (!rotated(s, a)) x[a] = dy[a] = vPart;
  }
  const positions = offset + T;
  const table = g.tensor([positions, d / 2, 2], Rotary.table(theta, d, positions), "table");
  const tx = withTail(g, x, "qkv"), tdy = withTail(g, dy, "dqkv");
  const batch = g.batch();
  k.forward(batch, tx, table, B, T, H, Hkv, d, offset);
  k.backward(batch, tdy, table, B, T, H, Hkv, d, offset);
  await batch.submit();
  const [out, dx] = await g.read([tx, tdy]);
  const what = `B=${B} T=${T} H=${H} Hkv=${Hkv} d=${d} offset=${offset} θ=${theta}`;
  for (
    const [got, input, ref, name] of [[out, x, ropeForward(x, s), "qkv"], [
      dx,
      dy,
      ropeBackward(dy, s),
      "dqkv",
    ]] as const
  ) {
    const qk = (a: ArrayLike<number>) => Array.from(a).slice(0, n).filter((_, i) => rotated(s, i));
    const v = (a: ArrayLike<number>) => Array.from(a).slice(0, n).filter((_, i) => !rotated(s, i));
    assertClose(qk(got), qk(ref), pairTol(qk(input)), `${name} q/k part (${what})`);
    // v is never written: it keeps its input bit for bit (NaN stays NaN).
    assert.deepEqual(v(got), v(Float32Array.from(input)), `${name} v part (${what})`);
    assert.ok(got.slice(n).every(Number.isNaN), `${name} tail untouched (${what})`);
  }
  release(table, tx, tdy);
}

// Odd shapes: T not a multiple of anything, d = 2 (one pair), 6 (odd half) and 64 (Llama-like),
// grouped-query (3:1, 4:2) and plain multi-head (2:2) layouts; every case at offsets 0 and 17 and
// both common θ (Llama 2's 10,000, Llama 3's 500,000).
for (const d of [2, 6, 64]) {
  for (const [H, Hkv] of [[3, 1], [4, 2], [2, 2]]) {
    for (const T of [1, 5, 37]) {
      Deno.test(`Rotary.forward() and backward() match the reference for T=${T}, H=${H}, Hkv=${Hkv}, d=${d} (B 1..3, offsets 0 and 17, θ 1e4 and 5e5)`, async () => {
        const g = await gpu();
        const k = await Rotary.create(g);
        for (const B of [1, 2, 3]) {
          for (const offset of [0, 17]) {
            for (const theta of [10_000, 500_000]) {
              await check(g, k, { B, T, H, Hkv, d, offset, theta });
            }
          }
        }
      });
    }
  }
}

Deno.test("Rotary.forward() and backward() match the reference at large positions (offset 70,000)", async () => {
  // Angles up to ~7e4 radians: the f32 angle and the CPU table keep GPU and reference on the
  // same angles, so the tolerance stays the same as near position 0.
  const g = await gpu();
  const k = await Rotary.create(g);
  for (const theta of [10_000, 500_000]) {
    await check(g, k, { B: 2, T: 5, H: 4, Hkv: 2, d: 64, offset: 70_000, theta });
  }
});

Deno.test("Rotary leaves a NaN v part unchanged and never mixes it into q or k", async () => {
  const g = await gpu();
  const k = await Rotary.create(g);
  for (const [H, Hkv] of [[3, 1], [2, 2]]) {
    await check(g, k, { B: 3, T: 5, H, Hkv, d: 6, offset: 17, theta: 10_000 }, NaN);
  }
});

Deno.test("Rotary.backward() after forward() gives back the input (the rotation is orthogonal)", async () => {
  const g = await gpu();
  const k = await Rotary.create(g);
  const s = { B: 3, T: 37, H: 3, Hkv: 1, d: 64, offset: 17, theta: 500_000 };
  const n = s.B * s.T * (s.H + 2 * s.Hkv) * s.d;
  const x = randn(new Rng(3), n);
  const table = g.tensor([s.offset + s.T, s.d], Rotary.table(s.theta, s.d, s.offset + s.T));
  const t = g.tensor([n], Float32Array.from(x), "qkv");
  const batch = g.batch();
  k.forward(batch, t, table, s.B, s.T, s.H, s.Hkv, s.d, s.offset);
  k.backward(batch, t, table, s.B, s.T, s.H, s.Hkv, s.d, s.offset);
  await batch.submit();
  // Two rotations, each within pairTol of exact; the exact round trip is the identity.
  assertClose(await t.read(), x, pairTol(x, 2), "backward(forward(qkv))");
  release(table, t);
});

Deno.test("Rotary follows Hugging Face's half split (rotate_half), not interleaved pairs", async () => {
  // d = 4, θ = 10,000: inv_freq = [1, 10000^(−1/2) = 0.01]; H = Hkv = 1, B = 1, T = 2, offset 0.
  // At position 1, HF's rotate_half pairs channel 0 with 2 (angle 1) and 1 with 3 (angle 0.01):
  //   q' = [q0·cos 1 − q2·sin 1, q1·cos .01 − q3·sin .01, q2·cos 1 + q0·sin 1, q3·cos .01 + q1·sin .01]
  // An interleaved (GPT-J) implementation would pair 0 with 1 and 2 with 3 instead.
  const q = [1, 2, 3, 4], kk = [-1, 0.5, 2, -3], v = [7, 8, 9, 10];
  const row0 = [...q, ...kk, ...v], row1 = [...q, ...kk, ...v];
  const c1 = Math.cos(1), s1 = Math.sin(1), c2 = Math.cos(0.01), s2 = Math.sin(0.01);
  const turn = (x: number[]) => [
    x[0] * c1 - x[2] * s1,
    x[1] * c2 - x[3] * s2,
    x[2] * c1 + x[0] * s1,
    x[3] * c2 + x[1] * s2,
  ];
  // Position 0 is the identity; position 1 rotates q and k as above.
  const expected = [...row0, ...turn(q), ...turn(kk), ...v];
  const s = { B: 1, T: 2, H: 1, Hkv: 1, d: 4, offset: 0, theta: 10_000 };
  // 1e-6: the hand values use 0.01 where HF's f32 inv_freq is 0.0099999998; cos/sin move ≤ 2e-10.
  const tol = { rtol: 0, atol: 1e-6 };
  assertClose(ropeForward(Float64Array.from([...row0, ...row1]), s), expected, tol, "reference");
  const g = await gpu();
  const k = await Rotary.create(g);
  const table = g.tensor([2, 2, 2], Rotary.table(10_000, 4, 2), "table");
  const t = g.tensor([24], Float32Array.from([...row0, ...row1]), "qkv");
  const batch = g.batch();
  k.forward(batch, t, table, 1, 2, 1, 1, 4, 0);
  await batch.submit();
  assertClose(await t.read(), expected, tol, "GPU");
  release(table, t);
});

Deno.test("Rotary.table() computes Hugging Face's f32 angles, then cos and sin rounded to f32", () => {
  const d = 64, theta = 10_000, positions = 100_004;
  const table = Rotary.table(theta, d, positions);
  assert.equal(table.length, positions * d);
  let farFromF64Angle = 0;
  for (const pos of [0, 1, 2, 17, 4097, 100_003]) {
    for (let i = 0; i < d / 2; i++) {
      const angle = ropeAngle(theta, d, pos, i);
      const at = 2 * (pos * (d / 2) + i);
      assert.equal(table[at], Math.fround(Math.cos(angle)), `cos at pos ${pos}, i ${i}`);
      assert.equal(table[at + 1], Math.fround(Math.sin(angle)), `sin at pos ${pos}, i ${i}`);
      const f64Angle = pos / theta ** ((2 * i) / d);
      farFromF64Angle = Math.max(farFromF64Angle, Math.abs(table[at] - Math.cos(f64Angle)));
    }
  }
  // At position 100,003 the f32 product loses up to 2⁻⁸ radians against a float64 angle: the table
  // follows HF's f32 angle, visibly different from the float64 one.
  assert.ok(farFromF64Angle > 1e-4, `f32 and f64 angles differ by ${farFromF64Angle}`);
  // Position 1, i = 0: angle exactly 1.
  assert.equal(table[2 * (d / 2)], Math.fround(Math.cos(1)));
});

Deno.test("rope reference backward matches central finite differences, and undoes forward", () => {
  const s = { B: 2, T: 3, H: 2, Hkv: 1, d: 6, offset: 17, theta: 10_000 };
  const n = s.B * s.T * (s.H + 2 * s.Hkv) * s.d;
  const rng = new Rng(9);
  const x = randn(rng, n), w = randn(rng, n);
  const dx = ropeBackward(w, s); // L = Σ w·forward(x), so dL/dout = w
  // L is linear in x: central differences have no truncation error, only rounding ~ε·|L|/h ≈ 1e-9.
  const tol = { rtol: 1e-6, atol: 1e-7 };
  for (let i = 0; i < n; i++) {
    assertClose([dx[i]], [centralDiff((v) => dot(ropeForward(v, s), w), x, i)], tol, `dL/dx[${i}]`);
  }
  assertClose(ropeBackward(ropeForward(x, s), s), x, { rtol: 0, atol: 1e-14 }, "round trip");
});

Deno.test("Rotary throws clearly on odd d, a short table, wrong sizes and H not a multiple of Hkv", async () => {
  const g = await gpu();
  const k = await Rotary.create(g);
  const qkv = g.tensor([2, 5, 5 * 6], undefined, "qkv"); // B 2, T 5, H 3, Hkv 1, d 6
  const table = g.tensor([22, 6], undefined, "table"); // 22 positions of d = 6
  const batch = g.batch();
  assert.throws(
    () => k.forward(batch, qkv, table, 2, 5, 3, 1, 5, 0),
    /Cannot run kernel "rope.forward": head_dim d must be even, got d=5/,
  );
  assert.throws(
    () => k.backward(batch, qkv, table, 2, 5, 3, 2, 6, 0),
    /Cannot run kernel "rope.backward": H=3 query heads is not a multiple of Hkv=2/,
  );
  assert.throws(
    () => k.forward(batch, qkv, table, 2, 5, 3, 1, 6, 18),
    /Cannot run kernel "rope.forward": tensor "table" \(table \(positions,d\/2,2\)\) holds 22 positions of d=6, needs offset \+ T = 23/,
  );
  assert.throws(
    () => k.forward(batch, qkv, table, 3, 5, 3, 1, 6, 0),
    /Cannot run kernel "rope.forward": tensor "qkv" \(qkv \(B,T,\(H\+2·Hkv\)·d\)\) has 300 elements, needs 450/,
  );
  assert.throws(
    () => k.backward(batch, qkv, table, 2, 5, 4, 1, 6, 0),
    /Cannot run kernel "rope.backward": tensor "qkv" \(dqkv \(B,T,\(H\+2·Hkv\)·d\)\) has 300 elements, needs 360/,
  );
  assert.throws(
    () => k.forward(batch, qkv, table, 0, 5, 3, 1, 6, 0),
    /B must be a positive integer, got B=0/,
  );
  assert.throws(
    () => k.forward(batch, qkv, table, 2, 5, 3, 1, 6, -1),
    /offset must be an integer ≥ 0, got offset=-1/,
  );
  assert.equal(batch.length, 0);
  // The table builder names its argument too.
  assert.throws(
    () => Rotary.table(10_000, 7, 4),
    /Cannot build the rotary table: headDim must be an even integer ≥ 2, got 7/,
  );
  assert.throws(() => Rotary.table(0, 8, 4), /theta must be finite and > 0, got 0/);
  assert.throws(() => Rotary.table(10_000, 8, -1), /positions must be an integer ≥ 0, got -1/);
  // Forward and backward accept exactly what they need (offset + T = 22 positions).
  k.forward(batch, qkv, table, 2, 5, 3, 1, 6, 17);
  assert.equal(batch.length, 1);
  release(qkv, table);
});

Deno.test("Rotary with per-row starts rotates row b at starts[b] + t, forward and backward (KV-cache generation)", async () => {
  const g = await gpu();
  const rope = await Rotary.create(g);
  const rng = new Rng(77);
  const [B, T, H, Hkv, d, theta] = [3, 2, 4, 2, 6, 10000];
  const starts = [0, 5, 17];
  const W = (H + 2 * Hkv) * d;
  const table = g.tensor([20, d / 2, 2], Rotary.table(theta, d, 20), "table");
  const tStarts = g.tensor([B], new Uint32Array(starts), "starts");
  const x = randn(rng, B * T * W);
  for (const [dir, ref] of [["forward", ropeForward], ["backward", ropeBackward]] as const) {
    const t = g.tensor([B, T, W], Float32Array.from(x), "qkv");
    const batch = g.batch();
    rope[dir](batch, t, table, B, T, H, Hkv, d, { starts: tStarts, host: starts });
    await batch.submit();
    const [got] = await g.read([t]);
    // Each row against the reference at its own offset; bound as the offset tests above.
    const max = x.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    for (let b = 0; b < B; b++) {
      const row = x.slice(b * T * W, (b + 1) * T * W);
      const want = ref(row, { B: 1, T, H, Hkv, d, offset: starts[b], theta });
      assertClose(got.slice(b * T * W, (b + 1) * T * W), want, {
        rtol: 0,
        atol: 8 * 2 ** -24 * max,
      }, `${dir} row ${b}`);
    }
    t.release();
  }
  const batch = g.batch();
  const short = g.tensor([B, T, W], undefined, "qkv");
  assert.throws(
    () => rope.forward(batch, short, table, B, T, H, Hkv, d, { starts: tStarts, host: [0, 5, 19] }),
    /needs offset \+ T = 21/,
  );
  assert.throws(
    () => rope.forward(batch, short, table, B, T, H, Hkv, d, { starts: tStarts, host: [0, 5] }),
    /row starts hold 2 positions/,
  );
  release(table, tStarts, short);
});
