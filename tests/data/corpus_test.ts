import assert from "node:assert/strict";
import { buildSuite, packDocuments, pretrainCorpus } from "../../mod.ts";
import { heldOutKeys } from "../../data/corpus.ts";
import { workedAnswer } from "../../data/tasks/arithmetic.ts";
import { DEFAULT_SUITE_SIZES, TRAINED_TASKS } from "../../data/suite.ts";
import { suiteTask } from "../../data/suite.ts";

// The corpora of models/base as models/base/PRETRAIN.md's commands build them: stage 1 (stories
// and held-out tasks only), stage 2 (with task-like text) and stage 3 (reviews, worked sums,
// one-digit facts, comparisons and Toy words).
const STAGE_1 = { seed: 1, documents: 20000, heldOutExamples: 5000 };
const STAGE_2 = { seed: 1, documents: 600, heldOutExamples: 300, taskText: 1500 };
const STAGE_3 = {
  seed: 3,
  documents: 15000,
  heldOutExamples: 7000,
  reviews: 20000,
  workedSums: 18000,
  digitFacts: 8000,
  comparisons: 7000,
  toyFacts: 2800,
};

Deno.test("pretrainCorpus() holds no test or dev example of a trained task, in any wording", () => {
  const text = [STAGE_1, STAGE_2, STAGE_3].flatMap((o) => pretrainCorpus(o)).join("\n");
  const suite = buildSuite({ seed: 0, tasks: TRAINED_TASKS.map((t) => t.name) });
  let checked = 0;
  for (const { task, test, dev } of suite) {
    for (const e of [...test, ...dev]) {
      assert.ok(
        !text.includes(e.prompt + e.completion),
        `${task.name}: ${JSON.stringify(e.prompt + e.completion)} is in the corpus`,
      );
      checked++;
    }
  }
  assert.equal(checked, 5 * (DEFAULT_SUITE_SIZES.test + DEFAULT_SUITE_SIZES.dev));
  // The task-like text must not hold the held-out problems in its own wording either: each
  // sentiment test or dev sentence (a whole clause, capitalised as the corpus writes it) and
  // each test or dev sum or difference ("12 plus 5", "12 + 5", "Add 12 and 5", "Take 5 from 12").
  const sentences = heldOutKeys(suiteTask("sentiment"), 0);
  assert.equal(sentences.length, 200);
  for (const s of sentences) {
    const clause = s[0].toUpperCase() + s.slice(1) + ".";
    assert.ok(!text.includes(clause), `the review ${JSON.stringify(clause)} is in the corpus`);
  }
  // Every sum and difference the corpus writes, in each of its wordings, as the task's key.
  const written = new Set<string>();
  for (const m of text.matchAll(/(?:^|[^0-9])(\d+) (plus|\+|minus|-) (\d+) is/g)) {
    written.add(`${m[1]}${m[2] === "plus" || m[2] === "+" ? "+" : "-"}${m[3]}`);
  }
  for (const m of text.matchAll(/Add (\d+) and (\d+) to/g)) written.add(`${m[1]}+${m[2]}`);
  for (const m of text.matchAll(/Take (\d+) from (\d+) to/g)) written.add(`${m[2]}-${m[1]}`);
  let worked = 0;
  for (const m of text.matchAll(/Work out (\d+) (plus|\+|minus|-) (\d+): units/g)) {
    written.add(`${m[1]}${m[2] === "plus" || m[2] === "+" ? "+" : "-"}${m[3]}`);
    worked++;
  }
  assert.ok(worked > 40_000, `${worked} worked problems`);
  // Not vacuous: almost all of the 15,050 problems are there, none held out.
  assert.ok(written.size > 14_000, `${written.size} problems`);
  for (const key of heldOutKeys(suiteTask("arithmetic"), 0)) {
    assert.ok(!written.has(key), `the problem ${key} is in the corpus`);
  }
  assert.match(text, /\. I was (sad|upset)\./);
});

