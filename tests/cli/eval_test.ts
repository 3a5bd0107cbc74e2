import assert from "node:assert/strict";
import { main } from "../../cli/eval.ts";
import { corpusBleu } from "../../mod.ts";
import bigbenchGen from "../eval/fixtures/bigbench_gen/task.json" with { type: "text" };
import sst2Dev from "../eval/fixtures/sst2_dev.tsv" with { type: "text" };

/** Runs the CLI in-process and captures what it prints. */
async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "", err = "";
  const code = await main(args, { out: (t) => out += t + "\n", err: (t) => err += t + "\n" });
  return { code, out, err };
}

async function files(contents: Record<string, string>): Promise<Record<string, string>> {
  const dir = await Deno.makeTempDir({ prefix: "whet_eval_cli_" });
  const paths: Record<string, string> = {};
  for (const [name, text] of Object.entries(contents)) {
    paths[name] = `${dir}/${name}`;
    await Deno.writeTextFile(paths[name], text);
  }
  return paths;
}

// sacreBLEU's README example: three segments, two reference streams.
const SYS = "The dog bit the man.\nIt wasn't surprising.\nThe man had just bitten him.\n";
const REF1 = "The dog bit the man.\nIt was not unexpected.\nThe man bit him first.\n";
const REF2 = "The dog had bit the man.\nNo one was surprised.\nThe man had bitten the dog.\n";

Deno.test("cli/eval `--metric bleu` scores line files with several reference streams as sacreBLEU", async () => {
  const p = await files({ "sys.txt": SYS, "ref1.txt": REF1, "ref2.txt": REF2 });
  const text = await run([
    "--metric",
    "bleu",
    "--predictions",
    p["sys.txt"],
    "--references",
    p["ref1.txt"],
    "--references",
    p["ref2.txt"],
  ]);
  assert.equal(text.code, 0, text.err);
  // The score line of sacreBLEU's README (48.53 at two decimals).
  assert.equal(
    text.out,
    "BLEU|nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0 = 48.53 82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)\n",
  );
  const json = await run([
    "--metric",
    "bleu",
    "--metric",
    "chrf",
    "--predictions",
    p["sys.txt"],
    "--references",
    p["ref1.txt"],
    "--references",
    p["ref2.txt"],
    "--json",
  ]);
  const parsed = JSON.parse(json.out);
  assert.equal(parsed.n, 3);
  const direct = corpusBleu(SYS.trim().split("\n"), [
    REF1.trim().split("\n"),
    REF2.trim().split("\n"),
  ]);
  assert.equal(parsed.bleu.score, direct.score);
  assert.equal(parsed.chrf.formatted, "chrF2 = 59.73", "sacreBLEU README's chrF");
});

Deno.test("cli/eval scores JSONL predictions against JSONL reference lists (exact match, token F1, ROUGE)", async () => {
  const p = await files({
    "pred.jsonl": '{"prediction": "Paris"}\n\n{"prediction": "the big cat"}\n',
    "ref.jsonl": '{"reference": ["paris", "Paris, France"]}\n{"reference": "a big dog"}\n',
  });
  const r = await run([
    "--metric",
    "exact_match",
    "--metric",
    "squad_exact_match",
    "--metric",
    "token_f1",
    "--metric",
    "rouge",
    "--predictions",
    p["pred.jsonl"],
    "--references",
    p["ref.jsonl"],
    "--json",
  ]);
  assert.equal(r.code, 0, r.err);
  const out = JSON.parse(r.out);
  // Exact match (SQuAD-normalised): "Paris" = "paris"; "the big cat" ≠ "a big dog". 1/2.
  assert.equal(out.squad_exact_match.score, 50);
  // Exact match as the suite scores it (trimmed, case counts): "Paris" ≠ "paris", "Paris, France".
  assert.equal(out.exact_match.score, 0);
  // Token F1: 1, and "big cat" vs "big dog" (articles dropped): P = R = 1/2, F1 = 1/2.
  assert.equal(out.token_f1.score, 75);
  // rouge1 F: "paris" vs the best reference "paris" = 1; "the big cat" vs "a big dog" 1/3.
  assert.ok(Math.abs(out.rouge.rouge1.mean.fmeasure - (1 + 1 / 3) / 2) < 1e-12);
});

Deno.test("cli/eval names the file and line where prediction and reference counts differ", async () => {
  const p = await files({
    "pred.txt": "a\nb\nc\n",
    "ref.txt": "a\nb\n",
    "more.txt": "a\nb\nc\nd\n",
  });
  const short = await run([
    "--metric",
    "bleu",
    "--predictions",
    p["pred.txt"],
    "--references",
    p["ref.txt"],
  ]);
  assert.equal(short.code, 2);
  assert.match(
    short.err,
    new RegExp(`${p["pred.txt"]}:3: entry 3 has no partner in ${p["ref.txt"]}, which has 2`),
  );
  const long = await run([
    "--metric",
    "bleu",
    "--predictions",
    p["pred.txt"],
    "--references",
    p["more.txt"],
  ]);
  assert.match(
    long.err,
    new RegExp(`${p["more.txt"]}:4: entry 4 has no partner in ${p["pred.txt"]}, which has 3`),
  );
});

