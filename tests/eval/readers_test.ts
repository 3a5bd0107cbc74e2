import assert from "node:assert/strict";
import {
  buildContext,
  DataError,
  mmluSubject,
  mmluTask,
  parseCsv,
  readBigBenchTask,
  readGlue,
  readMmluCsv,
} from "../../mod.ts";

import abstractAlgebraDev from "./fixtures/abstract_algebra_dev.csv" with { type: "text" };
import abstractAlgebraTest from "./fixtures/abstract_algebra_test.csv" with { type: "text" };
import anatomyTest from "./fixtures/anatomy_test.csv" with { type: "text" };
import badTest from "./fixtures/bad_test.csv" with { type: "text" };
import bigbenchBad from "./fixtures/bigbench_bad/task.json" with { type: "text" };
import bigbenchGen from "./fixtures/bigbench_gen/task.json" with { type: "text" };
import bigbenchMc from "./fixtures/bigbench_mc/task.json" with { type: "text" };
import boolqVal from "./fixtures/boolq_val.jsonl" with { type: "text" };
import rteBad from "./fixtures/rte_bad.jsonl" with { type: "text" };
import rteVal from "./fixtures/rte_val.jsonl" with { type: "text" };
import sst2Bad from "./fixtures/sst2_bad.tsv" with { type: "text" };
import sst2Dev from "./fixtures/sst2_dev.tsv" with { type: "text" };

// The fixtures are imported as text, so the tests need no read permission.
const FIXTURES: Record<string, string> = {
  "abstract_algebra_dev.csv": abstractAlgebraDev,
  "abstract_algebra_test.csv": abstractAlgebraTest,
  "anatomy_test.csv": anatomyTest,
  "bad_test.csv": badTest,
  "bigbench_bad/task.json": bigbenchBad,
  "bigbench_gen/task.json": bigbenchGen,
  "bigbench_mc/task.json": bigbenchMc,
  "boolq_val.jsonl": boolqVal,
  "rte_bad.jsonl": rteBad,
  "rte_val.jsonl": rteVal,
  "sst2_bad.tsv": sst2Bad,
  "sst2_dev.tsv": sst2Dev,
};
const read = (name: string) => FIXTURES[name];

/** The `file:line` of every issue of the DataError `fn` throws. */
function issuesOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof DataError, `expected a DataError, got ${e}`);
    return e.issues.map((i) => `${i.where} ${i.message}`);
  }
  throw new Error("expected an error");
}

Deno.test("`parseCsv()` reads quoted commas, doubled quotes, multi-line fields and CRLF as Python's csv does", () => {
  // Python: list(csv.reader(io.StringIO(text, newline=""))) gives these rows (blank line skipped,
  // as pandas does; csv.reader yields [] for it).
  const text = 'a,"b, ""c""",\r\n\n"multi\nline",d\n"",x';
  const rows = parseCsv(text, "t.csv");
  assert.deepEqual(rows.map((r) => r.fields), [["a", 'b, "c"', ""], ["multi\nline", "d"], [
    "",
    "x",
  ]]);
  assert.deepEqual(rows.map((r) => r.line), [1, 3, 5]);
});

Deno.test("`parseCsv()` names the file and line of an unclosed quote and of text after a closing quote", () => {
  assert.deepEqual(issuesOf(() => parseCsv('ok,1\n"open,2\nmore', "q.csv")), [
    "q.csv:2 a quoted field is not closed",
  ]);
  assert.deepEqual(issuesOf(() => parseCsv('ok\n"a"b,c', "q.csv")), [
    'q.csv:2 unexpected "b" after a closing quote',
  ]);
});

Deno.test("`readMmluCsv()` reads MMLU's CSV format: prompt, choices, answer letter, subject header", () => {
  const docs = readMmluCsv(read("abstract_algebra_test.csv"), {
    file: "x/abstract_algebra_test.csv",
  });
  assert.equal(docs.length, 3);
  assert.equal(
    docs[0].prompt,
    "Find the degree for the given field extension Q(sqrt(2), sqrt(3), sqrt(18)) over Q.\n" +
      "A. 0\nB. 4\nC. 2\nD. 6\nAnswer:",
  );
  assert.deepEqual(docs[0].choices, [" A", " B", " C", " D"]);
  assert.deepEqual(docs.map((d) => d.gold), [1, 2, 1]);
  // The third question spans two lines inside quotes; its choices hold commas.
  assert.ok(docs[2].prompt.includes("non-Abelian.\nStatement 2 |"));
  assert.ok(
    docs[2].prompt.endsWith(
      "\nA. True, True\nB. False, False\nC. True, False\nD. False, True\nAnswer:",
    ),
  );
  assert.deepEqual(docs.map((d) => d.source?.line), [1, 2, 3]);
  assert.equal(docs[0].group, "abstract_algebra");
  assert.equal(
    docs[0].description,
    "The following are multiple choice questions (with answers) about abstract algebra.\n\n",
  );
});

