import assert from "node:assert/strict";
import { helmMarkdown, helmReport, perturbTask, perturbText } from "../../mod.ts";

Deno.test("`helmReport()` computes ECE, worst-case robustness, tokens/s and the means by hand", () => {
  const report = helmReport([
    {
      task: "mc",
      metric: "acc",
      n: 4,
      score: 50,
      // 10 bins: 0.95 and 0.91 fall in (0.9, 1] with accuracy 1/2 and mean confidence 0.93;
      // 0.55 in (0.5, 0.6] right (|1 - 0.55| = 0.45); 0.35 in (0.3, 0.4] wrong (0.35).
      // ECE = 2/4 · 0.43 + 1/4 · 0.45 + 1/4 · 0.35 = 0.415.
      confidences: [0.95, 0.91, 0.55, 0.35],
      correct: [true, false, true, false],
      perturbed: { typos: 25, lowercase: 75 },
      tokens: 300,
      seconds: 1.5,
    },
    {
      task: "gen",
      metric: "bleu",
      n: 2,
      score: 30,
      perturbed: { typos: 10, lowercase: 35 },
      tokens: 100,
      seconds: 0.5,
    },
  ]);
  const [mc, gen] = report.tasks;
  assert.ok(Math.abs(mc.calibrationError! - 0.415) < 1e-12, `ECE ${mc.calibrationError}`);
  assert.equal(gen.calibrationError, null);
  // Robustness: the worst of clean and perturbed; a perturbation that helps does not count.
  assert.equal(mc.robustness, 25);
  assert.equal(gen.robustness, 10);
  assert.equal(mc.tokensPerSecond, 200);
  assert.equal(gen.tokensPerSecond, 200);
  assert.deepEqual(report.perturbations, ["typos", "lowercase"]);
  assert.equal(report.mean.accuracy, 40);
  assert.equal(report.mean.robustness, 17.5);
  assert.ok(
    Math.abs(report.mean.calibrationError! - 0.415) < 1e-12,
    "mean over tasks that have it",
  );
  // 400 tokens in 2 s, not the mean of the rates.
  assert.equal(report.mean.tokensPerSecond, 200);
  const md = helmMarkdown(report);
  assert.equal(
    md,
    [
      "| task | metric | n | accuracy | ECE (10 bins) | robustness | typos | lowercase | tokens/s |",
      "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
      "| mc | acc | 4 | 50.00 | 0.4150 | 25.00 | 25.00 | 75.00 | 200.0 |",
      "| gen | bleu | 2 | 30.00 | – | 10.00 | 10.00 | 35.00 | 200.0 |",
      "| **mean** |  |  | 40.00 | 0.4150 | 17.50 | 17.50 | 55.00 | 200.0 |",
      "",
    ].join("\n"),
  );
  assert.deepEqual(JSON.parse(JSON.stringify(report)), report, "the report is plain JSON");
});

Deno.test("`helmReport()` rejects tasks perturbed differently and an empty task list", () => {
  const base = { metric: "acc", n: 1, score: 1, tokens: 1, seconds: 1 };
  assert.throws(
    () =>
      helmReport([
        { ...base, task: "a", perturbed: { typos: 1 } },
        { ...base, task: "b", perturbed: { lowercase: 1 } },
      ]),
    /task "b" was perturbed by lowercase, task "a" by typos/,
  );
  assert.throws(() => helmReport([]), /no tasks/);
});

Deno.test("`perturbText()` typos are seeded, replace letters by QWERTY neighbours and keep case and other characters", () => {
  const text = "The quick brown Fox, 42 times!";
  const typos = { name: "typos", kind: "typos" as const, rate: 1 };
  const a = perturbText(text, typos, 7);
  assert.equal(a, perturbText(text, typos, 7), "same seed, same typos");
  assert.notEqual(a, perturbText(text, typos, 8), "another seed, other typos");
  // Staggered rows: t sits above f and g, h below y and u and above b and n.
  const neighbours: Record<string, string> = {
    t: "rygf",
    h: "gjyubn",
    e: "wrsd",
    f: "dgrtcv",
    o: "ipkl",
    q: "wa",
    u: "yijh",
    i: "uokj",
    c: "xvdf",
    k: "jlio",
    b: "vngh",
    r: "etdf",
    w: "qeas",
    n: "bmhj",
    x: "zcsd",
    m: "njk",
    s: "adwezx",
  };
  [...text].forEach((ch, i) => {
    const out = a[i];
    if (!/[a-z]/i.test(ch)) return assert.equal(out, ch, `non-letter ${i} kept`);
    assert.notEqual(out.toLowerCase(), ch.toLowerCase(), `letter ${i} changed at rate 1`);
    assert.equal(out === out.toUpperCase(), ch === ch.toUpperCase(), `case of ${i} kept`);
    const near = neighbours[ch.toLowerCase()];
    if (near) assert.ok(near.includes(out.toLowerCase()), `${ch} → ${out} is a neighbouring key`);
  });
  assert.equal(perturbText(text, { ...typos, rate: 0 }, 7), text);
  assert.equal(
    perturbText(text, { name: "lc", kind: "lowercase" }, 0),
    "the quick brown fox, 42 times!",
  );
  assert.throws(() => perturbText(text, { ...typos, rate: 2 }, 0), /typo rate must be in \[0, 1\]/);
});

Deno.test("`perturbTask()` changes only each document's input, seeded per document, and keeps few-shot examples clean", () => {
  const docs = [
    { prompt: "Review: good film\nAnswer:", input: "good film", choices: [" yes", " no"], gold: 0 },
    { prompt: "plain prompt", targets: ["x"] },
  ];
  const task = { name: "t", kind: "multiple_choice" as const, docs };
  const up = perturbTask(task, { name: "uc", kind: "uppercase" }, 0);
  assert.equal(up.docs[0].prompt, "Review: GOOD FILM\nAnswer:");
  assert.equal(up.docs[1].prompt, "PLAIN PROMPT", "no input: the whole prompt");
  assert.deepEqual(up.docs[0].choices, [" yes", " no"]);
  assert.equal(up.fewShotDocs, docs, "few-shot examples come from the clean documents");
  const typos = { name: "typos", kind: "typos" as const, rate: 0.5 };
  assert.deepEqual(perturbTask(task, typos, 3), perturbTask(task, typos, 3));
  assert.notDeepEqual(perturbTask(task, typos, 3).docs, perturbTask(task, typos, 4).docs);
});
