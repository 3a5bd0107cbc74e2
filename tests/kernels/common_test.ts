import assert from "node:assert/strict";
import { checkLoops, grid, LOOP_CAP, Params } from "../../mod.ts";

Deno.test("Params packs scalars in struct order, padded to 16 bytes", () => {
  const bytes = new Params().u32(7).f32(0.5).i32(-3).u32(1).u32(2).bytes;
  assert.equal(bytes.byteLength, 32);
  const v = new DataView(bytes);
  assert.deepEqual([
    v.getUint32(0, true),
    v.getFloat32(4, true),
    v.getInt32(8, true),
    v.getUint32(16, true),
  ], [7, 0.5, -3, 2]);
  assert.throws(() => new Params().u32(-1), /Cannot pass -1 as a u32/);
  assert.throws(() => new Params().u32(1.5), /Cannot pass 1.5 as a u32/);
});

Deno.test("grid() folds more than 65,535 workgroups into two dimensions without losing any", () => {
  assert.deepEqual(grid(1000, 256), [4, 1]);
  for (const n of [65535 * 256, 65535 * 256 + 1, 10_000_000, 123_456_789]) {
    const [x, y] = grid(n, 256);
    assert.ok(x <= 65535 && y <= 65535);
    assert.ok(x * y * 256 >= n, `grid(${n}) covers ${x * y * 256}`);
  }
});

Deno.test("checkLoops() throws above Mesa's loop cap and names the kernel", () => {
  checkLoops("k", LOOP_CAP, "a row");
  assert.throws(
    () => checkLoops("attention.forward", LOOP_CAP + 1, "T·hs"),
    /Cannot run kernel "attention.forward": T·hs needs 65536/,
  );
});
