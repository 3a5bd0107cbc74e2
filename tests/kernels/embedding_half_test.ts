/**
 * Embedding.forward() with a token table stored as packed halves (a frozen `wte` in f16 or bf16,
 * runtime/tensor.ts): the float64 reference on the *rounded* table, unchunked and in row chunks
 * under a forced small storage-binding limit.
 */
import assert from "node:assert/strict";
import { Embedding, Gpu, type HalfDtype, Rng } from "../../mod.ts";
import { assertClose, gpu, poisoned, randn, release, upload } from "../helpers.ts";
import { embeddingForward } from "../ref/embedding.ts";
import { roundAllRef } from "../ref/half.ts";

// The widened half is exact, so the forward is one f32 add of two f32 values (correctly rounded:
// within half an ulp of the float64 sum), or a copy without positions (exact).
const FWD_TOL = { rtol: 1.2e-7, atol: 1e-30 };
const DTYPES: HalfDtype[] = ["f16", "bf16"];

/** Table values over many binades, f16 subnormals included. */
function table(rng: Rng, n: number): Float64Array {
  return Float64Array.from(randn(rng, n), (v, i) => v * 2 ** ((i % 19) - 14));
}

for (const dtype of DTYPES) {
  Deno.test(`Embedding.forward() reads a ${dtype} token table as the reference on the rounded table, with and without positions`, async () => {
    const g = await gpu();
    const emb = await Embedding.create(g);
    const rng = new Rng(dtype.length);
    for (const [B, T, C, V] of [[1, 1, 1, 1], [2, 7, 7, 5], [3, 33, 33, 97], [7, 1, 33, 7]]) {
      const ids = new Uint32Array(B * T).map(() => rng.int(V));
      const wte = table(rng, V * C), wpe = randn(rng, T * C);
      const tids = g.tensor([B, T], ids, "ids");
      const twte = g.tensor([V, C], Float32Array.from(wte), "wte", dtype);
      const twpe = upload(g, [T, C], wpe, "wpe");
      const out = poisoned(g, [B, T, C]), outTok = poisoned(g, [B, T, C]);
      const batch = g.batch();
      emb.forward(batch, tids, ids, twte, twpe, out);
      emb.forward(batch, tids, ids, twte, null, outTok);
      await batch.submit();
      const [y, yTok, back] = await g.read([out, outTok, twte]);
      const rounded = roundAllRef(wte, dtype);
      assert.deepEqual(back, Float32Array.from(rounded), "the table holds the rounded values");
      const where = `${dtype} B=${B} T=${T} C=${C} V=${V}`;
      assertClose(y, embeddingForward(ids, rounded, wpe, B, T, C), FWD_TOL, `out ${where}`);
      assertClose(yTok, embeddingForward(ids, rounded, null, B, T, C), { rtol: 0, atol: 0 }, where);
      release(tids, twte, twpe, out, outTok);
    }
  });
}

Deno.test("Embedding.forward() binds a half token table over the storage-binding limit in row chunks, bit for bit as unchunked", async () => {
  // wte (5000, 3) in halves is 30,000 bytes: a forced 8 KiB limit splits it into chunks of
  // 1,280 rows (views of 7,680 bytes, each starting on the 256-byte alignment; the last partial).
  const [B, T, C, V] = [1, 300, 3, 5000];
  const rng = new Rng(5);
  const ids = new Uint32Array(B * T).map(() => rng.int(V));
  ids[0] = 1279; // the last row of chunk 0 and the first of chunk 1
  ids[1] = 1280;
  ids[2] = V - 1;
  const wte = table(rng, V * C), wpe = randn(rng, T * C);
  const run = async (g: Gpu, dtype: HalfDtype, withWpe: boolean) => {
    const k = await Embedding.create(g);
    const tids = g.tensor([B, T], ids, "ids");
    const twte = g.tensor([V, C], Float32Array.from(wte), "wte", dtype);
    const twpe = upload(g, [T, C], wpe, "wpe"), tout = poisoned(g, [B, T, C]);
    const batch = g.batch();
    k.forward(batch, tids, ids, twte, withWpe ? twpe : null, tout);
    assert.equal(batch.length, g.rowChunks(V, C, { elementBytes: 2 }).length); // a dispatch a chunk
    await batch.submit();
    const [out] = await g.read([tout]);
    release(tids, twte, twpe, tout);
    return out;
  };
  const small = await Gpu.create({ maxBindingBytes: 8192 });
  try {
    assert.equal(small.rowChunks(V, C, { elementBytes: 2 }).length, 4);
    for (const dtype of DTYPES) {
      for (const withWpe of [true, false]) {
        const out = await run(small, dtype, withWpe);
        assert.deepEqual(out, await run(await gpu(), dtype, withWpe), "same bits");
        const ref = embeddingForward(ids, roundAllRef(wte, dtype), withWpe ? wpe : null, B, T, C);
        assertClose(out, ref, FWD_TOL, `${dtype} chunked out`);
      }
    }
  } finally {
    small.destroy();
  }
});

Deno.test("Embedding.backward() and other kernels refuse a half tensor naming it", async () => {
  const g = await gpu();
  const emb = await Embedding.create(g);
  const ids = new Uint32Array([0, 1]);
  const dout = g.tensor([1, 2, 2], new Float32Array(4), "dout");
  const dwte = g.tensor([2, 2], new Float32Array(4), "wte.grad", "bf16");
  const index = emb.prepareBackward(ids, 2);
  assert.throws(
    () => emb.backward(g.batch(), index, dout, dwte, null),
    /tensor "wte.grad" is stored in bf16, and its binding 3 reads f32/,
  );
  assert.throws(
    () => g.batch().fill(dwte, 1),
    /Cannot fill tensor "wte.grad": it is stored in bf16/,
  );
  index.release();
  release(dout, dwte);
});
