import assert from "node:assert/strict";
import { Embedding, Gpu, Rng } from "../../mod.ts";
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
import { embeddingBackward, embeddingForward } from "../ref/embedding.ts";

// Forward is one f32 add of f32 inputs: correctly rounded, within half an ulp of the f64 sum.
const FWD_TOL = { rtol: 1.2e-7, atol: 1e-30 };
// Backward sums at most ~10 f32 terms of N(0,1) per element (in a different order than the
// reference): each add loses ≤ half an ulp of the running sum, so 1e-6 relative plus 1e-6 absolute
// (for sums that cancel to near 0) is a generous bound here.
const BWD_TOL = { rtol: 1e-6, atol: 1e-6 };

function randomIds(rng: Rng, n: number, V: number): Uint32Array {
  const ids = new Uint32Array(n);
  // Draw from a smaller range half the time so that ids repeat (several positions per segment).
  for (let i = 0; i < n; i++) ids[i] = rng.int(i % 2 === 0 ? Math.min(V, 3) : V);
  return ids;
}

for (
  const [B, T, C, V] of [[1, 1, 1, 1], [2, 7, 7, 5], [3, 33, 33, 97], [1, 97, 7, 300], [
    7,
    1,
    33,
    7,
  ]]
) {
  Deno.test(`Embedding.forward() and backward() match the reference for B=${B} T=${T} C=${C} V=${V}`, async () => {
    const g = await gpu();
    const k = await Embedding.create(g);
    const rng = new Rng(B * 1000 + T * 10 + C);
    const maxT = T + 3; // wpe has more rows than T: rows T.. must stay untouched
    const ids = randomIds(rng, B * T, V);
    const wte = randn(rng, V * C), wpe = randn(rng, maxT * C), dout = randn(rng, B * T * C);
    const dwte0 = randn(rng, V * C), dwpe0 = randn(rng, maxT * C);
    const tids = g.tensor([B, T], ids, "ids");
    const twte = upload(g, [V, C], wte, "wte"), twpe = upload(g, [maxT, C], wpe, "wpe");
    const tout = poisoned(g, [B, T, C]), tdout = upload(g, [B, T, C], dout, "dout");
    const tdwte = upload(g, [V, C], dwte0, "dwte"), tdwpe = upload(g, [maxT, C], dwpe0, "dwpe");
    const index = k.prepareBackward(ids, V);
    const batch = g.batch();
    k.forward(batch, tids, ids, twte, twpe, tout);
    k.backward(batch, index, tdout, tdwte, tdwpe);
    await batch.submit();
    const [out, dwte, dwpe] = await g.read([tout, tdwte, tdwpe]);
    const refDwte = dwte0.slice(), refDwpe = dwpe0.slice();
    embeddingBackward(ids, dout, refDwte, refDwpe, B, T, C);
    assertClose(out, embeddingForward(ids, wte, wpe, B, T, C), FWD_TOL, "out");
    assertClose(dwte, refDwte, BWD_TOL, "dwte (accumulated)");
    assertClose(dwpe, refDwpe, BWD_TOL, "dwpe (accumulated, rows ≥ T unchanged)");
    index.release();
    release(tids, twte, twpe, tout, tdout, tdwte, tdwpe);
  });
}

Deno.test("Embedding.backward() sums a token repeated 70,000 times (long segments) exactly", async () => {
  const g = await gpu();
  const k = await Embedding.create(g);
  const rng = new Rng(5);
  const [B, T, C, V] = [10, 7000, 3, 9];
  const ids = new Uint32Array(B * T).fill(4);
  for (let i = 0; i < 2000; i++) ids[rng.int(B * T)] = 7; // a second long segment (> 1,024)
  for (let i = 0; i < 50; i++) ids[rng.int(B * T)] = rng.int(V); // and some short ones
  // Multiples of 1/8 in [-4, 4]: every partial sum (|s| ≤ 280,000) is exact in f32, so the GPU
  // result must equal the reference exactly whatever the summation order.
  const dout = new Float64Array(B * T * C);
  for (let i = 0; i < dout.length; i++) dout[i] = (rng.int(65) - 32) / 8;
  const tdout = upload(g, [B, T, C], dout, "dout");
  const tdwte = upload(g, [V, C], new Float64Array(V * C), "dwte");
  const tdwpe = upload(g, [T, C], new Float64Array(T * C), "dwpe");
  const index = k.prepareBackward(ids, V);
  assert.ok(index.longCount >= 2 && index.longest > 65535, "the test must exercise long segments");
  const batch = g.batch();
  k.backward(batch, index, tdout, tdwte, tdwpe);
  await batch.submit();
  const [dwte, dwpe] = await g.read([tdwte, tdwpe]);
  const refDwte = new Float64Array(V * C), refDwpe = new Float64Array(T * C);
  embeddingBackward(ids, dout, refDwte, refDwpe, B, T, C);
  assertClose(dwte, refDwte, { rtol: 0, atol: 0 }, "dwte");
  assertClose(dwpe, refDwpe, { rtol: 0, atol: 0 }, "dwpe");
  index.release();
  release(tdout, tdwte, tdwpe);
});

