/**
 * The main job behind `deno task train` and `deno task compare`: load the base model, build the
 * data (the embedded multi-task suite or the user's JSONL), score every task before, apply the PEFT
 * method, train, score again, and write `runs/<name>/`: the adapter (PEFT layout where one exists),
 * `metrics.json`, `report.md`, `config.json` and SVG plots. A run stopped at any moment resumes
 * with `resume: true` from its last checkpoint; every file is written atomically.
 *
 * @module
 */

import { buildSuite, type SuiteTaskData } from "../data/suite.ts";
import { mixTasks } from "../data/mixture.ts";
import { readJsonl } from "../data/examples.ts";
import { splitItems } from "../data/split.ts";
import { type TokenizedExample, tokenizeExamples } from "../data/tokenize.ts";
import { Batcher } from "../data/batch.ts";
import { isChat, type PromptCompletion, type TextExample } from "../data/examples.ts";
import { chatToPromptCompletion } from "../data/chat.ts";
import { gpt2ParameterShapes, loadModelCheckpoint } from "../models/checkpoint.ts";
import {
  type GPTConfig,
  gptConfig,
  type ModelConfig,
  type PresetName,
  PRESETS,
  readModelConfig,
} from "../models/config.ts";
import { llamaParameterShapes } from "../models/llama_checkpoint.ts";
import {
  type BaseDtype,
  defaultBaseDtype,
  HALF_BASE_METHODS,
  storedInBaseDtype,
} from "../models/base_dtype.ts";
import type { Decoder } from "../models/decoder.ts";
import { GPT } from "../models/gpt.ts";
import { writeFileAtomic } from "../models/safetensors.ts";
import type { Tokenizer } from "../models/tokenizer.ts";
import { explainAccess, modelFromCheckpoint, tokenizerFor, withAccess } from "./common.ts";
import type { PeftInstance } from "../peft/method.ts";
import { adapterMethod, peftMethod } from "../peft/registry.ts";
import { Gpu } from "../runtime/gpu.ts";
import { Trainer, type TrainResult } from "../train/trainer.ts";
import { type MemoryReport, memoryReport, parameterReport } from "../train/report.ts";
import {
  type Available,
  availableMemory,
  describePlan,
  fitMemory,
  type FitResult,
  formatBytes,
  planInputFromModel,
  planLimits,
  planMemory,
  planParamsFromShapes,
  type RemedyNames,
  shapeOfConfig,
} from "../train/memory_plan.ts";
import { evaluateSuite, type SuiteScore, textPerplexity } from "../eval/harness.ts";
import { pretrainCorpus } from "../data/corpus.ts";
import { ALIASES, DEFAULT_CONFIG, type RunConfig } from "./config.ts";
import { formatSeconds, ProgressBar } from "./progress.ts";
import { barChart, lineChart } from "./svg.ts";

/** One evaluated task: its metric and the score before and after fine-tuning (0–100). */
export interface TaskResult {
  /** Task name. */
  task: string;
  /** Metric name (e.g. `rougeL`, `bleu`, `exact_match`, `acc`). */
  metric: string;
  /** Whether the task was trained on (false: held out, measures forgetting). */
  trained: boolean;
  /** Score of the base model. */
  before: number;
  /** Score after fine-tuning. */
  after: number;
}

/** What a job measured (also written as metrics.json). */
export interface JobResult {
  /** Run name. */
  name: string;
  /** Output folder. */
  dir: string;
  /** PEFT method and its description. */
  method: string;
  /** e.g. "LoRA r=16 alpha=32 …". */
  description: string;
  /** Per-task scores. */
  tasks: TaskResult[];
  /** Mean after − before over trained tasks. */
  trainedGain: number;
  /** Mean after − before over held-out tasks (negative: forgetting). */
  heldOutDelta: number;
  /**
   * Perplexity of general text (fresh documents like the base model's pretraining corpus, seed
   * 1,000,003) before and after: a rise is forgetting even where held-out task scores are low.
   * NaN when not measured (`eval.general_documents` 0).
   */
  generalPerplexity: { before: number; after: number };
  /** Parameter counts (as PEFT's print_trainable_parameters). */
  parameters: { trainable: number; total: number; percent: number };
  /** GPU memory split, bytes. */
  memory: MemoryReport;
  /** Training losses per step, dev losses by step. */
  losses: number[];
  /** Dev losses. */
  devLosses: { step: number; loss: number }[];
  /** Training wall seconds and throughput. */
  train: { seconds: number; tokensPerSecond: number; steps: number };
  /** Wall seconds of the whole job. */
  seconds: number;
}

/**
 * The tokenizer a config names (`bytes`, `tiktoken-gpt2` or a tokenizer.json path), or with
 * `auto` the model folder's own (see {@linkcode tokenizerFor}); `vocab` is the model's.
 */
export function makeTokenizer(c: RunConfig, vocab: number): Promise<Tokenizer> {
  const kind = c.tokenizer.kind === "auto" ? undefined : c.tokenizer.kind;
  return tokenizerFor(kind, c.model.path || undefined, vocab);
}

