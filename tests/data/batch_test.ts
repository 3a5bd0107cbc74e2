import assert from "node:assert/strict";
import { IGNORE_INDEX as X } from "../../kernels/crossentropy.ts";
import { Batcher, type TokenizedExample } from "../../data/mod.ts";

/** Example i has ids [10i+1 .. 10i+len] with the first id masked. */
function examples(lengths: number[]): TokenizedExample[] {
  return lengths.map((len, i) => {
    const ids = Array.from({ length: len }, (_, t) => 10 * i + t + 1);
    return { ids, labels: ids.map((id, t) => (t === 0 ? X : id)), truncated: false };
  });
}

Deno.test("`Batcher.batch()` right-pads rows with the pad id and labels -100", () => {
  const batcher = new Batcher(examples([3, 1, 4]), {
    batchSize: 2,
    seqLen: 5,
    padId: 99,
    seed: 0,
    shuffle: false,
  });
  assert.equal(batcher.batchesPerEpoch, 2);
  const b0 = batcher.batch(0, 0);
  assert.deepEqual([...b0.ids], [1, 2, 3, 99, 99, 11, 99, 99, 99, 99]);
  assert.deepEqual([...b0.labels], [X, 2, 3, X, X, X, X, X, X, X]);
  assert.deepEqual([b0.batchSize, b0.seqLen, b0.rows, b0.tokens, b0.targets], [2, 5, 2, 4, 2]);
  assert.deepEqual(b0.indices, [0, 1]);
  const b1 = batcher.batch(0, 1); // the last batch: one example and one all-pad row
  assert.deepEqual([...b1.ids], [21, 22, 23, 24, 99, 99, 99, 99, 99, 99]);
  assert.deepEqual([...b1.labels], [X, 22, 23, 24, X, X, X, X, X, X]);
  assert.deepEqual([b1.rows, b1.tokens, b1.targets], [1, 4, 3]);
});

Deno.test("`Batcher.epoch()` visits every example once, in an order fixed by the seed and epoch", () => {
  const data = examples(Array.from({ length: 23 }, (_, i) => 1 + (i % 5)));
  const opts = { batchSize: 4, seqLen: 6, padId: 0, seed: 7 };
  const a = new Batcher(data, opts), b = new Batcher(data, opts);
  const seen = [...a.epoch(0)].flatMap((x) => x.indices);
  assert.deepEqual([...seen].sort((x, y) => x - y), data.map((_, i) => i));
  assert.notDeepEqual(seen, data.map((_, i) => i)); // shuffled (1 in 23! to fail by chance)
  assert.deepEqual(a.order(0), b.order(0));
  assert.deepEqual([...a.epoch(1)].map((x) => [...x.ids]), [...b.epoch(1)].map((x) => [...x.ids]));
  assert.notDeepEqual(a.order(0), a.order(1));
  assert.notDeepEqual(a.order(0), new Batcher(data, { ...opts, seed: 8 }).order(0));
});

Deno.test("`Batcher.stream()` resumes at a position with the same batches", () => {
  const batcher = new Batcher(examples([1, 2, 3, 4, 5]), {
    batchSize: 2,
    seqLen: 5,
    padId: 0,
    seed: 3,
  });
  const it = batcher.stream();
  const first = Array.from({ length: 7 }, () => it.next().value!);
  assert.deepEqual(first.map((b) => [b.epoch, b.index]), [
    [0, 0],
    [0, 1],
    [0, 2],
    [1, 0],
    [1, 1],
    [1, 2],
    [2, 0],
  ]);
  const resumed = batcher.stream({ epoch: 1, index: 1 });
  for (const expected of first.slice(4)) {
    const got = resumed.next().value!;
    assert.deepEqual([...got.ids], [...expected.ids]);
    assert.deepEqual(got.indices, expected.indices);
  }
  assert.deepEqual([...first[1].ids], [...batcher.batch(0, 1).ids]);
});

Deno.test("`Batcher` with dropLast drops the partial batch", () => {
  const batcher = new Batcher(examples([1, 1, 1, 1, 1]), {
    batchSize: 2,
    seqLen: 2,
    padId: 0,
    seed: 0,
    dropLast: true,
  });
  assert.equal(batcher.batchesPerEpoch, 2);
  assert.deepEqual([...batcher.epoch(0)].map((b) => b.rows), [2, 2]);
  assert.throws(() => batcher.batch(0, 2), /index 2 is outside 0\.\.1/);
});

Deno.test("`new Batcher()` rejects examples longer than seqLen and bad options", () => {
  const opts = { batchSize: 2, seqLen: 3, padId: 0, seed: 0 };
  assert.throws(
    () => new Batcher(examples([2, 4]), opts),
    /Cannot batch example #1: 4 ids and 4 labels/,
  );
  assert.throws(() => new Batcher([], opts), /there are no examples/);
  assert.throws(
    () => new Batcher(examples([1]), { ...opts, batchSize: 0 }),
    /batchSize must be a positive integer/,
  );
  assert.throws(() => new Batcher(examples([1]), { ...opts, padId: -1 }), /padId must be/);
  assert.throws(
    () => new Batcher(examples([1]), { ...opts, dropLast: true }),
    /dropLast with 1 examples and batchSize 2 leaves no batch/,
  );
  const mismatched = [{ ids: [1, 2], labels: [X], truncated: false }];
  assert.throws(() => new Batcher(mismatched, opts), /2 ids and 1 labels/);
});
