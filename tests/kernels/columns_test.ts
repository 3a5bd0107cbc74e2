import assert from "node:assert/strict";
import { Columns, Rng } from "../../mod.ts";
import { assertClose, gpu, poisoned, randn, release, upload } from "../helpers.ts";

/** Plain-loop reference: dst[r, doff + c] (=|+=) src[r, soff + c]. */
function columnsRef(
  src: Float64Array,
  dst: Float64Array,
  b: { rows: number; w: number; lds: number; soff: number; ldd: number; doff: number },
  add: boolean,
): Float64Array {
  const out = Float64Array.from(dst);
  for (let r = 0; r < b.rows; r++) {
    for (let c = 0; c < b.w; c++) {
      const v = src[r * b.lds + b.soff + c];
      out[r * b.ldd + b.doff + c] = add ? out[r * b.ldd + b.doff + c] + v : v;
    }
  }
  return out;
}

for (
  const b of [
    { rows: 1, w: 1, lds: 1, soff: 0, ldd: 3, doff: 2 },
    { rows: 7, w: 5, lds: 5, soff: 0, ldd: 13, doff: 3 },
    { rows: 37, w: 6, lds: 19, soff: 11, ldd: 6, doff: 0 },
    { rows: 300, w: 33, lds: 40, soff: 7, ldd: 99, doff: 66 },
  ]
) {
  Deno.test(`Columns.copy() and add() match the reference (rows ${b.rows}, w ${b.w}, ${b.lds}→${b.ldd})`, async () => {
    const g = await gpu();
    const cols = await Columns.create(g);
    const rng = new Rng(b.rows * 31 + b.w);
    const src = randn(rng, b.rows * b.lds), dst0 = randn(rng, b.rows * b.ldd);
    const tsrc = upload(g, [b.rows, b.lds], src, "src");
    // copy: poisoned destination; the columns outside the block must stay NaN.
    const tdst = poisoned(g, [b.rows, b.ldd], "dst");
    let batch = g.batch();
    cols.copy(batch, tsrc, tdst, b);
    await batch.submit();
    const [copied] = await g.read([tdst]);
    const expected = columnsRef(src, new Float64Array(b.rows * b.ldd).fill(NaN), b, false);
    for (let i = 0; i < copied.length; i++) {
      assert.ok(
        Number.isNaN(expected[i]) ? Number.isNaN(copied[i]) : copied[i] === expected[i],
        `copy [${i}]: got ${copied[i]}, expected ${expected[i]}`,
      );
    }
    // add: a known destination; one f32 add of f32 values, correctly rounded.
    const tacc = upload(g, [b.rows, b.ldd], dst0, "acc");
    batch = g.batch();
    cols.add(batch, tsrc, tacc, b);
    await batch.submit();
    const [added] = await g.read([tacc]);
    assertClose(added, columnsRef(src, dst0, b, true), { rtol: 1.2e-7, atol: 1e-30 }, "add");
    release(tsrc, tdst, tacc);
  });
}

Deno.test("Columns rejects blocks outside their rows and tensors too small, naming them", async () => {
  const g = await gpu();
  const cols = await Columns.create(g);
  const src = g.tensor([2, 4], undefined, "k"), dst = g.tensor([2, 4], undefined, "qkv");
  const batch = g.batch();
  assert.throws(
    () => cols.copy(batch, src, dst, { rows: 2, w: 3, ldd: 4, doff: 2 }),
    /fall outside their rows/,
  );
  assert.throws(
    () => cols.copy(batch, src, dst, { rows: 3, w: 4 }),
    /tensor "k" \(src \(3,4\)\) has 8 elements, needs 12/,
  );
  assert.throws(() => cols.add(batch, src, dst, { rows: 2, w: -1 }), /w=-1 must be an integer/);
  release(src, dst);
});
