/**
 * Readers for benchmark files as users download them, each turned into a
 * {@linkcode BenchmarkTask} with the prompts lm-evaluation-harness uses:
 *
 * - MMLU (Hendrycks et al.) CSV, `{subject}_{dev,val,test}.csv`, no header, rows of question,
 *   four choices and the answer letter, or with a header row and answers 0–3 as Hugging Face
 *   exports it (see {@linkcode readMmluCsv}): prompt `question\nA. …\nB. …\nC. …\nD. …\nAnswer:`,
 *   choices " A" … " D", the header "The following are multiple choice questions (with answers)
 *   about {subject}.\n\n", few-shot examples from the subject's dev file, in order;
 * - BIG-bench `task.json`: `examples` with `target_scores` (multiple choice, scored by
 *   `multiple_choice_grade`) and/or `target` (a string or a list: generation, scored by
 *   `exact_str_match`, `bleu`, `rouge` as the task's `metrics` say), with BIG-bench's defaults
 *   `task_prefix` "", `example_input_prefix` "\nQ: ", `example_output_prefix` "\nA: ",
 *   `choice_prefix` "\n  choice: ", `append_choices_to_input` true,
 *   `few_shot_example_separator` "\n". Listed choices are permuted as lm-evaluation-harness's
 *   BIG-bench task does (`np.random.RandomState(42).permutation(sorted(choices))`, per example);
 * - GLUE SST-2 TSV (`sentence\tlabel` header), RTE JSONL (`premise`/`hypothesis` as SuperGLUE,
 *   or `sentence1`/`sentence2`; label "entailment"/"not_entailment" or 0/1) and SuperGLUE BoolQ
 *   JSONL (`question`, `passage`, label true/false or 1/0), through verbalizers: " negative"/
 *   " positive", " True"/" False", " no"/" yes".
 *
 * Malformed rows and lines are reported together in one {@linkcode DataError}, each with its file
 * and line; a file in the wrong format altogether (GLUE's TSV where SuperGLUE JSONL is read) is
 * one error. A leading UTF-8 byte order mark is dropped everywhere.
 *
 * @module
 */

import { DataError, type DataIssue } from "../data/errors.ts";
import { Mt19937 } from "./_mt19937.ts";
import type { BenchmarkDoc, BenchmarkTask, GenerationMetric } from "./harness/task.ts";

/** One CSV record and the line it starts on. */
export interface CsvRecord {
  /** The fields, unquoted. */
  fields: string[];
  /** 1-based line number where the record starts. */
  line: number;
}

const MAX_ISSUES = 20;

