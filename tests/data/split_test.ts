import assert from "node:assert/strict";
import { hashSplit, splitByHash, splitItems, validateSplitRatios } from "../../data/mod.ts";

const items = Array.from({ length: 101 }, (_, i) => `item ${i}`);

Deno.test("`splitItems()` makes disjoint splits of the rounded sizes, fixed by the seed", () => {
  const ratios = { train: 0.7, dev: 0.1, test: 0.2 };
  const s = splitItems(items, { seed: 5, ratios });
  assert.deepEqual([s.train.length, s.dev.length, s.test.length], [71, 10, 20]); // round(10.1), round(20.2)
  assert.deepEqual([...s.train, ...s.dev, ...s.test].sort(), [...items].sort());
  assert.deepEqual(splitItems(items, { seed: 5, ratios }), s);
  assert.notDeepEqual(splitItems(items, { seed: 6, ratios }).test, s.test);
  const d = splitItems(items.slice(0, 10), { seed: 1 });
  assert.deepEqual([d.train.length, d.dev.length, d.test.length], [8, 1, 1]);
});

Deno.test("`validateSplitRatios()` rejects negative, non-finite and non-unit ratios", () => {
  assert.throws(
    () => validateSplitRatios({ train: 0.9, dev: 0.2, test: -0.1 }),
    /ratio "test" must be a finite number ≥ 0, got -0.1/,
  );
  assert.throws(() => validateSplitRatios({ train: NaN, dev: 0, test: 1 }), /ratio "train"/);
  assert.throws(
    () => validateSplitRatios({ train: 0.8, dev: 0.1, test: 0.2 }),
    /ratios must sum to 1, got 0.8 \+ 0.1 \+ 0.2/,
  );
  assert.throws(
    () => splitItems(items, { seed: 0, ratios: { train: 1, dev: 1, test: 0 } }),
    /sum to 1/,
  );
  validateSplitRatios({ train: 1, dev: 0, test: 0 });
});

Deno.test("`hashSplit()` depends on the key and seed only, with sizes near the ratios", () => {
  const ratios = { train: 0.6, dev: 0.2, test: 0.2 };
  const keys = Array.from({ length: 5000 }, (_, i) => `k${i}`);
  const s = splitByHash(keys, (k) => k, { seed: 1, ratios });
  // Binomial(5000, 0.2) has standard deviation √(5000·0.2·0.8) ≈ 28: allow 5σ.
  assert.ok(Math.abs(s.test.length - 1000) < 140, `test has ${s.test.length}`);
  assert.ok(Math.abs(s.dev.length - 1000) < 140, `dev has ${s.dev.length}`);
  assert.equal(s.train.length + s.dev.length + s.test.length, 5000);
  // Adding items never moves an existing one.
  const more = splitByHash([...keys, "extra"], (k) => k, { seed: 1, ratios });
  assert.deepEqual(more.test.filter((k) => k !== "extra"), s.test);
  const moved = keys.filter((k) => hashSplit(k, ratios, 1) !== hashSplit(k, ratios, 2)).length;
  assert.ok(moved > 1000, `another seed moved only ${moved} keys`);
});
