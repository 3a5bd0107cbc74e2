import assert from "node:assert/strict";
import { formatMixture, mixTasks, mixtureRates } from "../../data/mod.ts";

const close = (actual: number, expected: number) =>
  assert.ok(Math.abs(actual - expected) < 1e-12, `${actual} ≠ ${expected}`); // rounding of a few divisions

Deno.test("`mixtureRates()` is examples-proportional with a cap", () => {
  // min(n, 1000) = 1000, 300, 100 of a total 1400.
  const r = mixtureRates({ a: 5000, b: 300, c: 100 }, { cap: 1000 });
  close(r.a, 1000 / 1400);
  close(r.b, 300 / 1400);
  close(r.c, 100 / 1400);
  // Without the (default 3000) cap binding, shares follow the sizes.
  const u = mixtureRates({ a: 200, b: 600 });
  assert.deepEqual(u, { a: 0.25, b: 0.75 });
  // The default cap is 3000: 3000 vs 1000.
  assert.deepEqual(mixtureRates({ a: 9000, b: 1000 }), { a: 0.75, b: 0.25 });
});

Deno.test("`mixtureRates()` lets explicit weights override the rule", () => {
  // c is fixed at 0.5; a and b share the other 0.5 as min(n, cap) = 1000 : 300.
  const r = mixtureRates({ a: 5000, b: 300, c: 100 }, { cap: 1000, weights: { c: 0.5 } });
  close(r.c, 0.5);
  close(r.a, 0.5 * 1000 / 1300);
  close(r.b, 0.5 * 300 / 1300);
  // When every task has a weight, the weights are relative.
  assert.deepEqual(mixtureRates({ a: 1, b: 1, c: 1 }, { weights: { a: 2, b: 1, c: 1 } }), {
    a: 0.5,
    b: 0.25,
    c: 0.25,
  });
  // A weight of 0 leaves a task out.
  assert.deepEqual(mixtureRates({ a: 10, b: 30 }, { weights: { a: 0 } }), { a: 0, b: 1 });
});

Deno.test("`mixtureRates()` rejects bad sizes, weights and caps, naming the task", () => {
  assert.throws(() => mixtureRates({}), /there are no tasks/);
  assert.throws(
    () => mixtureRates({ a: 1 }, { weights: { z: 1 } }),
    /weight for unknown task "z" \(tasks: a\)/,
  );
  assert.throws(
    () => mixtureRates({ a: 1, b: 1 }, { weights: { a: -1 } }),
    /weight of task "a" must be a finite number ≥ 0, got -1/,
  );
  assert.throws(
    () => mixtureRates({ a: 1, b: 1, c: 1 }, { weights: { a: 0.7, b: 0.6 } }),
    /explicit weights sum to 1.3 > 1 while other tasks \(c\) have none/,
  );
  assert.throws(() => mixtureRates({ a: -2 }), /task "a" has -2 examples/);
  assert.throws(() => mixtureRates({ a: 1 }, { cap: 0 }), /cap must be > 0/);
  assert.throws(
    () => mixtureRates({ a: 0, b: 4 }, { weights: { a: 0.5 } }),
    /task "a" has weight 0.5 but no examples/,
  );
  assert.throws(
    () => mixtureRates({ a: 1, b: 1 }, { weights: { a: 0, b: 0 } }),
    /every weight is 0/,
  );
});

function pool(name: string, n: number) {
  return Array.from({ length: n }, (_, i) => ({ prompt: `${name}${i}`, completion: "." }));
}

Deno.test("`mixTasks()` gives each task its largest-remainder count and reports the proportions", () => {
  const tasks = { a: pool("a", 5000), b: pool("b", 300), c: pool("c", 100) };
  // Targets 10·(1000, 300, 100)/1400 = 7.14, 2.14, 0.71: floors 7, 2, 0 and the one left to c.
  const m = mixTasks(tasks, { cap: 1000, seed: 0, size: 10 });
  assert.deepEqual(m.report.map((r) => [r.task, r.count]), [["a", 7], ["b", 2], ["c", 1]]);
  assert.deepEqual(m.report[2], {
    task: "c",
    available: 100,
    rate: 100 / 1400,
    count: 1,
    fraction: 0.1,
    epochs: 0.01,
  });
  assert.equal(m.examples.length, 10);
  for (const name of ["a", "b", "c"]) {
    const mine = m.examples.filter((e) => e.task === name);
    assert.equal(mine.length, m.report.find((r) => r.task === name)!.count);
    assert.ok(mine.every((e) => e.prompt.startsWith(name)));
  }
  // The default size is Σ min(n, cap) = 1400, matching the rates exactly.
  const full = mixTasks(tasks, { cap: 1000, seed: 0 });
  assert.deepEqual(full.report.map((r) => r.count), [1000, 300, 100]);
  assert.equal(
    formatMixture(full.report),
    [
      "task  available    count   share  epochs",
      "a          5000     1000   71.4%    0.20",
      "b           300      300   21.4%    1.00",
      "c           100      100    7.1%    1.00",
    ].join("\n"),
  );
});

Deno.test("`mixTasks()` is deterministic for a seed, differs across seeds and cycles small tasks", () => {
  const tasks = { a: pool("a", 50), b: pool("b", 3) };
  const opts = { seed: 11, size: 40, weights: { b: 0.25 } };
  const m = mixTasks(tasks, opts);
  assert.deepEqual(mixTasks(tasks, opts), m);
  assert.notDeepEqual(mixTasks(tasks, { ...opts, seed: 12 }).examples, m.examples);
  // b: 10 examples from 3, so every example 3 or 4 times and each pass of 3 without repeats.
  const bs = m.examples.filter((e) => e.task === "b").map((e) => e.prompt);
  assert.equal(bs.length, 10);
  const counts = ["b0", "b1", "b2"].map((p) => bs.filter((x) => x === p).length);
  assert.deepEqual([...counts].sort(), [3, 3, 4]);
  assert.equal(m.report[1].epochs, 10 / 3);
  // a: 30 of 50, no repeats.
  assert.equal(new Set(m.examples.filter((e) => e.task === "a").map((e) => e.prompt)).size, 30);
});