/**
 * Where the tokenizer of {@linkcode makeTokenizer} comes from, for the job's first line: the
 * tokenizer.json it read, or what the config or the vocabulary chose.
 */
async function tokenizerSource(c: RunConfig, tok: Tokenizer): Promise<string> {
  if (c.tokenizer.kind !== "auto") return `${tok.name} (tokenizer.kind ${c.tokenizer.kind})`;
  const file = `${c.model.path.replace(/\/+$/, "")}/tokenizer.json`;
  if (c.model.path && await Deno.stat(file).then(() => true, () => false)) {
    return `${tok.name} from ${file}`;
  }
  return `${tok.name} (${
    c.model.path ? `${c.model.path} has no tokenizer.json; ` : ""
  }chosen by the vocabulary)`;
}

/**
 * Loads the base model of a config: a Hugging Face folder of any supported family, or a GPT-2
 * preset; dropout rates as the config sets them (active in training only).
 */
export async function loadBase(
  gpu: Gpu,
  c: RunConfig,
  log: (s: string) => void,
  baseDtype: BaseDtype = "f32",
): Promise<Decoder> {
  const options = { seed: c.seed, trainable: false, baseDtype };
  if (c.model.path) {
    const path = c.model.path;
    const ckpt = await withAccess(
      { path, folder: true, what: "model.path" },
      () => loadModelCheckpoint(path),
    );
    return await modelFromCheckpoint(gpu, ckpt, options, log);
  }
  return await GPT.create(gpu, presetConfig(c), options);
}

/** The GPT-2 preset a config names when it has no model folder. */
function presetConfig(c: RunConfig): GPTConfig {
  if (!(c.model.preset in PRESETS)) {
    throw new Error(
      `Cannot use config key "model.preset": "${c.model.preset}" is not one of ${
        Object.keys(PRESETS).join(", ")
      }`,
    );
  }
  return gptConfig(c.model.preset as PresetName);
}

/** How a memory plan's remedies are set in a run config. */
const PLAN_KEYS: RemedyNames = {
  gradientCheckpointing: "--schedule.gradient_checkpointing",
  halfBase: "--model.base_dtype",
  batchSize: "--schedule.batch_size",
  seqLen: "--data.max_length",
};

/**
 * The memory plan of a job from its config alone, before any weight is read: the model's
 * config.json (or preset), all parameters trained for full fine-tuning and frozen otherwise (the
 * method's own parameters, a small part, are planned once it is applied), batch × sequence.
 * Refuses a run that cannot fit (a MemoryPlanError naming the keys that would make it fit) and
 * returns the plan, with checkpointing turned on where only that fits. `available` defaults to
 * what the machine says (see `availableMemory`).
 */
export async function planJobMemory(
  gpu: Gpu,
  c: RunConfig,
  nVirtual: number,
  available: Available | undefined = availableMemory(gpu),
): Promise<FitResult> {
  let model: ModelConfig;
  if (c.model.path) {
    const file = `${c.model.path}/config.json`;
    const text = await withAccess(
      { path: c.model.path, folder: true, what: "model.path" },
      () => Deno.readTextFile(file),
    );
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new Error(`Cannot load ${file}: ${(e as Error).message}`);
    }
    model = readModelConfig(json, file);
  } else model = { family: "gpt2", config: presetConfig(c) };
  const shapes = model.family === "gpt2"
    ? gpt2ParameterShapes(model.config)
    : llamaParameterShapes(model.config);
  const shape = shapeOfConfig(model.config);
  const baseDtype = chooseBaseDtype(c, shapes).dtype;
  return fitMemory({
    shape,
    params: planParamsFromShapes(shapes, c.peft.method === "full")
      .map((p) => ({ ...p, half: storedInBaseDtype(p.name, p.shape) })),
    baseDtype,
    halfBaseAvailable: HALF_BASE_METHODS.includes(c.peft.method),
    batchSize: c.schedule.batch_size,
    seqLen: Math.min(c.data.max_length, shape.maxPositions - nVirtual),
    nVirtual,
    gradientCheckpointing: c.schedule.gradient_checkpointing,
    lossLogBatches: LOG_EVERY * c.schedule.grad_accum,
    packedOperands: gpu.isSoftware,
    limits: planLimits(gpu),
    available,
  }, PLAN_KEYS);
}

/**
 * The base dtype of a job: `model.base_dtype`, or with "auto" models/base_dtype.ts
 * `defaultBaseDtype` for the method and the checkpoint's parameter count; `why` says which.
 *
 * @example
 * ```ts
 * import { gpt2ParameterShapes, gptConfig } from "../mod.ts";
 * import { DEFAULT_CONFIG } from "./config.ts";
 * import { chooseBaseDtype } from "./job.ts";
 * const shapes = gpt2ParameterShapes(gptConfig("gpt2")); // 124M parameters
 * if (chooseBaseDtype(DEFAULT_CONFIG, shapes).dtype !== "f16") throw new Error("LoRA, over 100M");
 * const full = { ...DEFAULT_CONFIG, peft: { method: "full" } };
 * if (chooseBaseDtype(full, shapes).dtype !== "f32") throw new Error("full fine-tuning: f32");
 * ```
 */