// Files saved by Excel and some Windows tools start with a UTF-8 byte order mark, which
// Deno.readTextFile keeps: it would become part of the first field, key or header.
function stripBom(text: string): string {
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

function fail(summary: string, issues: DataIssue[]): never {
  throw new DataError(summary, issues.slice(0, MAX_ISSUES), issues.length);
}

/**
 * Parses CSV as RFC 4180 (and Python's `csv` / pandas write it): comma-separated fields, fields
 * in double quotes may hold commas, newlines and `""` for a quote; records end at `\n` or `\r\n`;
 * blank lines are skipped; a leading UTF-8 byte order mark is dropped. An unterminated quote, or text after a closing quote, is an error
 * naming the file and line.
 *
 * @example
 * ```ts
 * import { parseCsv } from "../mod.ts";
 * const rows = parseCsv('a,"b, ""c"""\n"multi\nline",d\n', "x.csv");
 * if (rows[0].fields[1] !== 'b, "c"' || rows[1].line !== 2 || rows[1].fields[0] !== "multi\nline") {
 *   throw new Error();
 * }
 * ```
 */
export function parseCsv(text: string, file: string): CsvRecord[] {
  text = stripBom(text);
  const records: CsvRecord[] = [];
  let line = 1, i = 0;
  const n = text.length;
  while (i < n) {
    const start = line;
    const fields: string[] = [];
    let field = "";
    let atLineEnd = false;
    // A blank line is no record.
    if (text[i] === "\n" || (text[i] === "\r" && text[i + 1] === "\n")) {
      i += text[i] === "\r" ? 2 : 1;
      line++;
      continue;
    }
    while (!atLineEnd) {
      if (text[i] === '"') {
        i++;
        const quoteLine = line;
        for (;;) {
          if (i >= n) {
            fail(`Cannot read CSV ${file}`, [{
              where: `${file}:${quoteLine}`,
              message: "a quoted field is not closed",
            }]);
          }
          const ch = text[i];
          if (ch === '"') {
            if (text[i + 1] === '"') {
              field += '"';
              i += 2;
              continue;
            }
            i++;
            break;
          }
          if (ch === "\n") line++;
          field += ch;
          i++;
        }
        const next = text[i];
        if (i < n && next !== "," && next !== "\n" && !(next === "\r" && text[i + 1] === "\n")) {
          fail(`Cannot read CSV ${file}`, [{
            where: `${file}:${line}`,
            message: `unexpected ${JSON.stringify(next)} after a closing quote`,
          }]);
        }
      } else {
        while (i < n && text[i] !== "," && text[i] !== "\n") {
          if (text[i] === "\r" && text[i + 1] === "\n") break;
          field += text[i++];
        }
      }
      fields.push(field);
      field = "";
      if (i >= n) {
        atLineEnd = true;
      } else if (text[i] === ",") {
        i++;
      } else {
        i += text[i] === "\r" ? 2 : 1;
        line++;
        atLineEnd = true;
      }
    }
    records.push({ fields, line: start });
  }
  return records;
}

// --- MMLU -------------------------------------------------------------------------------------

const LETTERS = ["A", "B", "C", "D"] as const;

/**
 * The subject of an MMLU file from its name: `…/high_school_physics_test.csv` →
 * "high_school_physics" (folders, trailing underscores and the split suffix `_dev`, `_val`,
 * `_validation`, `_test` or `_auxiliary_train` removed, so `abstract_algebra_test_.csv` works
 * too). A name without a split suffix is the subject as it is; give the subject explicitly
 * (`MmluOptions.subject`, `--subject`) when the file name does not say it.
 *
 * @example
 * ```ts
 * import { mmluSubject } from "../mod.ts";
 * if (mmluSubject("data/test/abstract_algebra_test.csv") !== "abstract_algebra") throw new Error();
 * if (mmluSubject("anatomy_test_.csv") !== "anatomy") throw new Error();
 * ```
 */
export function mmluSubject(file: string): string {
  const base = file.split(/[\\/]/).pop()!;
  return base.replace(/\.csv$/i, "").replace(/_+$/, "")
    .replace(/_(dev|val|validation|test|auxiliary_train)$/, "");
}

/**
 * MMLU's header for a subject, as Hendrycks's `evaluate.py` and lm-evaluation-harness write it
 * (underscores become spaces).
 *
 * @example
 * ```ts
 * import { mmluHeader } from "../mod.ts";
 * const h = mmluHeader("abstract_algebra");
 * if (h !== "The following are multiple choice questions (with answers) about abstract algebra.\n\n") {
 *   throw new Error(h);
 * }
 * ```
 */
export function mmluHeader(subject: string): string {
  return `The following are multiple choice questions (with answers) about ${
    subject.replaceAll("_", " ")
  }.\n\n`;
}

/** Options for {@linkcode readMmluCsv}. */
export interface MmluOptions {
  /** The file name, for errors and (unless `subject` is given) the subject. */
  file: string;
  /**
   * The subject; default: the file's `subject` column when it has one, else
   * {@linkcode mmluSubject} of the file name.
   */
  subject?: string;
}

// Column names a header row may use (compared lowercased and trimmed).
const QUESTION_COLUMNS = ["question", "input", "prompt"];
const ANSWER_COLUMNS = ["answer", "target", "label"];

/** Where each part of a row is, by column index. */
interface MmluLayout {
  question: number;
  /** Four columns, A to D; or one column holding a list of the four choices. */
  choices: number[] | number;
  answer: number;
  subject?: number;
  /** Fields a row must have. */
  width: number;
}

// The original files: no header; question, A, B, C, D, answer.
const HEADERLESS: MmluLayout = { question: 0, choices: [1, 2, 3, 4], answer: 5, width: 6 };

/** The layout a header row names, or why it names none. */
function headerLayout(fields: readonly string[]): MmluLayout | string {
  const names = fields.map((f) => f.trim().toLowerCase());
  const find = (options: readonly string[]) => names.findIndex((n) => options.includes(n));
  const question = find(QUESTION_COLUMNS), answer = find(ANSWER_COLUMNS);
  const letters = ["a", "b", "c", "d"].map((l) => names.indexOf(l));
  const list = names.indexOf("choices");
  const subject = names.indexOf("subject");
  if (question < 0 || answer < 0) {
    return `a header row needs a question column (${
      QUESTION_COLUMNS.join(", ")
    }) and an answer column (${ANSWER_COLUMNS.join(", ")})`;
  }
  if (letters.every((i) => i >= 0)) {
    return {
      question,
      choices: letters,
      answer,
      width: fields.length,
      ...(subject >= 0 ? { subject } : {}),
    };
  }
  if (list >= 0) {
    return {
      question,
      choices: list,
      answer,
      width: fields.length,
      ...(subject >= 0 ? { subject } : {}),
    };
  }
  return 'a header row needs columns A, B, C and D, or one column "choices" holding the four';
}

/**
 * The strings of a list as Python, numpy or JSON print one: `["a", "b"]`, `['a', 'b']`,
 * `['a' 'b']` (numpy, no commas), with backslash escapes; null when it is not such a list.
 */
function parseListLiteral(text: string): string[] | null {
  const t = text.trim();
  if (!t.startsWith("[") || !t.endsWith("]")) return null;
  const out: string[] = [];
  const escapes: Record<string, string> = {
    n: "\n",
    t: "\t",
    r: "\r",
    "\\": "\\",
    "'": "'",
    '"': '"',
  };
  let i = 1;
  const end = t.length - 1;
  while (i < end) {
    const ch = t[i];
    if (ch === " " || ch === "," || ch === "\n" || ch === "\r" || ch === "\t") {
      i++;
      continue;
    }
    if (ch !== "'" && ch !== '"') return null;
    let value = "";
    for (i++; i < end && t[i] !== ch; i++) {
      if (t[i] !== "\\") {
        value += t[i];
        continue;
      }
      const e = t[++i];
      if (e === "x" || e === "u") {
        const digits = t.slice(i + 1, i + (e === "x" ? 3 : 5));
        if (!/^[0-9a-fA-F]+$/.test(digits)) return null;
        value += String.fromCharCode(parseInt(digits, 16));
        i += digits.length;
      } else if (e in escapes) {
        value += escapes[e];
      } else {
        value += "\\" + e;
      }
    }
    if (i >= end) return null;
    out.push(value);
    i++;
  }
  return out;
}

/** The answer's index: a letter A–D (the original files) or 0–3 (Hugging Face's export). */
function mmluAnswer(text: string): number {
  const a = text.trim();
  const letter = LETTERS.indexOf(a as typeof LETTERS[number]);
  if (letter >= 0) return letter;
  return /^[0-3]$/.test(a) ? Number(a) : -1;
}

/**
 * Reads one MMLU CSV file into documents of its subject. Two layouts are read:
 * - the original files: no header; question, A, B, C, D, answer letter;
 * - a header row naming the columns, as exports from Hugging Face (`cais/mmlu`) have:
 *   `question` (or `input`, `prompt`), the choices as columns `A`…`D` or as one `choices`
 *   column holding a list (`["…", …]` or Python's / numpy's `['…' '…']`), `answer` (or
 *   `target`, `label`), and optionally `subject`.
 *
 * Answers may be letters A–D or indices 0–3 in either layout. A UTF-8 byte order mark is
 * dropped. A row with the wrong number of fields, a choices list that is not four strings or an
 * answer that is neither is an error naming the file and line; all of them are listed together.
 *
 * @example
 * ```ts
 * import { readMmluCsv } from "../mod.ts";
 * const [doc] = readMmluCsv('What is 1+1?,1,2,3,4,B\n', { file: "math_test.csv" });
 * if (doc.prompt !== "What is 1+1?\nA. 1\nB. 2\nC. 3\nD. 4\nAnswer:" || doc.gold !== 1) throw new Error();
 * if (doc.choices?.join() !== " A, B, C, D" || doc.group !== "math") throw new Error();
 * // The same question as Hugging Face exports it: a header, a choices list, answer 1.
 * const [hf] = readMmluCsv('question,subject,choices,answer\nWhat is 1+1?,math,"[\'1\' \'2\' \'3\' \'4\']",1\n', {
 *   file: "test.csv",
 * });
 * if (hf.prompt !== doc.prompt || hf.gold !== 1 || hf.group !== "math") throw new Error();
 * ```
 */
export function readMmluCsv(text: string, options: MmluOptions): BenchmarkDoc[] {
  const { file } = options;
  const records = parseCsv(text, file);
  const issues: DataIssue[] = [];
  const docs: BenchmarkDoc[] = [];
  let layout = HEADERLESS;
  let rows = records;
  const first = records[0];
  // A header names its columns; a question row ends with an answer A–D or 0–3.
  if (first !== undefined && mmluAnswer(first.fields[first.fields.length - 1]) < 0) {
    const named = headerLayout(first.fields);
    if (typeof named === "string") {
      if (first.fields.length === 6) {
        // Not a header: let the row's own error (its answer) be reported below.
      } else {
        fail(`Cannot read MMLU file ${file}`, [{ where: `${file}:${first.line}`, message: named }]);
      }
    } else {
      layout = named;
      rows = records.slice(1);
    }
  }
  const columns = layout === HEADERLESS ? "question, A, B, C, D, answer" : "as its header";
  for (const { fields, line } of rows) {
    const where = `${file}:${line}`;
    if (fields.length !== layout.width) {
      issues.push({
        where,
        message: `expected ${layout.width} fields (${columns}), got ${fields.length}`,
      });
      continue;
    }
    const gold = mmluAnswer(fields[layout.answer]);
    if (gold < 0) {
      issues.push({
        where,
        message: `the answer must be A, B, C, D or 0-3, got ${
          JSON.stringify(fields[layout.answer])
        }`,
      });
      continue;
    }
    const choices = typeof layout.choices === "number"
      ? parseListLiteral(fields[layout.choices])
      : layout.choices.map((k) => fields[k]);
    if (choices === null || choices.length !== 4) {
      issues.push({
        where,
        message: `the choices must be a list of 4 strings, got ${
          JSON.stringify(fields[layout.choices as number])
        }`,
      });
      continue;
    }
    const subject = options.subject ??
      (layout.subject !== undefined && fields[layout.subject].trim() !== ""
        ? fields[layout.subject].trim()
        : mmluSubject(file));
    const question = fields[layout.question].trim();
    docs.push({
      prompt: `${question}\n${LETTERS.map((l, k) => `${l}. ${choices[k]}`).join("\n")}\nAnswer:`,
      input: question,
      choices: LETTERS.map((l) => ` ${l}`),
      gold,
      group: subject,
      description: mmluHeader(subject),
      source: { file, line },
    });
  }
  if (issues.length > 0) {
    fail(`Cannot read MMLU file ${file}: ${issues.length} malformed rows`, issues);
  }
  return docs;
}

/**
 * MMLU as a task: test documents (one or several subjects), few-shot examples from the dev
 * documents of the same subject, in file order (as Hendrycks's code and lm-evaluation-harness
 * take them), separated by blank lines. The result's `acc` is the size-weighted mean over all
 * questions, `acc_macro` the mean over subjects, and `groups` the per-subject accuracy.
 *
 * @example
 * ```ts
 * import { buildContext, mmluTask, readMmluCsv } from "../mod.ts";
 * const test = readMmluCsv("2+2?,3,4,5,6,B\n", { file: "math_test.csv" });
 * const dev = readMmluCsv("1+1?,1,2,3,4,B\n", { file: "math_dev.csv" });
 * const ctx = buildContext(mmluTask(test, dev), 0, { shots: 1 });
 * if (!ctx.includes("D. 4\nAnswer: B\n\n2+2?")) throw new Error(ctx);
 * ```
 */
export function mmluTask(
  test: readonly BenchmarkDoc[],
  dev?: readonly BenchmarkDoc[],
): BenchmarkTask {
  return {
    name: "mmlu",
    kind: "multiple_choice",
    docs: test,
    ...(dev ? { fewShotDocs: dev } : {}),
    fewShotSampler: "first_n",
    fewShotSeparator: "\n\n",
  };
}

// --- BIG-bench --------------------------------------------------------------------------------

/** The 1-based line of each element of the top-level `examples` array of a JSON text. */
function exampleLines(text: string): number[] {
  const lines: number[] = [];
  let line = 1, depth = 0, lastKey: string | null = null, inExamples = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === "\n") line++;
    else if (ch === '"') {
      let s = "";
      for (i++; i < text.length && text[i] !== '"'; i++) {
        if (text[i] === "\\") s += text[++i];
        else s += text[i];
      }
      if (depth === 1) lastKey = s;
    } else if (ch === "{" || ch === "[") {
      if (depth === 1 && ch === "[" && lastKey === "examples") inExamples = true;
      else if (depth === 2 && inExamples) lines.push(line);
      depth++;
    } else if (ch === "}" || ch === "]") {
      depth--;
      if (depth === 1) inExamples = false;
    }
  }
  return lines;
}

