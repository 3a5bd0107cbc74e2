/**
 * `deno task eval`: metrics over prediction/reference files (ROUGE, BLEU, chrF, exact match, token
 * F1), and benchmark tasks over a model (MMLU CSV, BIG-bench task.json, GLUE/SuperGLUE files, the
 * embedded suite), optionally as a HELM-style report or a forgetting report against a base model.
 * Markdown / plain text by default, `--json` for machines.
 *
 * @module
 */

import {
  applyAdapterFlag,
  explainAccess,
  integerFlag,
  loadInferenceModel,
  tokenizerFor,
  UsageError,
} from "./common.ts";
import { parseArgs } from "node:util";
import {
  type BenchmarkTask,
  type BleuTokenizer,
  buildSuite,
  DataError,
  type Decoder,
  evaluateHelm,
  evaluateSuite,
  evaluateTask,
  forgettingMarkdown,
  forgettingReport,
  type GlueTaskName,
  Gpu,
  HELD_OUT_TASKS,
  helmMarkdown,
  METRIC_NAMES,
  metricByName,
  type MetricOptions,
  METRICS,
  mmluTask,
  PRESETS,
  readBigBenchTask,
  readGlue,
  readMmluCsv,
  type RunStats,
  scoreCorpus,
  scoreLine,
  suiteBenchmarkTask,
  type TaskResult,
  textPerplexity,
  type Tokenizer,
} from "../mod.ts";

// One help line per metric of the table (name: what it measures).
const METRIC_HELP = METRIC_NAMES.map((name) => `    ${name}: ${METRICS[name].description}`)
  .join("\n");

const HELP = `Usage:
  deno task eval --metric NAME --predictions FILE --references FILE [options]
  deno task eval (--model DIR | --preset NAME) TASKS [options]

Metrics over files (no model):
  --metric NAME          ${METRIC_NAMES.join(" | ")} (repeatable):
${METRIC_HELP}
  --predictions FILE     one prediction per line, or JSONL (*.jsonl) with a "prediction" field
  --references FILE      one reference per line, or JSONL with a "reference" field (a string or
                         a list of strings); repeat for more reference streams
  --prediction-field F   the JSONL field of predictions (default prediction)
  --reference-field F    the JSONL field of references (default reference)
  --lowercase            BLEU and chrF: lowercase first
  --tokenize T           BLEU tokenizer: 13a (default) | intl | char | none
  --stem                 ROUGE: Porter-stem tokens (rouge_score's use_stemmer)

Model:
  --model DIR            a Hugging Face GPT-2 folder (config.json + model.safetensors)
  --preset NAME          a built-in size with random weights: ${Object.keys(PRESETS).join(", ")}
  --tokenizer T          bytes | tiktoken-gpt2 | PATH to a tokenizer.json. Default: DIR/tokenizer.json
                         when present, else tiktoken-gpt2 for a 50,257-token vocabulary; bytes
                         for a preset
  --adapter DIR          an adapter folder of any method, applied to the model: LoRA, IA³, prompt
                         or prefix tuning in Hugging Face PEFT's layout, or one whet saved
                         (adapters, full, selective, bitfit); the method comes from the folder
  --seed N               the random weights' seed of a preset (default 0)

Tasks (any number; scored on a 0-100 scale, reported as MMLU, BIG-bench, GLUE, suite):
  --mmlu FILE            an MMLU CSV ({subject}_test.csv; repeat for more subjects)
  --mmlu-dev FILE        an MMLU dev CSV, for few-shot examples of its subject (repeatable)
  --subject NAME         the subject of every --mmlu and --mmlu-dev file (default: the file's
                         subject column, else its name: anatomy_test.csv is anatomy)
  --bigbench FILE        a BIG-bench task.json (repeatable)
  --glue NAME=FILE       sst2=dev.tsv | rte=val.jsonl | boolq=val.jsonl (repeatable)
  --suite                the embedded suite's test split
  --suite-size N         test examples per suite task (default 100)
  --suite-seed N         seed of the suite (default 0)
  --shots N              few-shot examples per prompt (default 0)
  --fewshot-seed N       seed of the few-shot draw (default 1234)
  --limit N              score at most N documents per task
  --batch-size N         sequences per forward / generation batch (default 32; 128 for
                         the suite)

Reports:
  --helm                 HELM-style: accuracy, calibration (ECE), robustness under typos and
                         casing, tokens/s, per task
  --forgetting           compare with a base model on the suite's held-out tasks (and the tasks
                         given): the base is --base DIR, or the model without --adapter
  --base DIR             the base model of --forgetting (a Hugging Face GPT-2 folder)
  --text FILE            general text for --forgetting's perplexity change
  --json                 print JSON instead of tables
  -h, --help             this help

Permissions: the task may read files under the current folder only; for files elsewhere run
  deno run --allow-read=. --allow-read=DIR --allow-env=XDG_RUNTIME_DIR cli/eval.ts ...`;

