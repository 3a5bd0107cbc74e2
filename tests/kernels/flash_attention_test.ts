import assert from "node:assert/strict";
import { Rng } from "../../mod.ts";
import { FlashAttention } from "../../kernels/flash_attention.ts";
import { assertClose, gpu, poisoned, randn, release, upload } from "../helpers.ts";
import { attentionBackward, attentionForward } from "../ref/attention.ts";
import { attentionLse } from "../ref/flash_attention.ts";

// The tolerance of tests/kernels/attention_test.ts, for the same reasons: f32 dot products over hs
// terms and sums over up to T terms of magnitude ~1 that can cancel, so the error is absolute
// (measured there ≤ 3.9e-6 at T = 1024); the online softmax adds one rescaling per key, a few
// ulps of a value ≤ 1. An indexing, masking or block-skipping error is off by O(0.1).
const TOL = { rtol: 2e-5, atol: 2e-5 };

/**
 * Shapes (B, T, C, H, kvHeads): odd T across several 64-row query blocks and key blocks of 64, 48
 * and 24 rows (head sizes 5, 33 and 70: 2, 9 and 18 vec4s per row, so the last vec4 is partial),
 * multi-head, grouped-query (g = 3) and multi-query heads.
 */
const SHAPES: [number, number, number, number, number][] = [
  [2, 67, 15, 3, 3],
  [1, 130, 99, 3, 1],
  [2, 37, 140, 2, 2],
  [1, 97, 30, 6, 2],
];

for (const [B, T, C, H, kvHeads] of SHAPES) {
  const hs = C / H;
  Deno.test(`FlashAttention forward and backward match the float64 reference at B ${B}, T ${T}, hs ${hs}, H ${H}, kvHeads ${kvHeads}`, async () => {
    const g = await gpu();
    const flash = FlashAttention.for(g);
    await flash.prepare(hs);
    const rng = new Rng(T * 31 + hs);
    const W = (H + 2 * kvHeads) * hs;
    const qkv = randn(rng, B * T * W), dout = randn(rng, B * T * C);
    const tq = upload(g, [B, T, W], qkv, "qkv"), tdo = upload(g, [B, T, C], dout, "dout");
    const out = poisoned(g, [B, T, C], "out"), lse = poisoned(g, [B, H, T], "lse");
    const dsum = poisoned(g, [B, H, T], "dsum"), dqkv = poisoned(g, [B, T, W], "dqkv");
    try {
      const batch = g.batch();
      flash.forward(batch, tq, out, lse, B, T, C, H, kvHeads);
      flash.backward(batch, tdo, tq, out, lse, dsum, dqkv, B, T, C, H, kvHeads);
      await batch.submit();
      const [y, l, dq] = await g.read([out, lse, dqkv]);
      const ref = attentionForward(qkv, B, T, C, H, kvHeads);
      assertClose(y, ref.out, TOL, "out");
      assertClose(l, attentionLse(qkv, B, T, C, H, kvHeads), TOL, "lse");
      assertClose(dq, attentionBackward(dout, qkv, ref.att, B, T, C, H, kvHeads), TOL, "dqkv");
    } finally {
      release(tq, tdo, out, lse, dsum, dqkv);
    }
  });
}

Deno.test("FlashAttention refuses unprepared head sizes, shapes over the loop cap and aliased outputs", async () => {
  const g = await gpu();
  const flash = FlashAttention.for(g);
  const t = g.tensor([4096], undefined, "t"), u = g.tensor([4096], undefined, "u");
  try {
    assert.throws(
      () => flash.forward(g.batch(), t, u, u, 1, 4, 12, 1),
      /head size 12 is not prepared/,
    );
    // 64 query heads on one key/value head at T = 1,024: the key pass loops 64·(1,024 + 16) times.
    assert.equal(flash.accepts(1024, 1, 64), false);
    assert.throws(() => flash.forward(g.batch(), t, u, u, 1, 1024, 64, 64, 1), /loop iterations/);
    await flash.prepare(5);
    assert.throws(
      () => flash.backward(g.batch(), t, t, t, t, u, t, 1, 4, 5, 1),
      /dqkv "t" shares a buffer/,
    );
  } finally {
    release(t, u);
  }
});

Deno.test("FlashAttention.use() is off on software adapters unless enabled, and compiles on demand", async () => {
  const g = await gpu();
  const flash = FlashAttention.for(g);
  assert.equal(flash.enabled, !g.isSoftware);
  const was = flash.enabled;
  try {
    flash.enabled = true;
    // hs 7 (2 vec4s per row) shares the kernels of hs 5 prepared above; hs 17 starts compiling.
    await flash.prepare(5);
    assert.equal(flash.use(9, 7, 1), true);
    assert.equal(flash.use(9, 17, 1), false);
    await flash.prepare(17);
    assert.equal(flash.use(9, 17, 1), true);
    flash.enabled = false;
    assert.equal(flash.use(9, 7, 1), false);
  } finally {
    flash.enabled = was;
  }
});