/**
 * Where the first syntax error of a JSON text is (an offset), for error messages: V8's
 * `JSON.parse` messages do not always say.
 */
function jsonErrorOffset(text: string): number {
  let i = 0;
  const ws = () => {
    while (i < text.length && " \t\n\r".includes(text[i])) i++;
  };
  const value = (): boolean => {
    ws();
    const ch = text[i];
    if (ch === "{" || ch === "[") {
      const close = ch === "{" ? "}" : "]";
      i++;
      ws();
      if (text[i] === close) return ++i > 0;
      for (;;) {
        if (ch === "{") {
          ws();
          if (text[i] !== '"' || !string()) return false;
          ws();
          if (text[i++] !== ":") return (i--, false);
        }
        if (!value()) return false;
        ws();
        if (text[i] === ",") i++;
        else if (text[i] === close) return ++i > 0;
        else return false;
      }
    }
    if (ch === '"') return string();
    const m = /^(?:true|false|null|-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?)/.exec(
      text.slice(i, i + 400),
    );
    if (!m) return false;
    i += m[0].length;
    return true;
  };
  const string = (): boolean => {
    for (i++; i < text.length; i++) {
      if (text[i] === "\\") i++;
      else if (text[i] === '"') return ++i > 0;
      else if (text[i] < " ") return false;
    }
    return false;
  };
  if (value()) ws();
  return Math.min(i, text.length);
}