export function chooseBaseDtype(
  c: RunConfig,
  shapes: ReadonlyMap<string, readonly number[]>,
): { dtype: BaseDtype; why: string } {
  if (c.model.base_dtype !== "auto") {
    return { dtype: c.model.base_dtype as BaseDtype, why: "model.base_dtype" };
  }
  let n = 0;
  for (const shape of shapes.values()) n += shape.reduce((a, b) => a * b, 1);
  const dtype = defaultBaseDtype(c.peft.method, n);
  const millions = `${(n / 1e6).toFixed(n < 1e7 ? 2 : 0)}M parameters`;
  return { dtype, why: `model.base_dtype auto: ${c.peft.method} on ${millions}` };
}

/** Losses are read every this many steps. */
const LOG_EVERY = 10;

/** Says that checkpointing was turned on, and why. */
function checkpointingNote(fit: FitResult, c: RunConfig): string {
  const without = planMemory({ ...fit.plan.input, gradientCheckpointing: false });
  return `memory plan: the run fits only with gradient checkpointing (${
    formatBytes(fit.plan.total)
  }; ${formatBytes(without.total)} without${
    fit.plan.input.available ? `, ${formatBytes(fit.plan.input.available.bytes)} available` : ""
  }): turned on, as ${PLAN_KEYS.gradientCheckpointing}=true would (it was ${c.schedule.gradient_checkpointing})`;
}

function toPromptCompletion(e: TextExample): PromptCompletion {
  return isChat(e) ? chatToPromptCompletion(e) : e;
}

/** The data of a job: tokenised train/dev sets and the per-task test splits to score. */
export interface JobData {
  /** Training examples (tokenised). */
  train: TokenizedExample[];
  /** Dev examples (tokenised). */
  dev: TokenizedExample[];
  /** Tasks to score (name, metric, test split, trained or held out). */
  tasks: SuiteTaskData[];
  /** Lines describing the data (mixture, truncation counts). */
  notes: string[];
}

/** Builds the data of a job. */
export async function buildData(c: RunConfig, tok: Tokenizer, T: number): Promise<JobData> {
  const opts = {
    maxLength: T,
    truncation: c.data.truncation as "error" | "truncate",
    addEos: tok.eosId !== undefined,
  };
  const notes: string[] = [];
  let trainEx: PromptCompletion[], devEx: PromptCompletion[], tasks: SuiteTaskData[];
  const read = (path: string, key: string) =>
    withAccess({ path, what: `data.${key}` }, () => readJsonl(path));
  if (c.data.train_file) {
    const all = (await read(c.data.train_file, "train_file")).map(toPromptCompletion);
    const split = splitItems(all, { seed: c.seed });
    trainEx = split.train;
    devEx = c.data.dev_file
      ? (await read(c.data.dev_file, "dev_file")).map(toPromptCompletion)
      : split.dev;
    const test = c.data.test_file
      ? (await read(c.data.test_file, "test_file")).map(toPromptCompletion)
      : split.test;
    if (trainEx.length === 0) {
      throw new Error(`Cannot train: ${c.data.train_file} yields no training examples`);
    }
    tasks = [{
      task: {
        name: "custom",
        metric: "rouge",
        description: `your data (${c.data.train_file})`,
      } as SuiteTaskData["task"],
      heldOut: false,
      train: trainEx,
      dev: devEx,
      test,
    }];
    notes.push(
      `data: ${c.data.train_file}: ${trainEx.length} train, ${devEx.length} dev, ${test.length} test examples`,
    );
  } else {
    const names = [...c.data.tasks, ...c.data.held_out.filter((t) => !c.data.tasks.includes(t))];
    tasks = buildSuite({
      seed: c.seed,
      sizes: { train: c.data.train_size, dev: c.data.dev_size, test: c.data.test_size },
      tasks: names,
    }).map((t) => ({ ...t, heldOut: !c.data.tasks.includes(t.task.name) }));
    const trained = tasks.filter((t) => !t.heldOut);
    const mix = mixTasks(Object.fromEntries(trained.map((t) => [t.task.name, t.train])), {
      seed: c.seed,
      cap: c.data.mixing_cap,
      // Shares of the trained tasks only: the defaults name all five, a run may train fewer.
      weights: Object.fromEntries(
        Object.entries(c.data.mixing_weights).filter(([task]) => c.data.tasks.includes(task)),
      ),
    });
    trainEx = mix.examples;
    devEx = trained.flatMap((t) => t.dev);
    notes.push(
      `mixture: ${
        mix.report.map((r) => `${r.task} ${(100 * r.fraction).toFixed(1)}%`).join(", ")
      } (${trainEx.length} examples)`,
    );
  }
  const train = tokenizeExamples(trainEx, tok, opts);
  const dev = tokenizeExamples(devEx, tok, opts);
  if (train.truncated > 0 || dev.truncated > 0) {
    notes.push(`truncated: ${train.truncated} train and ${dev.truncated} dev examples`);
  }
  return { train: train.examples, dev: dev.examples, tasks, notes };
}