/** A command-line mistake: printed with a pointer to --help, exit code 2. */

/** Where output goes (the console by default; tests capture it). */
export interface Io {
  /** Standard output, one call per line or block. */
  out(text: string): void;
  /** Standard error. */
  err(text: string): void;
}

const CONSOLE: Io = { out: (t) => console.log(t), err: (t) => console.error(t) };

async function readText(flag: string, path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    throw explainAccess(e, { path, what: `--${flag}` }) ??
      new Error(`Cannot read ${path} (--${flag}): ${(e as Error).message}`);
  }
}

// --- metrics over files -----------------------------------------------------------------------

/** One entry of a predictions or references file and the line it came from. */
interface Entry {
  values: string[];
  line: number;
}

/**
 * The entries of a file: lines of text (a final newline ends the last line, it does not add an
 * empty one; "\r\n" is accepted), or JSONL records' `field` (a string, or for references a list).
 */
function readEntries(text: string, file: string, field: string, allowList: boolean): Entry[] {
  const lines = text.split("\n").map((l) => l.replace(/\r$/, ""));
  if (lines[lines.length - 1] === "") lines.pop();
  if (!file.endsWith(".jsonl")) return lines.map((l, i) => ({ values: [l], line: i + 1 }));
  const out: Entry[] = [];
  const issues: { where: string; message: string }[] = [];
  lines.forEach((raw, i) => {
    const where = `${file}:${i + 1}`;
    if (raw.trim() === "") return;
    let v: unknown;
    try {
      v = JSON.parse(raw);
    } catch (e) {
      issues.push({ where, message: `not valid JSON: ${(e as Error).message}` });
      return;
    }
    const value = typeof v === "object" && v !== null
      ? (v as Record<string, unknown>)[field]
      : undefined;
    if (typeof value === "string") out.push({ values: [value], line: i + 1 });
    else if (
      allowList && Array.isArray(value) && value.length > 0 &&
      value.every((x) => typeof x === "string")
    ) {
      out.push({ values: value, line: i + 1 });
    } else {
      issues.push({
        where,
        message: `needs a field "${field}" holding a string${
          allowList ? " or a list of strings" : ""
        }`,
      });
    }
  });
  if (issues.length > 0) {
    throw new DataError(
      `Cannot read ${file}: ${issues.length} bad lines`,
      issues.slice(0, 20),
      issues.length,
    );
  }
  return out;
}

/** Checks that two files have as many entries, naming the first entry without a partner. */
function sameCount(aFile: string, a: Entry[], bFile: string, b: Entry[]): void {
  if (a.length === b.length) return;
  const [longFile, long, shortFile, short] = a.length > b.length
    ? [aFile, a, bFile, b]
    : [bFile, b, aFile, a];
  throw new UsageError(
    `${longFile}:${long[short.length].line}: entry ${
      short.length + 1
    } has no partner in ${shortFile}, ` +
      `which has ${short.length} (${long.length} vs ${short.length})`,
  );
}