/** numpy's `RandomState(seed).permutation(n)` (legacy Mersenne Twister, Fisher–Yates from the end). */
function numpyPermutation(n: number, seed: number): number[] {
  const rng = new Mt19937(seed);
  const out = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i >= 1; i--) {
    const j = rng.integersBelow(i + 1, 1)[0];
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** Python's `sorted` order for strings: by code point. */
function codePointCompare(a: string, b: string): number {
  const x = [...a], y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i].codePointAt(0)! - y[i].codePointAt(0)!;
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

const GENERATIVE_METRICS: Readonly<Record<string, GenerationMetric>> = {
  exact_str_match: "exact_match",
  bleu: "bleu",
  rouge: "rouge",
};

/**
 * Reads a BIG-bench `task.json` into up to two tasks: a multiple-choice one (named after the
 * task, or `name:mc` when there are both) when its `metrics` include `multiple_choice_grade`,
 * and a generation one (`name:gen`) when they include `exact_str_match`, `bleu` or `rouge`, scored
 * by its `preferred_score` if that is one of them, else by the first of those three it has.
 * Without `metrics`, examples with `target_scores` make it multiple choice, otherwise generation
 * by exact match. Generation stops at the task's `stop_string`, else at a newline. Errors name
 * the file and the line of the bad example.
 *
 * @example
 * ```ts
 * import { readBigBenchTask } from "../mod.ts";
 * const json = JSON.stringify({
 *   name: "yes_no", metrics: ["multiple_choice_grade"],
 *   examples: [{ input: "Is fire hot?", target_scores: { no: 0, yes: 1 } }],
 * });
 * const [task] = readBigBenchTask(json, "task.json");
 * if (task.docs[0].prompt !== "\nQ: Is fire hot?\n  choice: yes\n  choice: no\nA: ") {
 *   throw new Error("numpy's RandomState(42).permutation(2) is [1, 0]");
 * }
 * if (task.docs[0].gold !== 1) throw new Error();
 * ```
 */
export function readBigBenchTask(text: string, file: string): BenchmarkTask[] {
  text = stripBom(text);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    const line = text.slice(0, jsonErrorOffset(text)).split("\n").length;
    fail(`Cannot read BIG-bench task ${file}`, [{
      where: `${file}:${line}`,
      message: `not valid JSON: ${msg}`,
    }]);
  }
  const bad = (message: string, line = 1): never =>
    fail(`Cannot read BIG-bench task ${file}`, [{ where: `${file}:${line}`, message }]);
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    bad("the file must hold a JSON object");
  }
  const task = json as Record<string, unknown>;
  const str = (key: string, fallback: string): string => {
    const v = task[key];
    if (v === undefined) return fallback;
    if (typeof v !== "string") bad(`"${key}" must be a string`);
    return v as string;
  };
  const name = str("name", mmluSubject(file.replace(/[\\/]task\.json$/, ".csv")));
  const taskPrefix = str("task_prefix", "");
  const inputPrefix = str("example_input_prefix", "\nQ: ");
  const outputPrefix = str("example_output_prefix", "\nA: ");
  const choicePrefix = str("choice_prefix", "\n  choice: ");
  const separator = str("few_shot_example_separator", "\n");
  const appendChoices = task.append_choices_to_input ?? true;
  if (typeof appendChoices !== "boolean") bad(`"append_choices_to_input" must be true or false`);
  const stopString = task.stop_string;
  if (stopString !== undefined && (typeof stopString !== "string" || stopString === "")) {
    bad(`"stop_string" must be a non-empty string`);
  }
  if (!Array.isArray(task.examples) || task.examples.length === 0) {
    bad(`"examples" must be a non-empty array`);
  }
  const examples = task.examples as unknown[];
  const metricsField = task.metrics;
  if (
    metricsField !== undefined &&
    (!Array.isArray(metricsField) || metricsField.some((m) => typeof m !== "string"))
  ) {
    bad(`"metrics" must be an array of strings`);
  }
  const lines = exampleLines(text);
  const issues: DataIssue[] = [];
  const mcDocs: BenchmarkDoc[] = [], genDocs: BenchmarkDoc[] = [];
  let firstWithoutScores = -1;
  examples.forEach((ex, i) => {
    const line = lines[i] ?? 1;
    const where = `${file}:${line}`;
    const issue = (message: string): void => {
      issues.push({ where, message: `examples[${i}]: ${message}` });
    };
    if (typeof ex !== "object" || ex === null || Array.isArray(ex)) {
      return issue("must be an object");
    }
    const e = ex as Record<string, unknown>;
    if (typeof e.input !== "string") return issue(`"input" must be a string`);
    let scores: [string, number][] | null = null;
    if (e.target_scores !== undefined) {
      const ts = e.target_scores;
      if (typeof ts !== "object" || ts === null || Array.isArray(ts)) {
        return issue(`"target_scores" must be an object of numbers`);
      }
      scores = Object.entries(ts as Record<string, unknown>) as [string, number][];
      if (
        scores.length < 2 || scores.some(([, v]) => typeof v !== "number" || !Number.isFinite(v))
      ) {
        return issue(`"target_scores" must map at least two choices to numbers`);
      }
    }
    let targets: string[] | null = null;
    if (e.target !== undefined) {
      const t = e.target;
      if (typeof t === "string") targets = [t];
      else if (Array.isArray(t) && t.length > 0 && t.every((x) => typeof x === "string")) {
        targets = t;
      } else return issue(`"target" must be a string or a non-empty list of strings`);
    }
    if (!scores && !targets) return issue(`needs "target_scores" or "target"`);
    if (!scores && firstWithoutScores < 0) firstWithoutScores = i;
    let prompt = inputPrefix + e.input;
    if (scores && appendChoices) {
      const sorted = scores.map(([k]) => k).sort(codePointCompare);
      const order = numpyPermutation(sorted.length, 42);
      prompt += choicePrefix + order.map((k) => sorted[k]).join(choicePrefix);
    }
    prompt += outputPrefix;
    const source = { file, line };
    if (scores) {
      const max = Math.max(...scores.map(([, v]) => v));
      mcDocs.push({
        prompt,
        input: e.input,
        choices: scores.map(([k]) => k),
        gold: scores.findIndex(([, v]) => v === max),
        choiceScores: scores.map(([, v]) => v),
        source,
      });
    }
    // Without a "target", BIG-bench takes the choices with the highest score as targets.
    const best = scores ? Math.max(...scores.map(([, v]) => v)) : 0;
    genDocs.push({
      prompt,
      input: e.input,
      targets: targets ?? scores!.filter(([, v]) => v === best).map(([k]) => k),
      source,
    });
  });
  if (issues.length > 0) {
    fail(`Cannot read BIG-bench task ${file}: ${issues.length} bad examples`, issues);
  }
  const listed = metricsField as string[] | undefined;
  const wantsMc = listed
    ? listed.includes("multiple_choice_grade")
    : mcDocs.length === examples.length;
  // The task's preferred_score first (it becomes the score), then the others.
  const preferred = typeof task.preferred_score === "string" ? task.preferred_score : "";
  const genMetrics = listed
    ? Object.keys(GENERATIVE_METRICS).filter((m) => listed.includes(m))
      .sort((a, b) => Number(b === preferred) - Number(a === preferred))
      .map((m) => GENERATIVE_METRICS[m])
    : wantsMc
    ? []
    : ["exact_match" as const];
  const tasks: BenchmarkTask[] = [];
  const common = { description: taskPrefix, fewShotSeparator: separator };
  const both = wantsMc && genMetrics.length > 0;
  if (wantsMc) {
    if (firstWithoutScores >= 0) {
      const i = firstWithoutScores;
      bad(`examples[${i}]: multiple_choice_grade needs "target_scores"`, lines[i] ?? 1);
    }
    tasks.push({
      name: both ? `${name}:mc` : name,
      kind: "multiple_choice",
      docs: mcDocs,
      ...common,
    });
  }
  if (genMetrics.length > 0) {
    tasks.push({
      name: both ? `${name}:gen` : name,
      kind: "generate",
      docs: genDocs,
      metrics: genMetrics,
      stop: [stopString === undefined ? "\n" : stopString as string],
      ...common,
    });
  }
  if (tasks.length === 0) {
    bad(
      `none of the metrics ${
        JSON.stringify(listed)
      } can be computed (multiple_choice_grade, exact_str_match, bleu, rouge)`,
    );
  }
  return tasks;
}