async function score(
  model: Decoder,
  tok: Tokenizer,
  tasks: SuiteTaskData[],
  c: RunConfig,
): Promise<SuiteScore[]> {
  return await evaluateSuite(model, tok, tasks, {
    seed: c.seed,
    maxNewTokens: c.eval.max_new_tokens,
  });
}

/**
 * The `base_model_name_or_path` a saved adapter records: `model.base_model_name` when set, else
 * `model.path` exactly as given (Python's PEFT records what was passed to `from_pretrained`, a
 * folder or a hub id, unchanged), else "" (a preset has no name that loads it elsewhere).
 *
 * @example
 * ```ts
 * import { DEFAULT_CONFIG } from "./config.ts";
 * import { baseModelName } from "./job.ts";
 * const model = { ...DEFAULT_CONFIG.model, path: "/data/gpt2/" };
 * if (baseModelName({ ...DEFAULT_CONFIG, model }) !== "/data/gpt2/") throw new Error();
 * const named = { ...model, base_model_name: "openai-community/gpt2" };
 * if (baseModelName({ ...DEFAULT_CONFIG, model: named }) !== "openai-community/gpt2") throw new Error();
 * ```
 */
export function baseModelName(c: RunConfig): string {
  return c.model.base_model_name || c.model.path;
}

/** Options for {@linkcode runJob}. */
export interface JobOptions {
  /** Continue from `runs/<name>/checkpoint` if it exists. */
  resume?: boolean;
  /** Where progress goes (default console.log). */
  log?: (line: string) => void;
  /** Show a progress bar (default true). */
  progress?: boolean;
  /** Called at every logged step (after any checkpoint of that step was written). */
  onProgress?: (step: number) => void;
  /** Per-task scores of the base model from an earlier job on the same data (compare reuses them). */
  before?: number[];
  /** The base model's general-text perplexity from an earlier job (compare reuses it). */
  beforePerplexity?: number;
  /**
   * Config keys (full names like `optimizer.lr`, short forms like `lr`, or whole sections like
   * `eval`) allowed to differ, when resuming, from the config the checkpoint was trained with; any
   * other difference stops the job before it loads anything.
   */
  resumeAllow?: readonly string[];
  /**
   * Awaited at each stage of every checkpoint save (see `Trainer.create`); the kill test stops
   * the process there.
   */
  onCheckpointStage?: (
    stage: "created" | "partial" | "verified" | "moved" | "renamed",
    step: number,
  ) => void | Promise<void>;
}

/**
 * Creates `dir` if needed and checks that a file can be created in it and read back (every output
 * is verified by reading it back before it replaces the old one), so that a job fails before its
 * work rather than when it writes the results. `what` names the folder in the error.
 *
 * @example
 * ```ts
 * import { ensureWritableFolder } from "./job.ts";
 * const dir = await Deno.makeTempDir();
 * await ensureWritableFolder(`${dir}/out`, "--out");
 * await Deno.writeTextFile(`${dir}/file`, "");
 * let error = "";
 * await ensureWritableFolder(`${dir}/file/out`, "--out").catch((e) => error = e.message);
 * if (!error.startsWith(`Cannot write to --out ${dir}/file/out:`)) throw new Error(error);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function ensureWritableFolder(dir: string, what: string): Promise<void> {
  try {
    await Deno.mkdir(dir, { recursive: true });
    const probe = await Deno.makeTempFile({ dir, prefix: ".write-check." });
    try {
      await Deno.readFile(probe);
    } finally {
      await Deno.remove(probe);
    }
  } catch (e) {
    throw explainAccess(e, { path: dir, folder: true, what }) ??
      new Error(`Cannot write to ${what} ${dir}: ${(e as Error).message}`, { cause: e });
  }
}

/** The folders inside a run folder that the job writes into (files are renamed into place). */
const RUN_SUBFOLDERS = ["adapter", "checkpoint", ".checkpoint.old"];