async function metricsMain(values: Values, io: Io): Promise<number> {
  const metrics = values.metric!;
  for (const m of metrics) {
    if (!(METRIC_NAMES as readonly string[]).includes(m)) {
      throw new UsageError(
        `--metric must be one of ${METRIC_NAMES.join(", ")}, got ${JSON.stringify(m)}`,
      );
    }
  }
  if (values.predictions === undefined) throw new UsageError("--predictions FILE is required");
  const refFiles = values.references ?? [];
  if (refFiles.length === 0) throw new UsageError("--references FILE is required");
  const tokenize = values.tokenize ?? "13a";
  if (!["13a", "intl", "char", "none"].includes(tokenize)) {
    throw new UsageError(
      `--tokenize must be 13a, intl, char or none, got ${JSON.stringify(tokenize)}`,
    );
  }
  const predFile = values.predictions;
  const preds = readEntries(
    await readText("predictions", predFile),
    predFile,
    values["prediction-field"] ?? "prediction",
    false,
  );
  const streams: Entry[][] = [];
  for (const f of refFiles) {
    const refs = readEntries(
      await readText("references", f),
      f,
      values["reference-field"] ?? "reference",
      true,
    );
    sameCount(predFile, preds, f, refs);
    streams.push(refs);
  }
  if (preds.length === 0) throw new UsageError(`${predFile}: no predictions`);
  const predictions = preds.map((p) => p.values[0]);
  // Every reference of example i, over all files (a JSONL list counts as several).
  const refsOf = predictions.map((_, i) => streams.flatMap((s) => s[i].values));
  const results: Record<string, unknown> = {};
  const lines: string[] = [];
  const options: MetricOptions = {
    lowercase: values.lowercase,
    tokenize: tokenize as BleuTokenizer,
    stem: values.stem,
  };
  for (const name of metrics) {
    const r = scoreCorpus(metricByName(name), predictions, refsOf, options);
    const { score, parts, signature, formatted, details } = r;
    results[name] = { score, parts, signature, formatted, ...details };
    lines.push(scoreLine(formatted, signature));
  }
  io.out(
    values.json ? JSON.stringify({ n: predictions.length, ...results }, null, 2) : lines.join("\n"),
  );
  return 0;
}

// --- benchmarks over a model ------------------------------------------------------------------

async function applyAdapter(model: Decoder, dir: string, tok: Tokenizer, io: Io): Promise<void> {
  const warn = (line: string) => io.err(`whet eval: ${line}`);
  io.err(`whet eval: adapter ${dir}: ${await applyAdapterFlag(model, dir, tok, warn)}`);
}

/** The benchmark tasks the flags name (the suite's separately). */
async function benchmarkTasks(values: Values): Promise<BenchmarkTask[]> {
  const tasks: BenchmarkTask[] = [];
  if (values.mmlu) {
    const test = [];
    const subject = values.subject;
    for (const f of values.mmlu) {
      test.push(...readMmluCsv(await readText("mmlu", f), { file: f, subject }));
    }
    const dev = [];
    for (const f of values["mmlu-dev"] ?? []) {
      dev.push(...readMmluCsv(await readText("mmlu-dev", f), { file: f, subject }));
    }
    tasks.push(mmluTask(test, values["mmlu-dev"] ? dev : undefined));
  } else if (values["mmlu-dev"] || values.subject !== undefined) {
    throw new UsageError(`--${values["mmlu-dev"] ? "mmlu-dev" : "subject"} needs --mmlu`);
  }
  for (const f of values.bigbench ?? []) {
    tasks.push(...readBigBenchTask(await readText("bigbench", f), f));
  }
  for (const spec of values.glue ?? []) {
    const m = /^(sst2|rte|boolq)=(.+)$/.exec(spec);
    if (!m) {
      throw new UsageError(
        `--glue must be sst2=FILE, rte=FILE or boolq=FILE, got ${JSON.stringify(spec)}`,
      );
    }
    tasks.push(readGlue(m[1] as GlueTaskName, await readText("glue", m[2]), m[2]));
  }
  return tasks;
}

function resultRow(r: TaskResult): string {
  const extras = Object.entries(r.metrics)
    .filter(([k]) => k !== r.mainMetric)
    .map(([k, v]) => `${k} ${v.toFixed(2)}`)
    .join(", ");
  return `| ${r.task} | ${r.n} | ${r.mainMetric} | ${r.score.toFixed(2)} | ${extras} | ${
    r.seconds > 0 ? (r.tokens / r.seconds).toFixed(1) : "0"
  } |`;
}

/** A JSON-friendly copy of a result (per-document arrays left out). */
function summary(r: TaskResult) {
  const { confidences: _c, correct: _k, predictions: _p, ...rest } = r;
  return rest;
}