// --- GLUE / SuperGLUE -------------------------------------------------------------------------

/** The GLUE / SuperGLUE tasks read here. */
export type GlueTaskName = "sst2" | "rte" | "boolq";

/** The default verbalizer of each task: the continuation for each label index. */
export const GLUE_VERBALIZERS: Readonly<Record<GlueTaskName, readonly string[]>> = Object.freeze({
  sst2: [" negative", " positive"],
  rte: [" True", " False"],
  boolq: [" no", " yes"],
});

/** Options for {@linkcode readGlue}. */
export interface GlueOptions {
  /** The continuation for each label index (see {@linkcode GLUE_VERBALIZERS}). */
  verbalizer?: readonly string[];
}

/** Lines of a JSONL text as objects, or why a line is not one. Blank lines are skipped. */
function jsonlLines(
  text: string,
): ({ line: number; value: Record<string, unknown> } | { line: number; error: string })[] {
  const out:
    ({ line: number; value: Record<string, unknown> } | { line: number; error: string })[] = [];
  text.split("\n").forEach((raw, k) => {
    const line = k + 1;
    if (raw.trim() === "") return;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (e) {
      out.push({ line, error: `not valid JSON: ${e instanceof Error ? e.message : e}` });
      return;
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      out.push({ line, error: "expected a JSON object" });
    } else {
      out.push({ line, value: value as Record<string, unknown> });
    }
  });
  return out;
}

