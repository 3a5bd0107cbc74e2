import assert from "node:assert/strict";
import { Attention, DecodeAttention, Rng } from "../../mod.ts";
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
  /** H·hs, the width of q and out. */
  C: number;
  H: number;
  /** Key/value heads (default H). */
  kvHeads?: number;
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
  // Grouped-query and multi-query heads (cache of 2·kvHeads·hs per position), odd head sizes.
  { B: 2, Tn: 3, S: 33, C: 20, H: 4, kvHeads: 2, start: [0, 30] },
  { B: 1, Tn: 1, S: 7, C: 24, H: 3, kvHeads: 1, start: [6] },
  { B: 3, Tn: 2, S: 40, C: 72, H: 6, kvHeads: 3, start: [7, 0, 38] },
  { B: 2, Tn: 7, S: 9, C: 15, H: 3, kvHeads: 1, start: [0, 2] },
];

for (const { B, Tn, S, C, H, kvHeads = H, start } of CASES) {
  Deno.test(`DecodeAttention.append() and attend() match the reference for B=${B} Tn=${Tn} S=${S} C=${C} H=${H} kvHeads=${kvHeads} start=[${start}]`, async () => {
    const g = await gpu();
    const dec = await DecodeAttention.create(g);
    const rng = new Rng(S * 31 + C);
    const KV = kvHeads * (C / H), W = C + 2 * KV;
    const qkv = randn(rng, B * Tn * W);
    // Positions past each row's last new one hold random values that attend must not read.
    const cache0 = randn(rng, B * S * 2 * KV);
    const tq = upload(g, [B, Tn, W], qkv), tc = upload(g, [B, S, 2 * KV], cache0, "cache");
    const ts = g.tensor([B], Uint32Array.from(start), "start");
    const tout = poisoned(g, [B, Tn, C]);
    const batch = g.batch();
    // The multi-head cases call the wrappers as GPT-2's generation does (append without heads).
    if (kvHeads === H) dec.append(batch, tq, tc, ts, start, B, Tn, S, C);
    else dec.append(batch, tq, tc, ts, start, B, Tn, S, C, H, kvHeads);
    dec.attend(batch, tq, tc, ts, start, tout, B, Tn, S, C, H, kvHeads);
    await batch.submit();
    const [cache, out] = await g.read([tc, tout]);
    const refCache = cache0.slice();
    decodeAppend(qkv, refCache, start, B, Tn, S, C, H, kvHeads);
    assertClose(cache, refCache, EXACT, "cache");
    assertClose(
      out,
      decodeAttend(qkv, refCache, start, B, Tn, S, C, H, kvHeads),
      attendTol(Math.max(...start) + Tn, C / H),
      "out",
    );
    release(tq, tc, ts, tout);
  });
}