async function modelMain(values: Values, io: Io): Promise<number> {
  if ((values.model === undefined) === (values.preset === undefined)) {
    throw new UsageError("give exactly one of --model DIR and --preset NAME");
  }
  if (values.preset !== undefined && !(values.preset in PRESETS)) {
    throw new UsageError(
      `--preset must be one of ${Object.keys(PRESETS).join(", ")}, got ${
        JSON.stringify(values.preset)
      }`,
    );
  }
  const options = {
    shots: integerFlag("shots", values.shots, 0),
    seed: integerFlag("fewshot-seed", values["fewshot-seed"], 1234),
    ...(values["batch-size"] !== undefined
      ? { batchSize: integerFlag("batch-size", values["batch-size"], 32, 1) }
      : {}),
    ...(values.limit !== undefined ? { limit: integerFlag("limit", values.limit, 1, 1) } : {}),
  };
  const suiteSize = integerFlag("suite-size", values["suite-size"], 100, 1);
  const suiteSeed = integerFlag("suite-seed", values["suite-seed"], 0);
  const seed = integerFlag("seed", values.seed, 0);
  if (values.forgetting && values.base === undefined && values.adapter === undefined) {
    throw new UsageError(
      "--forgetting needs --base DIR, or --adapter DIR (the base is the model without it)",
    );
  }
  if (!values.forgetting && (values.base !== undefined || values.text !== undefined)) {
    throw new UsageError("--base and --text belong to --forgetting");
  }
  const tasks = await benchmarkTasks(values);
  if (tasks.length === 0 && !values.suite && !values.forgetting) {
    throw new UsageError(
      "no tasks: give --mmlu, --bigbench, --glue or --suite (or --metric for files)",
    );
  }
  const text = values.text !== undefined ? await readText("text", values.text) : undefined;
  const gpu = await Gpu.get();

  if (values.forgetting) {
    const suite = buildSuite({
      seed: suiteSeed,
      sizes: { train: 0, dev: 0, test: suiteSize },
      tasks: HELD_OUT_TASKS.map((t) => t.name),
    });
    const score = async (model: Decoder, tok: Tokenizer) => {
      const scores: Record<string, number> = {};
      for (const s of await evaluateSuite(model, tok, suite, options)) scores[s.task] = s.score;
      for (const t of tasks) scores[t.name] = (await evaluateTask(model, tok, t, options)).score;
      const ppl = text !== undefined
        ? (await textPerplexity(model, tok, [text], options)).perplexity
        : undefined;
      return { scores, ppl };
    };
    const model = await loadInferenceModel(gpu, values.model, values.preset, seed);
    try {
      const tok = await tokenizerFor(values.tokenizer, values.model, model.shape.V);
      let base, tuned;
      if (values.base !== undefined) {
        const baseModel = await loadInferenceModel(gpu, values.base, undefined, seed);
        try {
          base = await score(baseModel, tok);
        } finally {
          baseModel.release();
        }
        if (values.adapter !== undefined) await applyAdapter(model, values.adapter, tok, io);
        tuned = await score(model, tok);
      } else {
        base = await score(model, tok);
        await applyAdapter(model, values.adapter!, tok, io);
        tuned = await score(model, tok);
      }
      const report = forgettingReport({
        base: base.scores,
        tuned: tuned.scores,
        ...(base.ppl !== undefined ? { perplexity: { base: base.ppl, tuned: tuned.ppl! } } : {}),
        names: {
          base: values.base ?? values.model ?? `preset ${values.preset}`,
          tuned: values.adapter !== undefined
            ? `${values.model ?? values.preset} + ${values.adapter}`
            : values.model!,
        },
      });
      io.out(values.json ? JSON.stringify(report, null, 2) : forgettingMarkdown(report));
    } finally {
      model.release();
    }
    return 0;
  }

  const model = await loadInferenceModel(gpu, values.model, values.preset, seed);
  try {
    const tok = await tokenizerFor(values.tokenizer, values.model, model.shape.V);
    if (values.adapter !== undefined) await applyAdapter(model, values.adapter, tok, io);
    if (values.helm) {
      if (values.suite) {
        for (
          const d of buildSuite({ seed: suiteSeed, sizes: { train: 0, dev: 0, test: suiteSize } })
        ) {
          tasks.push(suiteBenchmarkTask(d));
        }
      }
      const report = await evaluateHelm(model, tok, tasks, options);
      io.out(values.json ? JSON.stringify(report, null, 2) : helmMarkdown(report));
      return 0;
    }
    const stats: RunStats = { tokens: 0, seconds: 0 };
    const results: TaskResult[] = [];
    for (const t of tasks) results.push(await evaluateTask(model, tok, t, { ...options, stats }));
    if (values.suite) {
      const suite = buildSuite({ seed: suiteSeed, sizes: { train: 0, dev: 0, test: suiteSize } });
      for (const s of await evaluateSuite(model, tok, suite, options)) {
        results.push({ ...s.result, task: `suite/${s.task}` });
      }
    }
    for (const { task, n, truncation: cut } of results) {
      if (cut.documents > 0) {
        io.err(
          `whet eval: task ${task}: ${cut.documents} of ${n} prompts were longer than the model's context and lost their oldest tokens (up to ${cut.maxTokens}, ${cut.tokens} in all)`,
        );
      }
    }
    if (values.json) {
      io.out(
        JSON.stringify(
          { model: values.model ?? `preset:${values.preset}`, tasks: results.map(summary) },
          null,
          2,
        ),
      );
    } else {
      const rows = results.map(resultRow);
      for (const r of results) {
        for (const [g, v] of Object.entries(r.groups ?? {})) {
          rows.push(`| ${r.task}/${g} | ${v.n} | acc | ${v.acc.toFixed(2)} |  |  |`);
        }
      }
      io.out(
        [
          "| task | n | metric | score | other metrics | tokens/s |",
          "| --- | ---: | --- | ---: | --- | ---: |",
          ...rows,
        ]
          .join("\n"),
      );
    }
  } finally {
    model.release();
  }
  return 0;
}

