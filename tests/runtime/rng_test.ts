import assert from "node:assert/strict";
import { counterHash, mix32, Rng } from "../../mod.ts";

Deno.test("Rng draws the same sequence for the same seed and different ones for other seeds", () => {
  const a = new Rng(42), b = new Rng(42), c = new Rng(43);
  const sa = Array.from({ length: 100 }, () => a.u32());
  assert.deepEqual(sa, Array.from({ length: 100 }, () => b.u32()));
  assert.notDeepEqual(sa, Array.from({ length: 100 }, () => c.u32()));
  assert.ok(sa.every((x) => Number.isInteger(x) && x >= 0 && x < 2 ** 32));
});

Deno.test("Rng.state restores the exact continuation (for resumable training)", () => {
  const a = new Rng(7);
  for (let i = 0; i < 10; i++) a.normal();
  const saved = a.state;
  const next = [a.u32(), a.float(), a.int(1000)];
  const b = new Rng(0);
  b.state = saved;
  assert.deepEqual([b.u32(), b.float(), b.int(1000)], next);
});

Deno.test("Rng.normal() has mean 0 and variance 1 within 5 standard errors", () => {
  const r = new Rng(1), n = 200_000;
  let s = 0, s2 = 0;
  for (let i = 0; i < n; i++) {
    const x = r.normal();
    s += x;
    s2 += x * x;
  }
  const mean = s / n, variance = s2 / n - mean * mean;
  assert.ok(Math.abs(mean) < 5 / Math.sqrt(n), `mean ${mean}`); // standard error of the mean: 1/√n
  assert.ok(Math.abs(variance - 1) < 5 * Math.sqrt(2 / n), `variance ${variance}`); // s.e. of the variance: √(2/n)
});

Deno.test("Rng.float() and int() stay in range and shuffle() permutes", () => {
  const r = new Rng(9);
  for (let i = 0; i < 10_000; i++) {
    const f = r.float();
    assert.ok(f >= 0 && f < 1);
    const k = r.int(7);
    assert.ok(Number.isInteger(k) && k >= 0 && k < 7);
  }
  const items = Array.from({ length: 50 }, (_, i) => i);
  const shuffled = r.shuffle(items.slice());
  assert.notDeepEqual(shuffled, items);
  assert.deepEqual(shuffled.slice().sort((x, y) => x - y), items);
});

Deno.test("mix32() is the lowbias32 hash and counterHash() separates seeds and indices", () => {
  // lowbias32 (from Chris Wellons' hash-prospector), recomputed with exact BigInt arithmetic
  const byHand = (x: number) => {
    x = Number((BigInt(x ^ (x >>> 16)) * 0x7feb352dn) & 0xffffffffn);
    x = Number((BigInt((x ^ (x >>> 15)) >>> 0) * 0x846ca68bn) & 0xffffffffn);
    return (x ^ (x >>> 16)) >>> 0;
  };
  for (const x of [0, 1, 2, 12345, 0xffffffff, 0x80000000]) assert.equal(mix32(x), byHand(x));
  const seen = new Set<number>();
  for (let s = 0; s < 8; s++) for (let i = 0; i < 1000; i++) seen.add(counterHash(s, i));
  assert.ok(seen.size >= 7990, `only ${seen.size} distinct values of 8000`);
});