/**
 * The run folder `<output.dir>/<name>`, created and checked writable. The name must be one folder
 * name; the run folder and the folders the job writes into must not resolve (through symbolic
 * links) outside the output folder, which is what `--allow-write=runs` is meant to guarantee but
 * does not: Deno's allow-list does not follow links.
 *
 * @example
 * ```ts
 * import { DEFAULT_CONFIG } from "./config.ts";
 * import { prepareRunFolder } from "./job.ts";
 * const root = await Deno.makeTempDir();
 * const output = { dir: root, checkpoint_every: 0 };
 * const dir = await prepareRunFolder({ ...DEFAULT_CONFIG, name: "r1", output });
 * if (dir !== `${root}/r1` || !(await Deno.stat(dir)).isDirectory) throw new Error(dir);
 * let error = "";
 * await prepareRunFolder({ ...DEFAULT_CONFIG, name: "..", output }).catch((e) => error = e.message);
 * if (!error.startsWith('Cannot use run name "..":')) throw new Error(error);
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function prepareRunFolder(c: RunConfig): Promise<string> {
  const root = c.output.dir;
  if (c.name === "" || c.name === "." || c.name === ".." || /[\\/\0]/.test(c.name)) {
    throw new Error(
      `Cannot use run name "${c.name}": it must name one folder inside ${root} (no "/", "\\", "." or "..")`,
    );
  }
  await ensureWritableFolder(root, "the output folder");
  // The run folder is read too (resume, symbolic links): `--allow-write` alone does not do.
  const realRoot = await withAccess(
    { path: root, folder: true, what: "the output folder" },
    () => Deno.realPath(root),
  );
  const sep = Deno.build.os === "windows" ? "\\" : "/";
  const dir = `${root}/${c.name}`;
  for (const path of [dir, ...RUN_SUBFOLDERS.map((f) => `${dir}/${f}`)]) {
    let link: Deno.FileInfo;
    try {
      link = await Deno.lstat(path);
    } catch (e) {
      // Absent, or below a file: then nothing can be written there, which the check below says.
      if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) continue;
      throw e;
    }
    if (!link.isSymlink && path !== dir) continue; // a real entry of an already checked folder
    let real: string;
    try {
      real = await Deno.realPath(path);
    } catch (e) {
      throw new Error(
        `Cannot use run folder ${path}: it is a symbolic link to ${await Deno.readLink(
          path,
        )}, which cannot be resolved (${(e as Error).message})`,
        { cause: e },
      );
    }
    if (!real.startsWith(realRoot + sep)) {
      throw new Error(
        `Cannot use run folder ${path}: it resolves to ${real}, outside the output folder ${realRoot}`,
      );
    }
  }
  await ensureWritableFolder(dir, "the run folder");
  return dir;
}

/** One key whose value differs between two configs (undefined: absent on that side). */
export interface ConfigDifference {
  /** Dotted key, e.g. `optimizer.lr`. */
  key: string;
  /** The stored value. */
  stored: unknown;
  /** The new value. */
  now: unknown;
}

/** Keys that say where a run lives, not how it trains: a moved run folder still resumes. */
const LOCATION_KEYS = new Set(["name", "output.dir"]);

function flatten(v: unknown, prefix: string, out: Map<string, unknown>): Map<string, unknown> {
  if (typeof v === "object" && v !== null && !Array.isArray(v)) {
    for (const [k, x] of Object.entries(v)) flatten(x, prefix ? `${prefix}.${k}` : k, out);
  } else out.set(prefix, v);
  return out;
}

/**
 * The keys in which a stored run config (`config.json` as written by {@linkcode runJob}) and a new
 * one differ, leaves compared as JSON, sorted by key; `name` and `output.dir` only locate the run
 * and are not compared.
 *
 * @example
 * ```ts
 * import { DEFAULT_CONFIG } from "./config.ts";
 * import { configDifferences } from "./job.ts";
 * const now = { ...DEFAULT_CONFIG, optimizer: { ...DEFAULT_CONFIG.optimizer, lr: 0.002 } };
 * const diff = configDifferences(JSON.parse(JSON.stringify(DEFAULT_CONFIG)), now);
 * if (diff.length !== 1 || diff[0].key !== "optimizer.lr" || diff[0].now !== 0.002) {
 *   throw new Error(JSON.stringify(diff));
 * }
 * ```
 */
export function configDifferences(stored: unknown, now: RunConfig): ConfigDifference[] {
  const a = flatten(stored, "", new Map()),
    b = flatten(JSON.parse(JSON.stringify(now)), "", new Map());
  const keys = [...new Set([...a.keys(), ...b.keys()])].filter((k) => !LOCATION_KEYS.has(k)).sort();
  // A key added to the config after the run was stored, now at its default, changes nothing.
  const defaults = flatten(JSON.parse(JSON.stringify(DEFAULT_CONFIG)), "", new Map());
  const same = (k: string) =>
    JSON.stringify(a.get(k)) === JSON.stringify(b.get(k)) ||
    (!a.has(k) && defaults.has(k) && JSON.stringify(b.get(k)) === JSON.stringify(defaults.get(k)));
  return keys.filter((k) => !same(k))
    .map((key) => ({ key, stored: a.get(key), now: b.get(key) }));
}

/** Full names of `--resume-allow` entries; an entry that names no config key or section is an error. */
function resumeAllowKeys(allow: readonly string[]): string[] {
  const known = [...flatten(JSON.parse(JSON.stringify(DEFAULT_CONFIG)), "", new Map()).keys()];
  return allow.map((a) => {
    const key = ALIASES[a] ?? a;
    const ok = key.startsWith("peft.") ||
      known.some((k) => k === key || k.startsWith(`${key}.`));
    if (!ok) {
      throw new Error(
        `Cannot use --resume-allow: "${a}" is not a config key or section (e.g. optimizer.lr, lr, schedule)`,
      );
    }
    return key;
  });
}

/**
 * The run config saved in every checkpoint: config.json says what the run was last started with,
 * this what the checkpoint's weights were trained with (they differ after a fresh run into a
 * folder holding an older run's checkpoint, stopped before its first save).
 */
const RUN_CONFIG_FILE = "run_config.json";