Deno.test("`mmluTask()` builds k-shot prompts from the same subject's dev file, first k in order", () => {
  const test = [
    ...readMmluCsv(read("abstract_algebra_test.csv"), { file: "abstract_algebra_test.csv" }),
    ...readMmluCsv(read("anatomy_test.csv"), { file: "anatomy_test.csv" }),
  ];
  const dev = readMmluCsv(read("abstract_algebra_dev.csv"), { file: "abstract_algebra_dev.csv" });
  const task = mmluTask(test, dev);
  const ctx = buildContext(task, 1, { shots: 2, seed: 99 });
  assert.equal(
    ctx,
    "The following are multiple choice questions (with answers) about abstract algebra.\n\n" +
      "Find all c in Z_3 such that Z_3[x]/(x^2 + c) is a field.\nA. 0\nB. 1\nC. 2\nD. 3\nAnswer: B\n\n" +
      "Statement 1 | If aH is an element of a factor group, then |aH| divides |a|. Statement 2 | If H and K are subgroups of G then HK is a subgroup of G.\n" +
      "A. True, True\nB. False, False\nC. True, False\nD. False, True\nAnswer: B\n\n" +
      test[1].prompt,
  );
  // first_n ignores the seed.
  assert.equal(buildContext(task, 1, { shots: 2, seed: 5 }), ctx);
  // Anatomy has no dev examples here: a clear error naming the group.
  assert.throws(() => buildContext(task, 3, { shots: 1 }), /only 0 examples in group "anatomy"/);
});

Deno.test("`readMmluCsv()` lists every malformed row with its file and line", () => {
  assert.deepEqual(issuesOf(() => readMmluCsv(read("bad_test.csv"), { file: "bad_test.csv" })), [
    "bad_test.csv:2 expected 6 fields (question, A, B, C, D, answer), got 5",
    'bad_test.csv:3 the answer must be A, B, C, D or 0-3, got "E"',
    'bad_test.csv:4 the answer must be A, B, C, D or 0-3, got "d"',
  ]);
});

Deno.test("`readMmluCsv()` reads Hugging Face's export: a header, a choices list, answers 0-3, a BOM", () => {
  const original = readMmluCsv(read("abstract_algebra_test.csv"), {
    file: "abstract_algebra_test.csv",
  });
  // cais/mmlu's columns (question, subject, choices, answer) as Dataset.to_csv writes them:
  // numpy's list repr (no commas) and 0-3 answers; the second row's list is JSON-style, and the
  // file starts with the UTF-8 byte order mark Excel adds.
  const rows = parseCsv(read("abstract_algebra_test.csv"), "t.csv").map((r) => r.fields);
  const quote = (c: string) => `'${c.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;
  const csvField = (f: string) => `"${f.replaceAll('"', '""')}"`;
  const hf = "\uFEFFquestion,subject,choices,answer\n" + rows.map((f, i) =>
    [
      csvField(f[0]),
      "abstract_algebra",
      csvField(i === 1 ? JSON.stringify(f.slice(1, 5)) : `[${f.slice(1, 5).map(quote).join(" ")}]`),
      String("ABCD".indexOf(f[5])),
    ].join(",")
  ).join("\n");
  const docs = readMmluCsv(hf, { file: "test-00000-of-00001.csv" });
  assert.deepEqual(
    docs.map((d) => [d.prompt, d.gold, d.group, d.description]),
    original.map((
      d,
    ) => [d.prompt, d.gold, d.group, d.description]),
  );
  assert.deepEqual(docs.map((d) => d.source?.line), [2, 3, 4], "lines count the header");
  // Columns A-D with a header, answers as letters, the subject from the option.
  const lettered = readMmluCsv("\uFEFFQuestion,A,B,C,D,Answer\nWhat is 1+1?,1,2,3,4,B\n", {
    file: "whatever.csv",
    subject: "elementary_mathematics",
  });
  assert.equal(lettered[0].prompt, "What is 1+1?\nA. 1\nB. 2\nC. 3\nD. 4\nAnswer:");
  assert.equal(lettered[0].group, "elementary_mathematics");
  // A headerless original file with a BOM: the BOM does not end up in the first question.
  assert.equal(
    readMmluCsv("\uFEFF" + read("anatomy_test.csv"), { file: "a.csv" })[0].input,
    readMmluCsv(read("anatomy_test.csv"), { file: "a.csv" })[0].input,
  );
  assert.deepEqual(
    issuesOf(() =>
      readMmluCsv("question,choices,answer\nQ,\"['a', 'b']\",0\nR,not a list,1\n", {
        file: "h.csv",
      })
    ),
    [
      `h.csv:2 the choices must be a list of 4 strings, got "['a', 'b']"`,
      'h.csv:3 the choices must be a list of 4 strings, got "not a list"',
    ],
  );
  assert.deepEqual(issuesOf(() => readMmluCsv("question,answer\nQ,1\n", { file: "n.csv" })), [
    'n.csv:1 a header row needs columns A, B, C and D, or one column "choices" holding the four',
  ]);
});

