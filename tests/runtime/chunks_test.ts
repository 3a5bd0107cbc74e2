/**
 * Tensors larger than one storage binding: a forced binding limit, row chunks that fit it, views
 * that bind, read, write, copy and fill only their range.
 */
import assert from "node:assert/strict";
import { Gpu } from "../../mod.ts";
import { gpu, release } from "../helpers.ts";

const DOUBLE_WGSL = `
@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3u) {
  if (g.x < arrayLength(&dst)) { dst[g.x] = src[g.x] * 2.0; }
}`;

Deno.test("Gpu.create({ maxBindingBytes }) holds every dispatch to the forced limit", async () => {
  const g = await Gpu.create({ maxBindingBytes: 1024 });
  try {
    assert.equal(g.maxBindingBytes, 1024);
    const k = await g.kernel({
      name: "double",
      code: DOUBLE_WGSL,
      entry: "main",
      bindings: ["read", "write"],
    });
    const big = g.tensor([257], undefined, "wte.weight"), small = g.tensor([4]);
    assert.throws(
      () => g.batch().dispatch(k, [big, small], undefined, 1),
      /tensor "wte\.weight" is 1028 bytes, over this device's 1024-byte storage binding limit .*bind it in chunks/,
    );
    release(big, small);
  } finally {
    g.destroy();
  }
  await assert.rejects(
    Gpu.create({ maxBindingBytes: 1022 }),
    /maxBindingBytes 1022 is not a positive multiple of 4/,
  );
  // A limit above the device's own changes nothing.
  const shared = await gpu();
  const loose = await Gpu.create({ maxBindingBytes: 2 ** 40 });
  assert.equal(loose.maxBindingBytes, shared.maxBindingBytes);
  loose.destroy();
  assert.equal(await Gpu.get(), shared, "destroying another instance leaves the shared one");
});

Deno.test("Gpu.rowChunks() covers the rows with aligned chunks that fit one binding", async () => {
  const g = await Gpu.create({ maxBindingBytes: 4096 });
  try {
    const align = g.offsetAlignment;
    for (
      const [rows, rowElems, multiple, maxRows] of [
        [100, 16, 1, undefined],
        [1000, 9, 1, undefined], // rows of 36 bytes: chunk starts must fall on the alignment
        [1000, 9, 4, undefined],
        [1000, 7, 4, 50],
        [5, 3, 1, undefined], // fits: one chunk
      ] as const
    ) {
      const chunks = g.rowChunks(rows, rowElems, { multiple, maxRows });
      let next = 0;
      for (const [i, c] of chunks.entries()) {
        assert.equal(c.start, next, "consecutive");
        assert.ok(c.count > 0 && c.count * rowElems * 4 <= 4096, "fits one binding");
        assert.equal((c.start * rowElems * 4) % align, 0, "starts on the offset alignment");
        if (i < chunks.length - 1) assert.equal(c.count % multiple, 0, `a multiple of ${multiple}`);
        if (maxRows) assert.ok(c.count <= maxRows);
        next += c.count;
      }
      assert.equal(next, rows, "covers every row");
    }
    assert.deepEqual(g.rowChunks(5, 3), [{ start: 0, count: 5 }]);
    assert.throws(() => g.rowChunks(10, 1025), /Cannot bind rows of 4100 bytes in chunks/);
  } finally {
    g.destroy();
  }
});

Deno.test("Tensor.view() binds, reads, writes, copies and fills only its range", async () => {
  const g = await Gpu.create({ maxBindingBytes: 1024 });
  try {
    const rows = 10, C = 64; // rows of 256 bytes; the table is 2,560 bytes, over the limit
    const data = Float32Array.from({ length: rows * C }, (_, i) => i);
    const table = g.tensor([rows, C], data, "table");
    const k = await g.kernel({
      name: "double",
      code: DOUBLE_WGSL,
      entry: "main",
      bindings: ["read", "write"],
    });
    const out = g.tensor([rows, C], new Float32Array(rows * C).fill(NaN), "out");
    const batch = g.batch();
    for (const { start, count } of g.rowChunks(rows, C)) {
      const src = table.view(start * C, [count, C]), dst = out.view(start * C, [count, C]);
      batch.dispatch(k, [src, dst], undefined, Math.ceil(count * C / 64));
    }
    const tail = table.view(8 * C, [2, C]);
    batch.fill(tail, -1); // a non-zero fill runs a kernel over the view
    batch.fill(table.view(0, [C]), 0); // a zero fill clears the view's range
    batch.write(table.view(4 * C, [C]), new Float32Array(C).fill(7));
    await batch.submit();
    const [doubled, after, back] = await g.read([out, table, tail]);
    assert.deepEqual(doubled, data.map((x) => 2 * x), "every chunk ran on its own rows");
    const expected = data.slice();
    expected.fill(0, 0, C).fill(7, 4 * C, 5 * C).fill(-1, 8 * C);
    assert.deepEqual(after, expected);
    assert.deepEqual(back, new Float32Array(2 * C).fill(-1), "reading a view reads its range");
    const copy = g.tensor([C], undefined, "copy");
    const b2 = g.batch().copy(table.view(5 * C, [C]), copy);
    await b2.submit();
    assert.deepEqual(await copy.read(), data.slice(5 * C, 6 * C));
    assert.throws(
      () => table.view(3, [4]),
      /Cannot view tensor "table" from element 3: byte offset 12 is not a multiple/,
    );
    assert.throws(
      () => table.view(9 * C, [2, C]),
      /Cannot view elements 576\.\.704 of tensor "table": it has 640/,
    );
    tail.release();
    assert.ok(!table.released && tail.released, "releasing a view keeps the owner");
    const live = g.memory.liveBuffers;
    table.release();
    assert.equal(g.memory.liveBuffers, live - 1);
    const view = out.view(0, [C]);
    out.release();
    assert.throws(() => view.buffer, /Cannot use tensor "out\[0:\]": it was released/);
    copy.release();
  } finally {
    g.destroy();
  }
});

Deno.test("Batch.fill() with a non-zero value fills a tensor larger than one binding chunk by chunk", async () => {
  const g = await Gpu.create({ maxBindingBytes: 1024 });
  try {
    const t = g.tensor([1001], new Float32Array(1001), "big");
    await g.batch().fill(t, 3.5).submit();
    assert.deepEqual(await t.read(), new Float32Array(1001).fill(3.5));
    t.release();
  } finally {
    g.destroy();
  }
});