/**
 * Refuses to resume `dir` from `checkpoint` when the config it was trained with (the checkpoint's
 * run_config.json, or the run's config.json for checkpoints without one) differs from `c` in keys
 * not in `allow`; returns the accepted differences.
 */
async function checkResumeConfig(
  dir: string,
  checkpoint: string,
  c: RunConfig,
  allow: readonly string[],
): Promise<ConfigDifference[]> {
  const saved = `${checkpoint}/${RUN_CONFIG_FILE}`;
  const file = await Deno.stat(saved).then(() => saved, () => `${dir}/config.json`);
  let stored: unknown;
  try {
    stored = JSON.parse(await Deno.readTextFile(file));
  } catch (e) {
    throw new Error(
      `Cannot resume ${dir}: the config its checkpoint was trained with cannot be read from ${file} (${
        (e as Error).message
      }); restore it, or start over without --resume`,
      { cause: e },
    );
  }
  const allowed = (k: string) => allow.some((a) => k === a || k.startsWith(`${a}.`));
  const diff = configDifferences(stored, c);
  const refused = diff.filter((d) => !allowed(d.key));
  if (refused.length > 0) {
    const show = (v: unknown) => v === undefined ? "absent" : JSON.stringify(v);
    const items = refused.map((d) => `"${d.key}" (stored ${show(d.stored)}, now ${show(d.now)})`);
    const list = items.length === 1
      ? items[0]
      : `${items.slice(0, -1).join(", ")} and ${items[items.length - 1]}`;
    throw new Error(
      `Cannot resume ${dir}: the config differs from the stored ${file} in ${list}; pass --resume-allow=${
        [...allow, ...refused.map((d) => d.key)].join(",")
      } to accept`,
    );
  }
  return diff;
}

