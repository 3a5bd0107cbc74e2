/**
 * Tensors of packed halves (runtime/tensor.ts): upload rounding and raw bits, read-back widening,
 * views, row ranges and row chunks in 2-byte elements, and the writes and fills that would corrupt
 * them refused by name.
 */
import assert from "node:assert/strict";
import { decodeHalf, encodeHalf, Gpu, type HalfDtype, Rng } from "../../mod.ts";
import { gpu } from "../helpers.ts";
import { roundAllRef } from "../ref/half.ts";

const DTYPES: HalfDtype[] = ["f16", "bf16"];

for (const dtype of DTYPES) {
  Deno.test(`gpu.tensor(…, "${dtype}") stores rounded values in half the bytes and reads them back widened`, async () => {
    const g = await gpu();
    const rng = new Rng(1);
    // An odd count: the last word's high half is padding.
    const data = Float32Array.from({ length: 37 }, (_, i) => rng.normal() * 2 ** ((i % 9) - 4));
    const t = g.tensor([37], data, "w", dtype);
    assert.equal(t.size, 37);
    assert.equal(t.byteLength, 76);
    assert.equal(t.elementBytes, 2);
    const expected = Float32Array.from(roundAllRef(data, dtype));
    assert.deepEqual(await t.read(), expected);
    // Raw bits are kept exactly; an even-offset partial write covers whole words.
    const bits = encodeHalf(new Float32Array([1.5, -3, 0.25, 7]), dtype);
    t.write(bits, 10);
    const back = await t.read();
    assert.deepEqual([...back.subarray(10, 14)], [1.5, -3, 0.25, 7]);
    assert.deepEqual(back.subarray(0, 10), expected.subarray(0, 10));
    assert.deepEqual(back.subarray(14), expected.subarray(14));
    assert.deepEqual(decodeHalf(bits, dtype), new Float32Array([1.5, -3, 0.25, 7]));
    t.write(new Float32Array([5]), 36); // the odd tail
    assert.equal((await t.read())[36], 5);
    t.release();
  });
}

Deno.test("a half tensor refuses writes that would split a word, raw and recorded float writes, fills", async () => {
  const g = await gpu();
  const t = g.tensor([8], new Float32Array(8), "w", "bf16");
  assert.throws(() => t.write(new Float32Array(2), 1), /start at an even element/);
  assert.throws(() => t.write(new Float32Array(3), 2), /cover whole words/);
  assert.throws(
    () => t.write(new Uint32Array(2)),
    /Cannot write integer data into tensor "w": it is stored in bf16/,
  );
  assert.throws(
    () => g.write(t, new Float32Array(2)),
    /Cannot write float or int32 data into tensor "w": it is stored in bf16/,
  );
  assert.throws(
    () => g.batch().write(t, new Float32Array(2)),
    /Cannot record a write into tensor "w": it is stored in bf16/,
  );
  assert.throws(() => g.batch().fill(t, 0), /Cannot fill tensor "w": it is stored in bf16/);
  const f = g.tensor([2], new Float32Array(2), "f");
  assert.throws(
    () => f.write(new Uint16Array(2)),
    /Cannot write 16-bit data into tensor "f": it is stored in f32/,
  );
  t.release();
  f.release();
});

Deno.test("views, rowRange and rowChunks of a half tensor count 2-byte elements", async () => {
  const g = await Gpu.create({ maxBindingBytes: 1024 });
  try {
    const align = g.offsetAlignment;
    // 100 rows of 7 halves (14 bytes): 1,400 bytes, over the 1,024-byte limit.
    const rows = 100, C = 7, data = Float32Array.from({ length: rows * C }, (_, i) => i);
    const t = g.tensor([rows, C], data, "table", "f16");
    const chunks = g.rowChunks(rows, C, { elementBytes: 2 });
    assert.ok(chunks.length > 1);
    for (const { start, count } of chunks) {
      assert.equal((start * C * 2) % align, 0, "each chunk starts on the alignment");
      assert.ok(Math.ceil((count * C) / 2) * 4 <= 1024);
      const v = t.view(start * C, [count, C]);
      assert.equal(v.dtype, "f16");
      assert.deepEqual(await v.read(), data.subarray(start * C, (start + count) * C));
    }
    // Rows 41..43 from an aligned view start and an element offset.
    const r = g.rowRange(t, 41, 3);
    assert.equal(r.tensor.byteOffset % align, 0);
    assert.equal(r.tensor.byteOffset + 2 * r.offset, 41 * C * 2);
    const back = await r.tensor.read();
    assert.deepEqual(back.subarray(r.offset, r.offset + 3 * C), data.subarray(41 * C, 44 * C));
    assert.throws(() => t.view(3, [2]), /binding offset alignment/);
    t.release();
  } finally {
    g.destroy();
  }
});