// --- entry ------------------------------------------------------------------------------------

const OPTIONS = {
  metric: { type: "string", multiple: true },
  predictions: { type: "string" },
  references: { type: "string", multiple: true },
  "prediction-field": { type: "string" },
  "reference-field": { type: "string" },
  lowercase: { type: "boolean" },
  tokenize: { type: "string" },
  stem: { type: "boolean" },
  model: { type: "string" },
  preset: { type: "string" },
  tokenizer: { type: "string" },
  adapter: { type: "string" },
  seed: { type: "string" },
  mmlu: { type: "string", multiple: true },
  "mmlu-dev": { type: "string", multiple: true },
  subject: { type: "string" },
  bigbench: { type: "string", multiple: true },
  glue: { type: "string", multiple: true },
  suite: { type: "boolean" },
  "suite-size": { type: "string" },
  "suite-seed": { type: "string" },
  shots: { type: "string" },
  "fewshot-seed": { type: "string" },
  limit: { type: "string" },
  "batch-size": { type: "string" },
  helm: { type: "boolean" },
  forgetting: { type: "boolean" },
  base: { type: "string" },
  text: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS }>>["values"];

/**
 * Parses argv and runs; returns the exit code (0 done, 1 failed, 2 a usage mistake).
 *
 * @example
 * ```ts ignore
 * import { main } from "./eval.ts";
 * Deno.exit(await main(["--metric", "bleu", "--predictions", "hyp.txt", "--references", "ref.txt"]));
 * ```
 */
export async function main(args: string[], io: Io = CONSOLE): Promise<number> {
  let values: Values;
  try {
    values = parseArgs({ args, strict: true, allowPositionals: false, options: OPTIONS }).values;
  } catch (e) {
    io.err(`whet eval: ${(e as Error).message}\nRun with --help for the options.`);
    return 2;
  }
  if (values.help) {
    io.out(HELP);
    return 0;
  }
  try {
    if (values.metric !== undefined) {
      if (values.model !== undefined || values.preset !== undefined) {
        throw new UsageError("--metric scores files; it takes no --model or --preset");
      }
      return await metricsMain(values, io);
    }
    return await modelMain(values, io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`whet eval: ${e.message}\nRun with --help for the options.`);
      return 2;
    }
    io.err(`whet eval: ${(e as Error).message}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