/** Runs a whole job and writes its outputs. */
export async function runJob(c: RunConfig, options: JobOptions = {}): Promise<JobResult> {
  const t0 = performance.now();
  const log = options.log ?? ((s: string) => console.log(s));
  const allow = resumeAllowKeys(options.resumeAllow ?? []);
  const dir = await prepareRunFolder(c);
  const configText = JSON.stringify(c, null, 2) + "\n";
  const writeConfig = () => writeFileAtomic(`${dir}/config.json`, configText);
  // Before anything is loaded: which checkpoint to resume, and whether its config still holds.
  // The stored config.json is replaced only once the checkpoint is restored under the new one.
  const checkpoint = options.resume ? await Trainer.recoverCheckpoint(dir) : undefined;
  if (checkpoint) {
    for (const d of await checkResumeConfig(dir, checkpoint.path, c, allow)) {
      log(
        `resume: "${d.key}" changed from ${JSON.stringify(d.stored)} to ${
          JSON.stringify(d.now)
        } (allowed)`,
      );
    }
  } else await writeConfig();
  const gpu = await Gpu.get();
  const method = peftMethod(c.peft.method);
  const { method: _m, ...settings } = c.peft;
  // Continuing from an adapter: its folder decides the method's settings (RunConfig.model.adapter).
  const saved = c.model.adapter ? await adapterMethod(c.model.adapter) : undefined;
  if (saved && saved.method.name !== method.name) {
    throw new Error(
      `Cannot continue training from ${c.model.adapter}: it holds a "${saved.method.name}" adapter, but peft.method is "${method.name}"; set --peft.method=${saved.method.name}`,
    );
  }
  const validated = method.validate(settings);
  // Virtual tokens take positions from the context: real sequences get what is left.
  const nVirtual = method.reservedPositions?.(saved ? saved.config.json : validated) ?? 0;
  // Before any weight is read: a run that cannot fit stops here, saying what would fit.
  const early = await planJobMemory(gpu, c, nVirtual);
  const baseDtype = early.plan.input.baseDtype ?? "f32";
  log(
    `${describePlan(early.plan)}${
      c.peft.method === "full" ? "" : "; the method's own parameters follow once applied"
    }`,
  );
  let checkpointing = c.schedule.gradient_checkpointing;
  if (early.checkpointingTurnedOn) {
    checkpointing = true;
    log(checkpointingNote(early, c));
  }
  const model = await loadBase(gpu, c, log, baseDtype);
  const tok = await makeTokenizer(c, model.shape.V);
  log(
    `whet: ${c.name}: ${c.model.path || c.model.preset} on ${gpu.adapterName}${
      gpu.isSoftware ? " (software)" : ""
    }, tokenizer ${await tokenizerSource(c, tok)}`,
  );
  if (baseDtype !== "f32") {
    log(
      `base weights stored in ${baseDtype} (${
        c.model.base_dtype === "auto"
          ? `model.base_dtype auto: ${c.peft.method} on a model over 100M parameters`
          : "model.base_dtype"
      }; compute stays f32; --model.base_dtype=f32 keeps them f32)`,
    );
  }
  try {
    // What a method may need: the tokenizer (prompt tuning's TEXT init), the base model's name.
    const context = { tokenizer: tok, baseModel: baseModelName(c), seed: c.seed, warn: log };
    // A continued adapter is on the model before anything is scored: "before" is where this run
    // starts from.
    const loaded = saved ? await saved.method.load(model, saved.config, context) : undefined;
    if (loaded) log(`adapter ${c.model.adapter}: ${loaded.describe()} (continuing)`);
    const T = Math.min(c.data.max_length, model.shape.maxPositions - nVirtual);
    const data = await buildData(c, tok, T);
    for (const n of data.notes) log(n);

    const documents = c.eval.general_documents;
    const general = pretrainCorpus({ seed: 1_000_003, documents, heldOutExamples: 0 });
    const generalPerplexity = async () =>
      documents > 0 ? (await textPerplexity(model, tok, general)).perplexity : NaN;
    const pplBefore = options.beforePerplexity ?? await generalPerplexity();
    const before = options.before ?? (await score(model, tok, data.tasks, c)).map((s) => s.score);
    log(`before: ${data.tasks.map((t, i) => `${t.task.name} ${before[i].toFixed(1)}`).join(", ")}`);

    const inst: PeftInstance = loaded ?? await method.apply(model, validated, c.seed, context);
    const counts = model.countParameters();
    const pad = tok.eosId ?? 0;
    // Rows are as long as the longest example, not the whole context: padding costs as much as
    // text in every kernel, and the default suite's longest example is well short of the context.
    // Multiples of 8 keep the matmul tiles whole.
    const longest = Math.max(1, ...[...data.train, ...data.dev].map((e) => e.ids.length));
    const rowLength = Math.min(T, Math.ceil(longest / 8) * 8);
    const trainBatcher = new Batcher(data.train, {
      batchSize: c.schedule.batch_size,
      seqLen: rowLength,
      padId: pad,
      seed: c.seed,
    });
    const devBatcher = data.dev.length > 0
      ? new Batcher(data.dev, {
        batchSize: c.schedule.batch_size,
        seqLen: rowLength,
        padId: pad,
        seed: c.seed,
        shuffle: false,
      })
      : undefined;
    // Measure training memory alone: drop buffers pooled by the evaluation, then restart the peaks.
    gpu.trimMemory();
    gpu.resetPeakMemory();
    // The plan again with the method applied (its parameters and scratch), before allocating.
    const fit = fitMemory(
      planInputFromModel(model, c.schedule.batch_size, rowLength, {
        gradientCheckpointing: checkpointing,
        lossLogBatches: LOG_EVERY * c.schedule.grad_accum,
        available: availableMemory(gpu),
        halfEligible: HALF_BASE_METHODS.includes(c.peft.method) ? storedInBaseDtype : undefined,
      }),
      PLAN_KEYS,
    );
    if (fit.checkpointingTurnedOn) {
      checkpointing = true;
      log(checkpointingNote(fit, c));
    }
    if (c.peft.method !== "full") log(`${describePlan(fit.plan)}, with ${c.peft.method}`);
    const trainer = await Trainer.create(model, trainBatcher, {
      steps: c.schedule.steps,
      lr: c.optimizer.lr,
      warmupSteps: c.schedule.warmup_steps,
      minLrRatio: c.schedule.min_lr_ratio,
      gradAccum: c.schedule.grad_accum,
      gradientCheckpointing: checkpointing,
      optimizer: {
        beta1: c.optimizer.beta1,
        beta2: c.optimizer.beta2,
        eps: c.optimizer.eps,
        weightDecay: c.optimizer.weight_decay,
        gradClip: c.optimizer.grad_clip,
      },
      logEvery: LOG_EVERY,
      evalEvery: devBatcher ? c.eval.every : 0,
      evalBatches: c.eval.batches,
      checkpointEvery: c.output.checkpoint_every,
      outDir: dir,
      seed: c.seed,
    }, {
      dev: devBatcher,
      params: inst.trainable(),
      checkpointHook: options.onCheckpointStage,
      checkpointFiles: { [RUN_CONFIG_FILE]: configText },
    });
    let result: TrainResult;
    {
      if (checkpoint) {
        await trainer.resume(checkpoint.path);
        await writeConfig();
        const from = checkpoint.from === "checkpoint"
          ? ""
          : ` (recovered from ${checkpoint.from}, left by an interrupted save)`;
        log(`resumed from ${checkpoint.path} at step ${trainer.step}${from}`);
      } else if (options.resume) log(`no checkpoint in ${dir}: starting from step 0`);
      const bar = options.progress === false
        ? undefined
        : new ProgressBar(`train ${c.peft.method}`, c.schedule.steps);
      result = await trainer.run((p) => {
        bar?.update(
          p.step,
          `loss ${p.loss.toFixed(3)} | ${Math.round(p.tokensPerSecond)} tok/s | ETA ${
            formatSeconds(p.eta)
          }`,
        );
        options.onProgress?.(p.step);
      });
      bar?.done();
    }
    const memory = memoryReport(model, trainer.optimizer, result.peakBytes);
    log(parameterReport(model).line);
    await inst.save(`${dir}/adapter`, baseModelName(c));

    const after = await score(model, tok, data.tasks, c);
    const pplAfter = await generalPerplexity();
    if (documents > 0) {
      log(`general-text perplexity: ${pplBefore.toFixed(3)} → ${pplAfter.toFixed(3)}`);
    }
    log(`after:  ${after.map((s) => `${s.task} ${s.score.toFixed(1)}`).join(", ")}`);
    const tasks: TaskResult[] = data.tasks.map((t, i) => ({
      task: t.task.name,
      metric: after[i].result.mainMetric ?? after[i].metric,
      trained: !t.heldOut,
      before: before[i],
      after: after[i].score,
    }));
    const mean = (xs: number[]) => xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
    const job: JobResult = {
      name: c.name,
      dir,
      method: c.peft.method,
      description: inst.describe(),
      tasks,
      trainedGain: mean(tasks.filter((t) => t.trained).map((t) => t.after - t.before)),
      heldOutDelta: mean(tasks.filter((t) => !t.trained).map((t) => t.after - t.before)),
      generalPerplexity: { before: pplBefore, after: pplAfter },
      parameters: {
        trainable: counts.trainable,
        total: counts.total,
        percent: (100 * counts.trainable) / counts.total,
      },
      memory,
      losses: result.losses,
      devLosses: result.evalLosses,
      train: {
        seconds: result.seconds,
        tokensPerSecond: result.tokensPerSecond,
        steps: c.schedule.steps,
      },
      seconds: (performance.now() - t0) / 1000,
    };
    await writeOutputs(dir, job, data.notes, gpu.adapterName);
    trainer.release();
    return job;
  } finally {
    model.release();
  }
}