Deno.test("Embedding.backward() skips a null dwte or dwpe and still computes the other", async () => {
  const g = await gpu();
  const k = await Embedding.create(g);
  const rng = new Rng(8);
  const [B, T, C, V] = [2, 7, 7, 5];
  const ids = randomIds(rng, B * T, V);
  const dout = randn(rng, B * T * C);
  const tdout = upload(g, [B, T, C], dout, "dout");
  const tdwte = upload(g, [V, C], new Float64Array(V * C), "dwte");
  const tdwpe = upload(g, [T, C], new Float64Array(T * C), "dwpe");
  const index = k.prepareBackward(ids, V);
  const batch = g.batch();
  k.backward(batch, index, tdout, tdwte, null);
  k.backward(batch, index, tdout, null, tdwpe);
  await batch.submit();
  const [dwte, dwpe] = await g.read([tdwte, tdwpe]);
  const refDwte = new Float64Array(V * C), refDwpe = new Float64Array(T * C);
  embeddingBackward(ids, dout, refDwte, null, B, T, C);
  embeddingBackward(ids, dout, null, refDwpe, B, T, C);
  assertClose(dwte, refDwte, BWD_TOL, "dwte");
  assertClose(dwpe, refDwpe, BWD_TOL, "dwpe");
  index.release();
  release(tdout, tdwte, tdwpe);
});

Deno.test("Embedding.forward() and prepareBackward() reject an out-of-range id naming its position and value", async () => {
  const g = await gpu();
  const k = await Embedding.create(g);
  const [B, T, C, V] = [2, 3, 2, 9];
  const ids = new Uint32Array([0, 1, 2, 3, 9, 5]);
  const tids = g.tensor([B, T], ids, "ids");
  const twte = g.tensor([V, C], undefined, "wte"), twpe = g.tensor([T, C], undefined, "wpe");
  const tout = g.tensor([B, T, C], undefined, "out");
  assert.throws(
    () => k.forward(g.batch(), tids, ids, twte, twpe, tout),
    /token id 9 at position 4 \(b=1, t=1\): the vocabulary holds ids 0\.\.8/,
  );
  assert.throws(() => k.prepareBackward([0, -1], V), /token id -1 at position 1/);
  release(tids, twte, twpe, tout);
});

Deno.test("Embedding.forward() and backward() reject bad shapes naming the tensor", async () => {
  const g = await gpu();
  const k = await Embedding.create(g);
  const [B, T, C, V] = [2, 3, 2, 9];
  const ids = new Uint32Array(B * T);
  const tids = g.tensor([B, T], ids, "ids");
  const twte = g.tensor([V, C], undefined, "wte"), twpe = g.tensor([T - 1, C], undefined, "wpe");
  const flat = g.tensor([B * T * C], undefined, "flat_out"),
    tout = g.tensor([B, T, C], undefined, "out");
  const dwte = g.tensor([V + 1, C], undefined, "dwte");
  const index = k.prepareBackward(ids, V);
  const b = g.batch();
  assert.throws(
    () => k.forward(b, tids, ids, twte, twpe, flat),
    /"flat_out" has shape \[12\], expected \(B, T, C\)/,
  );
  assert.throws(
    () => k.forward(b, tids, ids, twte, twpe, tout),
    /"wpe" \(wpe, \(≥T, C\)\) has 4 elements, needs 6/,
  );
  assert.throws(
    () => k.backward(b, index, tout, dwte, null),
    /"dwte" has 20 elements, expected V·C = 9·2/,
  );
  const other = k.prepareBackward([1, 2], V);
  assert.throws(() => k.backward(b, other, tout, null, null), /built for 2 positions/);
  index.release();
  other.release();
  release(tids, twte, twpe, flat, tout, dwte);
});

Deno.test("embedding reference backward matches central finite differences", () => {
  const rng = new Rng(11);
  const [B, T, C, V] = [2, 3, 2, 4];
  const ids = [1, 3, 1, 0, 1, 2];
  const wte = randn(rng, V * C), wpe = randn(rng, T * C), w = randn(rng, B * T * C);
  const dwte = new Float64Array(V * C), dwpe = new Float64Array(T * C);
  embeddingBackward(ids, w, dwte, dwpe, B, T, C); // L = Σ out·w, so dL/dout = w
  const fdWte = Array.from(
    wte,
    (_, i) => centralDiff((x) => dot(embeddingForward(ids, x, wpe, B, T, C), w), wte, i),
  );
  const fdWpe = Array.from(
    wpe,
    (_, i) => centralDiff((x) => dot(embeddingForward(ids, wte, x, B, T, C), w), wpe, i),
  );
  assertClose(dwte, fdWte, { rtol: 1e-6, atol: 1e-8 }, "dL/dwte");
  assertClose(dwpe, fdWpe, { rtol: 1e-6, atol: 1e-8 }, "dL/dwpe");
});