/**
 * One clear error when a file meant to be SuperGLUE JSONL is not JSONL at all (GLUE's TSV, most
 * often), instead of one "not valid JSON" per line: its first line decides.
 */
function notJsonl(name: GlueTaskName, text: string, file: string): void {
  const lines = text.split("\n");
  const k = lines.findIndex((l) => l.trim() !== "");
  if (k < 0 || lines[k].trim().startsWith("{")) return;
  const fields = name === "rte"
    ? '"premise", "hypothesis" and "label"'
    : '"question", "passage" and "label"';
  const tsv = lines[k].includes("\t")
    ? ` It is tab-separated (GLUE's TSV layout${
      name === "rte" ? ": index, sentence1, sentence2, label" : ""
    }); give SuperGLUE's ${name === "rte" ? "RTE" : "BoolQ"} JSONL instead.`
    : "";
  fail(`Cannot read ${name} file ${file}: it is not JSONL`, [{
    where: `${file}:${k + 1}`,
    message: `expected one JSON object per line with ${fields}, got ${
      JSON.stringify(lines[k].slice(0, 60))
    }.${tsv}`,
  }]);
}

function field(v: Record<string, unknown>, keys: readonly string[]): string | undefined {
  for (const k of keys) if (typeof v[k] === "string") return v[k] as string;
  return undefined;
}