Deno.test("cli/eval names the file and line of a malformed JSONL line and of a missing field", async () => {
  const p = await files({
    "pred.jsonl": '{"prediction": "x"}\n{"prediction": "y"\n{"text": "z"}\n',
    "ref.txt": "x\ny\nz\n",
  });
  const r = await run([
    "--metric",
    "exact_match",
    "--predictions",
    p["pred.jsonl"],
    "--references",
    p["ref.txt"],
  ]);
  assert.equal(r.code, 1);
  assert.match(r.err, new RegExp(`${p["pred.jsonl"]}:2: not valid JSON`));
  assert.match(
    r.err,
    new RegExp(`${p["pred.jsonl"]}:3: needs a field "prediction" holding a string`),
  );
});

Deno.test("cli/eval prints --help, and rejects unknown flags, unknown metrics and missing tasks", async () => {
  const help = await run(["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.out, /^Usage:/);
  assert.equal((await run(["--frobnicate"])).code, 2);
  const metric = await run(["--metric", "meteor", "--predictions", "x", "--references", "y"]);
  assert.equal(metric.code, 2);
  assert.match(metric.err, /--metric must be one of rouge, bleu, chrf, exact_match, token_f1/);
  const none = await run(["--preset", "tiny"]);
  assert.equal(none.code, 2);
  assert.match(none.err, /no tasks/);
  const forget = await run(["--preset", "tiny", "--forgetting"]);
  assert.match(forget.err, /--forgetting needs --base DIR, or --adapter DIR/);
  const glue = await run(["--preset", "tiny", "--glue", "cola=x.tsv"]);
  assert.match(glue.err, /--glue must be sst2=FILE, rte=FILE or boolq=FILE/);
});

Deno.test("cli/eval scores GLUE and BIG-bench files with a preset model, as a table, JSON and a HELM report", async () => {
  const p = await files({ "sst2_dev.tsv": sst2Dev, "task.json": bigbenchGen });
  const tasks = [
    "--glue",
    `sst2=${p["sst2_dev.tsv"]}`,
    "--bigbench",
    p["task.json"],
    "--limit",
    "2",
  ];
  const json = await run(["--preset", "tiny", ...tasks, "--json"]);
  assert.equal(json.code, 0, json.err);
  const out = JSON.parse(json.out);
  // Reported in a fixed order: MMLU, BIG-bench, GLUE, then the suite.
  assert.deepEqual(out.tasks.map((t: { task: string }) => t.task), ["tiny_translate", "sst2"]);
  assert.equal(out.tasks[0].mainMetric, "bleu", "the task's preferred_score");
  assert.equal(out.tasks[1].mainMetric, "acc");
  assert.equal(out.tasks[1].n, 2);
  const table = await run(["--preset", "tiny", ...tasks]);
  assert.match(table.out, /^\| task \| n \| metric \| score \|/);
  assert.match(table.out, /\n\| sst2 \| 2 \| acc \| /);
  const helm = await run(["--preset", "tiny", "--glue", `sst2=${p["sst2_dev.tsv"]}`, "--helm"]);
  assert.equal(helm.code, 0, helm.err);
  assert.match(
    helm.out,
    /\| task \| metric \| n \| accuracy \| ECE \(10 bins\) \| robustness \| typos \| lowercase \| uppercase \| tokens\/s \|/,
  );
  assert.match(helm.out, /\n\| sst2 \| acc \| 3 \| /);
});

Deno.test("cli/eval --subject names the MMLU subject, and prompts cut to fit the context are reported", async () => {
  // Hugging Face's export layout (header, choices list, answer 0-3) under a name that says no
  // subject. The tiny preset's context (bytes) is shorter than MMLU's subject header plus any
  // question, so both prompts are cut, the long one by 259 - 6 = 253 tokens more (questions are
  // trimmed: "Which is it? " × 20 is 259 characters, "Short?" 6).
  const long = "Which is it? ".repeat(20);
  const p = await files({
    "test.csv":
      `question,choices,answer\n${long},"['a', 'b', 'c', 'd']",2\nShort?,"['a' 'b' 'c' 'd']",0\n`,
  });
  const r = await run([
    "--preset",
    "tiny",
    "--mmlu",
    p["test.csv"],
    "--subject",
    "anatomy",
    "--json",
  ]);
  assert.equal(r.code, 0, r.err);
  const [task] = JSON.parse(r.out).tasks;
  assert.deepEqual(Object.keys(task.groups), ["anatomy"]);
  assert.equal(task.truncation.documents, 2);
  assert.equal(2 * task.truncation.maxTokens - task.truncation.tokens, 253);
  assert.match(
    r.err,
    new RegExp(
      `task mmlu: 2 of 2 prompts were longer than the model's context and lost their oldest tokens \\(up to ${task.truncation.maxTokens}, ${task.truncation.tokens} in all\\)`,
    ),
  );
  const alone = await run(["--preset", "tiny", "--subject", "anatomy", "--suite"]);
  assert.match(alone.err, /--subject needs --mmlu/);
});