Deno.test("`mmluSubject()` takes the subject from MMLU's file names, split suffix and trailing _ removed", () => {
  assert.equal(mmluSubject("data/test/high_school_physics_test.csv"), "high_school_physics");
  assert.equal(mmluSubject("abstract_algebra_test_.csv"), "abstract_algebra");
  assert.equal(mmluSubject("C:\\mmlu\\anatomy_validation.csv"), "anatomy");
  assert.equal(mmluSubject("anatomy.csv"), "anatomy");
});

Deno.test("`readBigBenchTask()` reads target_scores as multiple choice with BIG-bench's prefixes and lm-eval's choice order", () => {
  const [task, ...rest] = readBigBenchTask(read("bigbench_mc/task.json"), "bigbench_mc/task.json");
  assert.equal(rest.length, 0);
  assert.equal(task.name, "tiny_logic");
  assert.equal(task.kind, "multiple_choice");
  assert.equal(task.description, "Answer the question.\n");
  assert.equal(task.fewShotSeparator, "\n");
  // Choices listed in np.random.RandomState(42).permutation(sorted(choices)) order: for three
  // choices that permutation is [0, 1, 2], for two [1, 0] (numpy 2.4 prints these).
  assert.equal(
    task.docs[0].prompt,
    "\nQ: If all cats are animals and Tom is a cat, is Tom an animal?" +
      "\n  choice: cannot tell\n  choice: no\n  choice: yes\nA: ",
  );
  assert.equal(
    task.docs[1].prompt,
    "\nQ: Is every square a rectangle?\n  choice: yes\n  choice: no\nA: ",
  );
  // The scored continuations keep target_scores' order; gold is the highest score.
  assert.deepEqual(task.docs[0].choices, ["yes", "no", "cannot tell"]);
  assert.deepEqual(task.docs.map((d) => d.gold), [0, 1, 1]);
  assert.deepEqual(task.docs[2].choiceScores, [0.5, 1, 0]);
  assert.deepEqual(task.docs.map((d) => d.source?.line), [10, 14, 18]);
  assert.equal(
    buildContext(task, 1, { shots: 1, seed: 3 }).startsWith("Answer the question.\n\nQ: "),
    true,
  );
});

Deno.test("`readBigBenchTask()` reads string and list targets as generation with its metrics and stop string", () => {
  const [task] = readBigBenchTask(read("bigbench_gen/task.json"), "bigbench_gen/task.json");
  assert.equal(task.kind, "generate");
  assert.deepEqual(task.metrics, ["bleu", "exact_match"], "preferred_score first");
  assert.deepEqual(task.stop, ["\n"]);
  assert.equal(task.docs[0].prompt, "English: cat\nFrench: ");
  assert.deepEqual(task.docs[1].targets, ["le chien", "un chien"]);
  assert.equal(
    buildContext(task, 0, { shots: 1 }),
    "English: the dog\nFrench: le chien\nEnglish: cat\nFrench: ",
  );
});

Deno.test("`readBigBenchTask()` names the file and line of bad examples and of invalid JSON", () => {
  assert.deepEqual(
    issuesOf(() => readBigBenchTask(read("bigbench_bad/task.json"), "bad/task.json")),
    [
      'bad/task.json:6 examples[1]: "input" must be a string',
      'bad/task.json:7 examples[2]: needs "target_scores" or "target"',
    ],
  );
  const broken = '{\n  "examples": [\n    {"input": "a", "target": "b"},,\n  ]\n}';
  const [issue] = issuesOf(() => readBigBenchTask(broken, "j.json"));
  assert.match(issue, /^j\.json:3 not valid JSON/);
});

