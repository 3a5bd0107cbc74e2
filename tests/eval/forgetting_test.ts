import assert from "node:assert/strict";
import { forgettingMarkdown, forgettingReport } from "../../mod.ts";

Deno.test("`forgettingReport()` computes per-task deltas, their mean and the perplexity change", () => {
  const r = forgettingReport({
    base: { reverse_words: 40, uppercase: 70, count_words: 12.5, arithmetic: 99 },
    tuned: { reverse_words: 31, uppercase: 72, count_words: 12.5, arithmetic: 1 },
    tasks: ["reverse_words", "uppercase", "count_words"],
    perplexity: { base: 8, tuned: 10 },
  });
  // Deltas -9, +2, 0 (arithmetic is not held out, so it is left out); mean -7/3.
  assert.deepEqual(r.tasks.map((t) => t.delta), [-9, 2, 0]);
  assert.equal(r.mean.delta, -7 / 3);
  assert.equal(r.mean.base, (40 + 70 + 12.5) / 3);
  assert.equal(r.mean.tuned, (31 + 72 + 12.5) / 3);
  assert.deepEqual(r.perplexity, { base: 8, tuned: 10, delta: 2, ratio: 1.25 });
  assert.deepEqual(r.names, { base: "base", tuned: "tuned" });
});

Deno.test("`forgettingMarkdown()` prints a signed table with a mean row and the perplexity line", () => {
  const md = forgettingMarkdown(forgettingReport({
    base: { a: 50, b: 20 },
    tuned: { a: 45.5, b: 21 },
    perplexity: { base: 4, tuned: 5 },
    names: { base: "gpt2", tuned: "gpt2+lora" },
  }));
  assert.equal(
    md,
    [
      "| held-out task | gpt2 | gpt2+lora | Δ |",
      "| --- | ---: | ---: | ---: |",
      "| a | 50.00 | 45.50 | -4.50 |",
      "| b | 20.00 | 21.00 | +1.00 |",
      "| **mean** | 35.00 | 33.25 | -1.75 |",
      "",
      "Perplexity on general text: gpt2 4.000, gpt2+lora 5.000 (Δ +1.000, ×1.250).",
      "",
    ].join("\n"),
  );
});

Deno.test("`forgettingReport()` names a task missing from a table, a non-finite score and bad perplexities", () => {
  assert.throws(
    () => forgettingReport({ base: { a: 1, b: 2 }, tuned: { a: 1 } }),
    /tuned has no score for task "b"/,
  );
  assert.throws(
    () => forgettingReport({ base: { a: 1 }, tuned: { a: NaN } }),
    /tuned's score for task "a" is NaN/,
  );
  assert.throws(
    () => forgettingReport({ base: { a: 1 }, tuned: { a: 1 }, tasks: [] }),
    /no tasks/,
  );
  assert.throws(
    () => forgettingReport({ base: { a: 1 }, tuned: { a: 1 }, perplexity: { base: 0, tuned: 2 } }),
    /perplexities must be positive/,
  );
  // "constructor" is not a task just because every object has one.
  assert.throws(
    () => forgettingReport({ base: { a: 1 }, tuned: { a: 1 }, tasks: ["constructor"] }),
    /base has no score for task "constructor"/,
  );
});