// Prefill Tp rows, then decode the rest one row at a time from a grouped-query cache: every row's
// output must be what the training forward gives for the whole sequence. Both are f32 with
// different summation orders (the training forward may run as GEMMs), each within attendTol of
// the exact value, so they agree within twice that.
for (
  const [B, T, Tp, H, kvHeads, hs] of [[2, 9, 4, 4, 2, 5], [1, 12, 1, 3, 1, 8], [3, 6, 6, 6, 3, 4]]
) {
  Deno.test(`DecodeAttention over a cache of kvHeads=${kvHeads} (H=${H}, hs=${hs}) agrees with Attention.forward on the same rows (B=${B} T=${T}, prefill ${Tp})`, async () => {
    const g = await gpu();
    const [dec, attn] = await Promise.all([DecodeAttention.create(g), Attention.create(g)]);
    const C = H * hs, W = C + 2 * kvHeads * hs;
    const full = randn(new Rng(T * 7 + H), B * T * W);
    const tfull = upload(g, [B, T, W], full, "qkv");
    const tatt = g.tensor(Attention.scratchShape(B, T, H)), twant = poisoned(g, [B, T, C], "want");
    const cache = poisoned(g, [B, T, 2 * kvHeads * hs], "cache");
    const start = g.tensor([B], new Uint32Array(B), "start");
    let batch = g.batch();
    attn.forward(batch, tfull, twant, tatt, B, T, C, H, kvHeads);
    await batch.submit();
    const [want] = await g.read([twant]);
    const got = new Float32Array(B * T * C);
    for (let t0 = 0; t0 < T; t0 += t0 === 0 ? Tp : 1) {
      const Tn = t0 === 0 ? Tp : 1, hostStart = new Array(B).fill(t0);
      const rows = new Float64Array(B * Tn * W);
      for (let b = 0; b < B; b++) {
        rows.set(full.subarray((b * T + t0) * W, (b * T + t0 + Tn) * W), b * Tn * W);
      }
      const tq = upload(g, [B, Tn, W], rows, "rows"), tout = poisoned(g, [B, Tn, C]);
      batch = g.batch();
      batch.write(start, Uint32Array.from(hostStart));
      dec.append(batch, tq, cache, start, hostStart, B, Tn, T, C, H, kvHeads);
      dec.attend(batch, tq, cache, start, hostStart, tout, B, Tn, T, C, H, kvHeads);
      await batch.submit();
      const [out] = await g.read([tout]);
      for (let b = 0; b < B; b++) {
        got.set(out.subarray(b * Tn * C, (b + 1) * Tn * C), (b * T + t0) * C);
      }
      release(tq, tout);
    }
    const tol = attendTol(T, hs);
    assertClose(got, want, { rtol: 2 * tol.rtol, atol: 2 * tol.atol }, "decoded vs training out");
    release(tfull, tatt, twant, cache, start);
  });
}

for (const [H, kvHeads] of [[3, 3], [4, 2], [3, 1]]) {
  Deno.test(`decode reference: attending the last rows to a cache of the whole sequence equals causal attention (H=${H}, kvHeads=${kvHeads})`, () => {
    const rng = new Rng(4);
    const [B, T, Tn, hs] = [2, 9, 3, 4], C = H * hs, W = C + 2 * kvHeads * hs;
    const full = randn(rng, B * T * W);
    const { out: want } = attentionForward(full, B, T, C, H, kvHeads);
    const cache = new Float64Array(B * T * 2 * kvHeads * hs);
    decodeAppend(full, cache, [0, 0], B, T, T, C, H, kvHeads);
    const last = new Float64Array(B * Tn * W);
    for (let b = 0; b < B; b++) {
      last.set(full.subarray((b * T + T - Tn) * W, (b * T + T) * W), b * Tn * W);
    }
    const got = decodeAttend(last, cache, [T - Tn, T - Tn], B, Tn, T, C, H, kvHeads);
    const wantLast = new Float64Array(B * Tn * C);
    for (let b = 0; b < B; b++) {
      wantLast.set(want.subarray((b * T + T - Tn) * C, (b * T + T) * C), b * Tn * C);
    }
    assertClose(got, wantLast, { rtol: 1e-12, atol: 1e-12 }, "out");
  });
}

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
  // H = 6 query heads of size 2 (C = 12) cannot share kvHeads = 4 key/value heads.
  assert.throws(
    () => dec.append(batch, qkv, cache, start, [0, 0], B, Tn, S, 12, 6, 4),
    /decode\.append.*number of heads H=6 is not divisible by the number of key\/value heads kvHeads=4/,
  );
  assert.throws(
    () => dec.attend(batch, qkv, cache, start, [0, 0], out, B, Tn, S, 12, 6, 4),
    /decode\.attend.*H=6 is not divisible by .*kvHeads=4/,
  );
  // A multi-head cache (B,S,2C) is the wrong size for one key/value head: (B,S,2·hs) = (2,5,8).
  const mqa = g.tensor([B, Tn, 16], undefined, "mqa qkv");
  assert.throws(
    () => dec.append(batch, mqa, cache, start, [0, 0], B, Tn, S, C, H, 1),
    /"cache" \(cache \(2,5,8\)\) has 160 elements, expected 80/,
  );
  assert.equal(batch.length, 0, "nothing was recorded");
  release(qkv, cache, small, start, out, wide, wideCache, wideOut, one, mqa);
});