Deno.test("heldOutKeys() are the keys of taskSplits()' test and dev problems", () => {
  // The test split of the default run (test_size 100) is the first 100 keys; its dev split
  // (dev_size 50) is within the next 100.
  const [data] = buildSuite({ seed: 0, tasks: ["arithmetic"], sizes: { train: 5 } });
  const keys = heldOutKeys(suiteTask("arithmetic"), 0);
  const expr = (prompt: string) => {
    const m = prompt.match(/(\d+)\s*(?:([+-])|(plus|minus))\s*(\d+)/)!;
    return `${m[1]}${m[2] ?? (m[3] === "plus" ? "+" : "-")}${m[4]}`;
  };
  assert.deepEqual(data.test.map((e) => expr(e.prompt)), keys.slice(0, 100));
  assert.deepEqual(data.dev.map((e) => expr(e.prompt)), keys.slice(100, 200));
  assert.ok(data.train.every((e) => !keys.includes(expr(e.prompt))));
});

Deno.test("packDocuments() ends every document with the end-of-text id", () => {
  const bytes = (s: string) => [...new TextEncoder().encode(s)];
  const rows = packDocuments(["ab", "cde", "f"], bytes, 3, 256);
  assert.deepEqual(rows, [[97, 98, 256], [99, 100, 101], [256, 102, 256]]);
  // Every corpus document ends with it: as many end-of-text ids as documents in the stream.
  const docs = pretrainCorpus({ seed: 2, documents: 30, heldOutExamples: 3, taskText: 4 });
  const all = packDocuments(docs, bytes, 1, 256).flat();
  assert.equal(all.filter((id) => id === 256).length, docs.length);
  assert.equal(all.at(-1), 256);
});

Deno.test("pretrainCorpus()'s one-digit facts, comparisons and worked sums are all true", () => {
  const docs = pretrainCorpus({
    seed: 2,
    documents: 0,
    heldOutExamples: 0,
    digitFacts: 60,
    comparisons: 60,
    workedSums: 60,
  });
  assert.equal(docs.length, 180);
  let facts = 0, comparisons = 0, worked = 0;
  for (const doc of docs) {
    for (const m of doc.matchAll(/(?<=^|\. )(\d+(?: [+-] \d+)+) = (\d+)\./g)) {
      const terms = m[1].split(" ");
      let value = +terms[0];
      for (let i = 1; i < terms.length; i += 2) {
        value += (terms[i] === "+" ? 1 : -1) * +terms[i + 1];
      }
      assert.equal(value, +m[2], m[0]);
      assert.ok(value >= 0 && value <= 19, m[0]);
      facts++;
    }
    for (const m of doc.matchAll(/(\d+) is (more|less) than (\d+)\./g)) {
      assert.ok(m[2] === "more" ? +m[1] > +m[3] : +m[1] < +m[3], m[0]);
      comparisons++;
    }
    for (
      const m of doc.matchAll(/Work out (\d+) (plus|\+|minus|-) (\d+): (units [^:]*?, so \d+)\./g)
    ) {
      const add = m[2] === "plus" || m[2] === "+";
      assert.equal(m[4], workedAnswer(+m[1], +m[3], add ? "+" : "-"));
      worked++;
    }
  }
  assert.ok(
    facts >= 60 * 6 && comparisons >= 60 * 2 && worked >= 60 * 2,
    `${facts} ${comparisons} ${worked}`,
  );
});

Deno.test("each kind of pretraining text draws from its own stream: adding one leaves the rest", () => {
  const base = { seed: 5, documents: 20, heldOutExamples: 2, taskText: 3, reviews: 4 };
  const before = pretrainCorpus(base);
  const after = pretrainCorpus({ ...base, comparisons: 7, digitFacts: 5 });
  assert.equal(after.length, before.length + 12);
  const added = after.filter((d) => !before.includes(d));
  assert.equal(added.length, 12);
  assert.deepEqual(after.filter((d) => before.includes(d)).sort(), [...before].sort());
});