/**
 * Reads a GLUE / SuperGLUE file into a multiple-choice task, with lm-evaluation-harness's
 * prompts:
 * - `sst2` (TSV with the header `sentence\tlabel`, labels 0 negative / 1 positive):
 *   `{sentence}\nQuestion: Is this sentence positive or negative?\nAnswer:`;
 * - `rte` (JSONL, label "entailment" = 0 / "not_entailment" = 1):
 *   `{premise}\nQuestion: {hypothesis} True or False?\nAnswer:`;
 * - `boolq` (JSONL, label true = 1 / false = 0): `{passage}\nQuestion: {question}?\nAnswer:`.
 *
 * Every bad row (wrong field count, missing field, unknown label, invalid JSON) is listed with its
 * file and line; files without labels (GLUE's unlabeled test files) are rejected, and a JSONL task
 * given a file that is not JSONL (GLUE's TSV) gets one error saying so.
 *
 * @example
 * ```ts
 * import { readGlue } from "../mod.ts";
 * const task = readGlue("sst2", "sentence\tlabel\nit 's a charming journey . \t1\n", "dev.tsv");
 * const doc = task.docs[0];
 * if (doc.gold !== 1 || doc.choices?.[1] !== " positive" || doc.source?.line !== 2) throw new Error();
 * ```
 */