Deno.test("`readGlue()` reads SST-2 TSV, SuperGLUE RTE and BoolQ JSONL through their verbalizers", () => {
  const sst2 = readGlue("sst2", read("sst2_dev.tsv"), "sst2_dev.tsv");
  assert.equal(
    sst2.docs[0].prompt,
    "it 's a charming and often affecting journey . \nQuestion: Is this sentence positive or negative?\nAnswer:",
  );
  assert.deepEqual(sst2.docs.map((d) => d.gold), [1, 0, 1]);
  assert.deepEqual(sst2.docs[0].choices, [" negative", " positive"]);
  assert.deepEqual(sst2.docs.map((d) => d.source?.line), [2, 3, 4]);

  const rte = readGlue("rte", read("rte_val.jsonl"), "rte_val.jsonl");
  assert.deepEqual(rte.docs.map((d) => d.gold), [1, 0, 0]);
  assert.deepEqual(rte.docs.map((d) => d.source?.line), [1, 2, 4], "the blank line 3 is skipped");
  assert.equal(
    rte.docs[2].prompt,
    "Cairo is now home to some 15 million people.\nQuestion: 15 million people live in Cairo. True or False?\nAnswer:",
  );
  assert.deepEqual(rte.docs[0].choices, [" True", " False"]);

  const boolq = readGlue("boolq", read("boolq_val.jsonl"), "boolq_val.jsonl", {
    verbalizer: [" No", " Yes"],
  });
  assert.deepEqual(boolq.docs.map((d) => d.gold), [0, 1]);
  assert.deepEqual(boolq.docs[0].choices, [" No", " Yes"]);
  assert.ok(
    boolq.docs[1].prompt.endsWith("\nQuestion: is house tax and property tax are same?\nAnswer:"),
  );
});

Deno.test("`readGlue()` lists malformed lines with file and line, and rejects unlabeled SST-2 test files", () => {
  assert.deepEqual(issuesOf(() => readGlue("sst2", read("sst2_bad.tsv"), "sst2_bad.tsv")), [
    "sst2_bad.tsv:3 expected 2 tab-separated fields (sentence, label), got 1",
    'sst2_bad.tsv:4 the label must be 0 or 1, got "neutral"',
  ]);
  const rte = issuesOf(() => readGlue("rte", read("rte_bad.jsonl"), "rte_bad.jsonl"));
  assert.equal(rte.length, 3);
  assert.equal(
    rte[0],
    'rte_bad.jsonl:2 the label must be "entailment", "not_entailment", 0 or 1, got "maybe"',
  );
  assert.equal(rte[1], 'rte_bad.jsonl:3 needs string fields "premise" and "hypothesis"');
  assert.match(rte[2], /^rte_bad\.jsonl:4 not valid JSON/);
  assert.deepEqual(issuesOf(() => readGlue("sst2", "index\tsentence\n0\tfine \n", "test.tsv")), [
    `test.tsv:1 expected the header "sentence\\tlabel", got "index\\tsentence" (GLUE's test file has no labels)`,
  ]);
});

Deno.test("`readGlue()` answers GLUE's TSV given for SuperGLUE JSONL with one error; every reader drops a BOM", () => {
  // GLUE's RTE dev.tsv where SuperGLUE's val.jsonl is expected: one issue, not one per line.
  const tsv = "index\tsentence1\tsentence2\tlabel\n0\tA dog runs.\tAn animal runs.\tentailment\n" +
    "1\tA cat sleeps.\tA cat runs.\tnot_entailment\n";
  assert.deepEqual(issuesOf(() => readGlue("rte", tsv, "RTE/dev.tsv")), [
    'RTE/dev.tsv:1 expected one JSON object per line with "premise", "hypothesis" and "label", ' +
    'got "index\\tsentence1\\tsentence2\\tlabel". It is tab-separated (GLUE\'s TSV layout: ' +
    "index, sentence1, sentence2, label); give SuperGLUE's RTE JSONL instead.",
  ]);
  assert.equal(
    issuesOf(() => readGlue("boolq", "question,passage,label\nq,p,1\n", "b.csv")).length,
    1,
  );
  // A byte order mark before the first JSON object or the SST-2 header is not an error.
  const bom = readGlue("boolq", "\uFEFF" + read("boolq_val.jsonl"), "val.jsonl");
  assert.deepEqual(bom.docs, readGlue("boolq", read("boolq_val.jsonl"), "val.jsonl").docs);
  assert.deepEqual(
    readBigBenchTask("\uFEFF" + read("bigbench_mc/task.json"), "task.json")[0].docs,
    readBigBenchTask(read("bigbench_mc/task.json"), "task.json")[0].docs,
  );
  assert.equal(
    readGlue("sst2", "\uFEFF" + read("sst2_dev.tsv"), "dev.tsv").docs.length,
    readGlue("sst2", read("sst2_dev.tsv"), "dev.tsv").docs.length,
  );
});