function mb(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(2)} MiB`;
}

/** Writes metrics.json, report.md and the SVG plots (atomically). */
async function writeOutputs(
  dir: string,
  job: JobResult,
  notes: string[],
  adapter: string,
): Promise<void> {
  await writeFileAtomic(`${dir}/metrics.json`, JSON.stringify(job, null, 2) + "\n");
  const losses = job.losses.map((l, i) => [i + 1, l] as [number, number]);
  await writeFileAtomic(
    `${dir}/loss.svg`,
    lineChart(`${job.name}: loss`, "step", "cross-entropy", [
      { label: "train", points: losses },
      { label: "dev", points: job.devLosses.map((e) => [e.step, e.loss]) },
    ]),
  );
  await writeFileAtomic(
    `${dir}/scores.svg`,
    barChart(
      `${job.name}: scores before and after`,
      "score (0-100)",
      job.tasks.map((t) => `${t.task}${t.trained ? "" : " (held out)"}`),
      [
        { label: "before", values: job.tasks.map((t) => t.before) },
        { label: "after", values: job.tasks.map((t) => t.after) },
      ],
    ),
  );
  const rows = job.tasks.map((t) =>
    `| ${t.task} | ${t.trained ? "trained" : "held out"} | ${t.metric} | ${t.before.toFixed(1)} | ${
      t.after.toFixed(1)
    } | ${(t.after - t.before >= 0 ? "+" : "") + (t.after - t.before).toFixed(1)} |`
  );
  const md = `# whet run \`${job.name}\`

${job.description}. ${notes.join(". ")}.

| task | role | metric | before | after | change |
| --- | --- | --- | ---: | ---: | ---: |
${rows.join("\n")}

Mean change on trained tasks: **${job.trainedGain >= 0 ? "+" : ""}${
    job.trainedGain.toFixed(1)
  }**; on held-out tasks (forgetting when negative): **${job.heldOutDelta >= 0 ? "+" : ""}${
    Number.isFinite(job.heldOutDelta) ? job.heldOutDelta.toFixed(1) : "n/a"
  }**. Perplexity of general text (forgetting when it rises): ${
    Number.isNaN(job.generalPerplexity.before)
      ? "not measured (eval.general_documents is 0)"
      : `${job.generalPerplexity.before.toFixed(3)} → ${job.generalPerplexity.after.toFixed(3)}`
  }.

| | |
| --- | --- |
| trainable parameters | ${job.parameters.trainable.toLocaleString("en-US")} of ${
    job.parameters.total.toLocaleString("en-US")
  } (${job.parameters.percent.toFixed(3)}%) |
| GPU memory: weights / gradients / optimizer / activations and scratch | ${
    mb(job.memory.weights)
  } / ${mb(job.memory.gradients)} / ${mb(job.memory.optimizer)} / ${
    mb(job.memory.activations)
  } (peak ${mb(job.memory.peak)}) |
| training | ${job.train.steps} steps in ${formatSeconds(job.train.seconds)}, ${
    Math.round(job.train.tokensPerSecond)
  } tokens/s |
| whole run | ${formatSeconds(job.seconds)} on ${adapter} |
| final train loss | ${job.losses[job.losses.length - 1]?.toFixed(4)} |

![loss](loss.svg) ![scores](scores.svg)

Files: \`adapter/\` (the trained method; LoRA, prompt tuning and IA³ in Hugging Face PEFT's layout),
\`metrics.json\`, \`config.json\` (the exact configuration), \`checkpoint/\` (to resume with \`--resume\`).
`;
  await writeFileAtomic(`${dir}/report.md`, md);
}