Deno.test("Embedding.forward() without a position table writes the token rows alone (rotary models)", async () => {
  const g = await gpu();
  const emb = await Embedding.create(g);
  const rng = new Rng(41);
  for (const [B, T, C, V] of [[1, 1, 1, 1], [2, 7, 7, 5], [3, 33, 33, 97]]) {
    const ids = randomIds(rng, B * T, V);
    const wte = randn(rng, V * C);
    const tids = g.tensor([B, T], ids, "ids"), twte = upload(g, [V, C], wte, "wte");
    const out = poisoned(g, [B, T, C]);
    const batch = g.batch();
    emb.forward(batch, tids, ids, twte, null, out);
    await batch.submit();
    const [y] = await g.read([out]);
    // A copy: exact.
    assertClose(y, embeddingForward(ids, wte, null, B, T, C), { rtol: 0, atol: 0 }, "out");
    release(tids, twte, out);
  }
});

Deno.test("Embedding.forward() and backward() bind a token table over the storage-binding limit in row chunks, bit for bit as unchunked", async () => {
  // wte (5000, 3) is 60,000 bytes; a forced 16 KiB limit splits it into chunks of 1,360 rows
  // (the last partial), while ids, dout and the index stay under the limit.
  const [B, T, C, V] = [2, 600, 3, 5000];
  const rng = new Rng(3);
  const ids = new Uint32Array(B * T);
  for (let i = 0; i < ids.length; i++) ids[i] = rng.int(V);
  for (let i = 0; i < 1100; i++) ids[i] = 2000; // a long segment (> 1,024 positions) in chunk 1
  ids[1150] = 1359; // the last row of chunk 0 and the first of chunk 1
  ids[1151] = 1360;
  ids[1152] = V - 1;
  const maxT = T + 3;
  const wte = randn(rng, V * C), wpe = randn(rng, maxT * C), dout = randn(rng, B * T * C);
  const dwte0 = randn(rng, V * C), dwpe0 = randn(rng, maxT * C);
  const run = async (g: Awaited<ReturnType<typeof gpu>>, withWpe: boolean) => {
    const k = await Embedding.create(g);
    const tids = g.tensor([B, T], ids, "ids");
    const twte = upload(g, [V, C], wte, "wte"), twpe = upload(g, [maxT, C], wpe, "wpe");
    const tout = poisoned(g, [B, T, C]), tdout = upload(g, [B, T, C], dout, "dout");
    const tdwte = upload(g, [V, C], dwte0, "dwte"), tdwpe = upload(g, [maxT, C], dwpe0, "dwpe");
    const index = k.prepareBackward(ids, V);
    assert.ok(index.longCount === 1 && index.shortCount > 0);
    const batch = g.batch();
    k.forward(batch, tids, ids, twte, withWpe ? twpe : null, tout);
    k.backward(batch, index, tdout, tdwte, withWpe ? tdwpe : null);
    await batch.submit();
    const out = await g.read([tout, tdwte, tdwpe]);
    index.release();
    release(tids, twte, twpe, tout, tdout, tdwte, tdwpe);
    return out;
  };
  const small = await Gpu.create({ maxBindingBytes: 16384 });
  try {
    assert.equal(small.rowChunks(V, C).length, 4);
    for (const withWpe of [true, false]) {
      const [out, dwte, dwpe] = await run(small, withWpe);
      assert.deepEqual([out, dwte, dwpe], await run(await gpu(), withWpe), "same bits");
      const refDwte = dwte0.slice(), refDwpe = dwpe0.slice();
      embeddingBackward(ids, dout, refDwte, withWpe ? refDwpe : null, B, T, C);
      assertClose(out, embeddingForward(ids, wte, withWpe ? wpe : null, B, T, C), FWD_TOL, "out");
      // Row 2000 sums 1,100 N(0,1) terms over a 256-lane tree: ≤ 5 + 8 f32 additions on any path,
      // each losing ≤ 2⁻²⁴ of the partial sums (Σ|terms| ≈ 900): 13·2⁻²⁴·900 ≈ 7e-4.
      assertClose(dwte, refDwte, { rtol: 1e-6, atol: 1e-3 }, "dwte");
      assertClose(dwpe, refDwpe, BWD_TOL, "dwpe");
    }
  } finally {
    small.destroy();
  }
});
