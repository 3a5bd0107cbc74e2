import assert from "node:assert/strict";
import { DecodeAttention, Rng } from "../../mod.ts";
import { assertClose, gpu, poisoned, randn, release, upload } from "../helpers.ts";
import { attentionForward } from "../ref/attention.ts";
import { decodeAppend, decodeAttend } from "../ref/decode.ts";

// Each output is Σ_j p_j·v_j over L cached positions with softmax weights from hs-term dot
// products, all O(1): f32 rounding gives errors of a few 1e-7 per term's weight, growing with the
// number of terms summed, so atol grows with √L and hs. Appends are plain copies: exact.
function attendTol(L: number, hs: number) {
  return { rtol: 1e-6, atol: 2e-7 * Math.sqrt(L + hs) };
}
const EXACT = { rtol: 0, atol: 0 };

interface Case {
  B: number;
  Tn: number;
  S: number;
  C: number;
  H: number;
  start: number[];
}

const CASES: Case[] = [
  { B: 1, Tn: 1, S: 1, C: 4, H: 1, start: [0] },
  { B: 2, Tn: 1, S: 7, C: 24, H: 3, start: [3, 6] },
  { B: 3, Tn: 5, S: 33, C: 12, H: 2, start: [0, 17, 28] },
  { B: 2, Tn: 2, S: 97, C: 130, H: 65, start: [95, 40] },
  { B: 1, Tn: 1, S: 97, C: 128, H: 1, start: [96] },
  // The longest cache and largest head: the loop-count bound's worst case (4,174 per invocation).
  { B: 1, Tn: 1, S: 1024, C: 256, H: 2, start: [1023] },
];

for (const { B, Tn, S, C, H, start } of CASES) {
  Deno.test(`DecodeAttention.append() and attend() match the reference for B=${B} Tn=${Tn} S=${S} C=${C} H=${H} start=[${start}]`, async () => {
    const g = await gpu();
    const dec = await DecodeAttention.create(g);
    const rng = new Rng(S * 31 + C);
    const qkv = randn(rng, B * Tn * 3 * C);
    // Positions past each row's last new one hold random values that attend must not read.
    const cache0 = randn(rng, B * S * 2 * C);
    const tq = upload(g, [B, Tn, 3 * C], qkv), tc = upload(g, [B, S, 2 * C], cache0, "cache");
    const ts = g.tensor([B], Uint32Array.from(start), "start");
    const tout = poisoned(g, [B, Tn, C]);
    const batch = g.batch();
    dec.append(batch, tq, tc, ts, start, B, Tn, S, C);
    dec.attend(batch, tq, tc, ts, start, tout, B, Tn, S, C, H);
    await batch.submit();
    const [cache, out] = await g.read([tc, tout]);
    const refCache = cache0.slice();
    decodeAppend(qkv, refCache, start, B, Tn, S, C);
    assertClose(cache, refCache, EXACT, "cache");
    assertClose(
      out,
      decodeAttend(qkv, refCache, start, B, Tn, S, C, H),
      attendTol(Math.max(...start) + Tn, C / H),
      "out",
    );
    release(tq, tc, ts, tout);
  });
}

Deno.test("decode reference: attending the last rows to a cache of the whole sequence equals causal attention", () => {
  const rng = new Rng(4);
  const [B, T, Tn, C, H] = [2, 9, 3, 12, 3];
  const full = randn(rng, B * T * 3 * C);
  const { out: want } = attentionForward(full, B, T, C, H);
  const cache = new Float64Array(B * T * 2 * C);
  decodeAppend(full, cache, [0, 0], B, T, T, C);
  const last = new Float64Array(B * Tn * 3 * C);
  for (let b = 0; b < B; b++) {
    last.set(full.subarray((b * T + T - Tn) * 3 * C, (b * T + T) * 3 * C), b * Tn * 3 * C);
  }
  const got = decodeAttend(last, cache, [T - Tn, T - Tn], B, Tn, T, C, H);
  const wantLast = new Float64Array(B * Tn * C);
  for (let b = 0; b < B; b++) {
    wantLast.set(want.subarray((b * T + T - Tn) * C, (b * T + T) * C), b * Tn * C);
  }
  assertClose(got, wantLast, { rtol: 1e-12, atol: 1e-12 }, "out");
});

Deno.test("DecodeAttention rejects bad shapes and positions with errors naming the tensor", async () => {
  const g = await gpu();
  const dec = await DecodeAttention.create(g);
  const [B, Tn, S, C, H] = [2, 1, 5, 8, 2];
  const qkv = g.tensor([B, Tn, 3 * C], undefined, "qkv");
  const cache = g.tensor([B, S, 2 * C], undefined, "cache");
  const small = g.tensor([B, S - 1, 2 * C], undefined, "small cache");
  const start = g.tensor([B], new Uint32Array(B), "start");
  const out = g.tensor([B, Tn, C], undefined, "out");
  const batch = g.batch();
  assert.throws(
    () => dec.append(batch, qkv, small, start, [0, 0], B, Tn, S, C),
    /decode\.append.*"small cache" \(cache \(2,5,16\)\)/,
  );
  assert.throws(
    () => dec.attend(batch, qkv, cache, start, [0, 5], out, B, Tn, S, C, H),
    /start\[1\]=5 with Tn=1 new rows does not fit the cache of S=5/,
  );
  assert.throws(
    () => dec.attend(batch, qkv, cache, start, [0, 0], qkv, B, Tn, S, C, H),
    /"qkv" \(out \(2,1,8\)\)/,
  );
  assert.throws(
    () => dec.attend(batch, qkv, cache, start, [0, 0], out, B, Tn, S, C, 3),
    /C=8 is not divisible/,
  );
  assert.throws(
    () => dec.attend(batch, qkv, cache, start, [0, 0], out, B, Tn, S, C, 0.5),
    /H must be a positive integer, got 0\.5/,
  );
  const wide = g.tensor([1, 1, 3 * 258], undefined, "wide qkv");
  const wideCache = g.tensor([1, 1, 2 * 258], undefined, "wide cache");
  const wideOut = g.tensor([1, 1, 258], undefined, "wide out");
  const one = g.tensor([1], new Uint32Array(1), "one start");
  assert.throws(
    () => dec.attend(batch, wide, wideCache, one, [0], wideOut, 1, 1, 1, 258, 2),
    /head size C\/H=129 is over the largest 128/,
  );
  assert.throws(
    () => dec.append(batch, qkv, cache, start, [0, 0], B, Tn, 1025, C),
    /S=1025 positions is over the most 1024/,
  );
  assert.equal(batch.length, 0, "nothing was recorded");
  release(qkv, cache, small, start, out, wide, wideCache, wideOut, one);
});