export function readGlue(
  name: GlueTaskName,
  text: string,
  file: string,
  options: GlueOptions = {},
): BenchmarkTask {
  text = stripBom(text);
  const verbalizer = options.verbalizer ?? GLUE_VERBALIZERS[name];
  if (verbalizer === undefined) {
    throw new RangeError(`Cannot read GLUE task "${name}": known tasks are sst2, rte, boolq`);
  }
  if (verbalizer.length !== 2) {
    throw new RangeError(`Cannot read GLUE task "${name}": the verbalizer needs 2 entries`);
  }
  const issues: DataIssue[] = [];
  const docs: BenchmarkDoc[] = [];
  const push = (prompt: string, input: string, gold: number, line: number) =>
    docs.push({ prompt, input, choices: verbalizer, gold, source: { file, line } });
  if (name === "sst2") {
    const lines = text.split("\n");
    const header = lines[0]?.replace(/\r$/, "");
    if (header !== "sentence\tlabel") {
      fail(`Cannot read SST-2 file ${file}`, [{
        where: `${file}:1`,
        message: `expected the header "sentence\\tlabel", got ${JSON.stringify(header)}${
          header === "index\tsentence" ? " (GLUE's test file has no labels)" : ""
        }`,
      }]);
    }
    lines.slice(1).forEach((raw, k) => {
      const line = k + 2, where = `${file}:${line}`;
      const row = raw.replace(/\r$/, "");
      if (row === "") return;
      const cells = row.split("\t");
      if (cells.length !== 2) {
        issues.push({
          where,
          message: `expected 2 tab-separated fields (sentence, label), got ${cells.length}`,
        });
        return;
      }
      if (cells[1] !== "0" && cells[1] !== "1") {
        issues.push({
          where,
          message: `the label must be 0 or 1, got ${JSON.stringify(cells[1])}`,
        });
        return;
      }
      push(
        `${cells[0]}\nQuestion: Is this sentence positive or negative?\nAnswer:`,
        cells[0],
        Number(cells[1]),
        line,
      );
    });
  } else {
    notJsonl(name, text, file);
    for (const entry of jsonlLines(text)) {
      const { line } = entry, where = `${file}:${line}`;
      if ("error" in entry) {
        issues.push({ where, message: entry.error });
        continue;
      }
      const value = entry.value;
      const label = value.label;
      if (name === "rte") {
        const premise = field(value, ["premise", "sentence1"]);
        const hypothesis = field(value, ["hypothesis", "sentence2"]);
        const gold = label === "entailment" || label === 0
          ? 0
          : label === "not_entailment" || label === 1
          ? 1
          : -1;
        if (premise === undefined || hypothesis === undefined) {
          issues.push({ where, message: `needs string fields "premise" and "hypothesis"` });
        } else if (gold < 0) {
          issues.push({
            where,
            message: `the label must be "entailment", "not_entailment", 0 or 1, got ${
              JSON.stringify(label)
            }`,
          });
        } else {
          push(`${premise}\nQuestion: ${hypothesis} True or False?\nAnswer:`, premise, gold, line);
        }
      } else {
        const question = field(value, ["question"]);
        const passage = field(value, ["passage"]);
        const gold = label === true || label === 1 ? 1 : label === false || label === 0 ? 0 : -1;
        if (question === undefined || passage === undefined) {
          issues.push({ where, message: `needs string fields "question" and "passage"` });
        } else if (gold < 0) {
          issues.push({
            where,
            message: `the label must be true, false, 1 or 0, got ${JSON.stringify(label)}`,
          });
        } else {
          push(`${passage}\nQuestion: ${question}?\nAnswer:`, question, gold, line);
        }
      }
    }
  }
  if (issues.length > 0) {
    fail(`Cannot read ${name} file ${file}: ${issues.length} malformed lines`, issues);
  }
  if (docs.length === 0) {
    fail(`Cannot read ${name} file ${file}`, [{ where: `${file}:1`, message: "no examples" }]);
  }
  return { name, kind: "multiple_choice", docs, fewShotSeparator: "\n\n" };
}
