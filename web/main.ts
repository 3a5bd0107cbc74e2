/// <reference lib="dom" />
/**
 * The demo page's script (bundled by `deno task web:build` into web/dist/main.js): whet's own
 * modules, unchanged, fine-tuning the embedded base model in the browser. It builds the data,
 * scores, trains and saves as `deno task train` does (cli/job.ts) with the same library calls,
 * seeds and defaults, so the same settings give the same numbers up to the GPU's rounding.
 *
 * What it leaves on `window.whet` (read by tests/web/browser_test.ts): the state, the adapter, the
 * losses, the scores, the last generation, the files written and the next-token logits of
 * {@linkcode PROBE_PROMPT} after training.
 *
 * @module
 */

import { Gpu } from "../runtime/gpu.ts";
import { files } from "../io/files.ts";
import { BrowserFiles } from "../io/browser_files.ts";
import { loadModelCheckpoint, type ModelCheckpoint } from "../models/checkpoint.ts";
import type { Decoder } from "../models/decoder.ts";
import { GPT } from "../models/gpt.ts";
import { ByteTokenizer, HuggingFaceTokenizer, type Tokenizer } from "../models/tokenizer.ts";
import { generate } from "../models/generate.ts";
import { buildSuite, HELD_OUT_TASKS, SUITE_TASKS, type SuiteTaskData } from "../data/suite.ts";
import { mixTasks } from "../data/mixture.ts";
import { tokenizeExamples } from "../data/tokenize.ts";
import { Batcher } from "../data/batch.ts";
import { isChat, type PromptCompletion, readJsonl } from "../data/examples.ts";
import { chatToPromptCompletion } from "../data/chat.ts";
import { splitItems } from "../data/split.ts";
import { peftMethod } from "../peft/registry.ts";
import { Trainer } from "../train/trainer.ts";
import { evaluateSuite, type SuiteScore } from "../eval/harness.ts";

/** The prompt whose next-token logits the page publishes after training (for the Deno check). */
export const PROBE_PROMPT = "Summarise: the cat sat on the mat all day.\nSummary:";
/** Browsers' default storage-binding limit: the page holds itself to it on any adapter. */
const MAX_BINDING_BYTES = 128 * 2 ** 20;
/** Where the saved adapter goes in the page's memory (offered as downloads from there). */
const ADAPTER_DIR = "adapter";

/** What the page publishes for tests and the curious. */
interface PageState {
  state: "starting" | "no-webgpu" | "error" | "ready" | "busy" | "done";
  error?: string;
  adapter?: { name: string; software: boolean; vendor: string; architecture: string };
  losses: number[];
  before?: { task: string; metric: string; score: number }[];
  after?: { task: string; metric: string; score: number }[];
  generation?: string;
  files: string[];
  probe?: { prompt: string; logits: number[] };
  settings?: Settings;
  /** Timer ticks during the last training run: > 0 means the page kept handling events. */
  ticksDuringTraining: number;
  trainSeconds?: number;
  /** Seconds from the script's start until the model was ready. */
  startSeconds?: number;
  peakBytes?: number;
}

const page: PageState = { state: "starting", losses: [], files: [], ticksDuringTraining: 0 };
(globalThis as unknown as { whet: PageState }).whet = page;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

function show(id: string, text: string): void {
  $(id).textContent = text;
}

function fail(message: string, state: PageState["state"] = "error"): void {
  page.state = state;
  page.error = message;
  const box = $("error");
  box.textContent = message;
  box.hidden = false;
}

/** The page's settings, read from the form. */
interface Settings {
  tasks: string[];
  heldOut: string[];
  source: "suite" | "jsonl";
  jsonl: string;
  method: "lora" | "prompt" | "ia3" | "bitfit";
  r: number;
  alpha: number;
  virtualTokens: number;
  steps: number;
  batchSize: number;
  lr: number;
  warmup: number;
  trainSize: number;
  testSize: number;
  maxLength: number;
  seed: number;
}

function readSettings(): Settings {
  const num = (id: string) => {
    const v = Number(($(id) as HTMLInputElement).value);
    if (!Number.isFinite(v)) throw new Error(`Cannot train: "${id}" is not a number`);
    return v;
  };
  const checked = (name: string) =>
    [...document.querySelectorAll<HTMLInputElement>(`input[name=${name}]:checked`)].map((e) =>
      e.value
    );
  return {
    tasks: checked("task"),
    heldOut: checked("heldout"),
    source: (document.querySelector<HTMLInputElement>("input[name=source]:checked")?.value ??
      "suite") as Settings["source"],
    jsonl: ($("jsonl") as HTMLTextAreaElement).value,
    method: ($("method") as HTMLSelectElement).value as Settings["method"],
    r: num("r"),
    alpha: num("alpha"),
    virtualTokens: num("virtual"),
    steps: num("steps"),
    batchSize: num("batch"),
    lr: num("lr"),
    warmup: num("warmup"),
    trainSize: num("train-size"),
    testSize: num("test-size"),
    maxLength: num("max-length"),
    seed: num("seed"),
  };
}

/** The method's settings as `deno task train --peft.*` would pass them. */
function methodSettings(s: Settings): Record<string, unknown> {
  switch (s.method) {
    case "lora":
      return { r: s.r, lora_alpha: s.alpha, target_modules: ["all-linear"] };
    case "prompt":
      return { num_virtual_tokens: s.virtualTokens };
    default:
      return {};
  }
}

const toPromptCompletion = (e: Parameters<typeof isChat>[0]): PromptCompletion =>
  isChat(e) ? chatToPromptCompletion(e) : e;

/** The tasks to score and the training/dev examples, as cli/job.ts's buildData makes them. */
async function buildData(s: Settings): Promise<{
  tasks: SuiteTaskData[];
  train: PromptCompletion[];
  dev: PromptCompletion[];
}> {
  if (s.source === "jsonl") {
    const fs = files();
    const picked = ($("upload") as HTMLInputElement).files?.[0];
    const name = picked ? `upload/${picked.name}` : "upload/pasted.jsonl";
    if (!(fs instanceof BrowserFiles)) throw new Error("Cannot read JSONL: not in a browser");
    await fs.addFile(name, picked ?? s.jsonl);
    const all = (await readJsonl(name)).map(toPromptCompletion);
    const split = splitItems(all, { seed: s.seed });
    if (split.train.length === 0) throw new Error(`Cannot train: ${name} yields no examples`);
    const task = { name: "custom", metric: "rouge", description: name } as SuiteTaskData["task"];
    return {
      tasks: [{ task, heldOut: false, ...split }],
      train: split.train,
      dev: split.dev,
    };
  }
  if (s.tasks.length === 0) throw new Error("Cannot train: choose at least one task");
  const names = [...s.tasks, ...s.heldOut.filter((t) => !s.tasks.includes(t))];
  const tasks = buildSuite({
    seed: s.seed,
    sizes: { train: s.trainSize, dev: 0, test: s.testSize },
    tasks: names,
  }).map((t) => ({ ...t, heldOut: !s.tasks.includes(t.task.name) }));
  const trained = tasks.filter((t) => !t.heldOut);
  const mix = mixTasks(Object.fromEntries(trained.map((t) => [t.task.name, t.train])), {
    seed: s.seed,
    cap: 3000,
  });
  return { tasks, train: mix.examples, dev: trained.flatMap((t) => t.dev) };
}

let gpu: Gpu | undefined;
let checkpoint: ModelCheckpoint | undefined;
let model: Decoder | undefined;
let tokenizer: Tokenizer = new ByteTokenizer();

/**
 * The base model's tokenizer, chosen as cli/common.ts's tokenizerFor chooses it: the folder's
 * tokenizer.json when there is one, else bytes (with the end-of-text id 256 when the vocabulary
 * has it).
 */
async function baseTokenizer(dir: string, vocab: number): Promise<Tokenizer> {
  const file = `${dir}/tokenizer.json`;
  if (await files().stat(file)) return await HuggingFaceTokenizer.fromFile(file);
  return vocab === 257 ? new ByteTokenizer({ endOfText: true }) : new ByteTokenizer();
}

async function freshModel(): Promise<Decoder> {
  model?.release();
  model = undefined;
  if (!gpu || !checkpoint || checkpoint.family !== "gpt2") {
    throw new Error("Cannot build the model: the base model is not loaded");
  }
  model = await GPT.create(gpu, checkpoint.config, {
    weights: checkpoint.weights,
    trainable: false,
  });
  return model;
}

function scoreRows(scores: SuiteScore[]) {
  return scores.map((s) => ({
    task: s.task,
    metric: s.result.mainMetric ?? s.metric,
    score: s.score,
  }));
}

function renderScores(): void {
  const body = $("scores").querySelector("tbody")!;
  body.replaceChildren();
  for (const [i, b] of (page.before ?? []).entries()) {
    const a = page.after?.[i];
    const tr = document.createElement("tr");
    for (
      const cell of [
        b.task,
        b.metric,
        b.score.toFixed(1),
        a ? a.score.toFixed(1) : "…",
        a ? `${a.score - b.score >= 0 ? "+" : ""}${(a.score - b.score).toFixed(1)}` : "",
      ]
    ) {
      const td = document.createElement("td");
      td.textContent = cell;
      tr.append(td);
    }
    body.append(tr);
  }
}

function plotLoss(losses: number[], steps: number): void {
  const svg = $("plot");
  const w = 480, h = 160, pad = 28;
  const finite = losses.filter(Number.isFinite);
  if (finite.length === 0) {
    svg.replaceChildren();
    return;
  }
  const top = Math.max(...finite), bottom = Math.min(0, ...finite);
  const x = (i: number) => pad + ((w - 2 * pad) * i) / Math.max(1, steps - 1);
  const y = (v: number) => h - pad - ((h - 2 * pad) * (v - bottom)) / (top - bottom || 1);
  const points = losses.map((l, i) => `${x(i).toFixed(1)},${y(l).toFixed(1)}`).join(" ");
  svg.innerHTML =
    `<line x1="${pad}" y1="${h - pad}" x2="${w - pad}" y2="${h - pad}" class="axis"/>` +
    `<line x1="${pad}" y1="${pad}" x2="${pad}" y2="${h - pad}" class="axis"/>` +
    `<text x="${pad}" y="${pad - 8}">loss ${top.toFixed(2)}</text>` +
    `<text x="${w - pad}" y="${h - 8}" text-anchor="end">step ${steps}</text>` +
    `<polyline points="${points}" class="loss"/>`;
}

function offerDownloads(fs: BrowserFiles): void {
  const list = $("downloads");
  list.replaceChildren();
  page.files = fs.paths(ADAPTER_DIR);
  for (const path of page.files) {
    const bytes = fs.written(path)!;
    const a = document.createElement("a");
    a.href = URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>]));
    a.download = path.slice(path.lastIndexOf("/") + 1);
    a.textContent = `${a.download} (${bytes.length.toLocaleString("en-US")} bytes)`;
    const li = document.createElement("li");
    li.append(a);
    list.append(li);
  }
}

async function train(): Promise<void> {
  const s = readSettings();
  page.settings = s;
  page.state = "busy";
  page.losses = [];
  page.before = page.after = undefined;
  page.probe = undefined;
  $("error").hidden = true;
  setBusy(true);
  const progress = $("progress") as HTMLProgressElement;
  progress.value = 0;
  progress.max = s.steps;
  plotLoss([], s.steps);
  try {
    const m = await freshModel();
    const data = await buildData(s);
    const method = peftMethod(s.method);
    const config = method.validate(methodSettings(s));
    const nVirtual = typeof config.num_virtual_tokens === "number" ? config.num_virtual_tokens : 0;
    const T = Math.min(s.maxLength, m.shape.maxPositions - nVirtual);
    const opts = {
      maxLength: T,
      truncation: "truncate" as const,
      addEos: tokenizer.eosId !== undefined,
    };
    const train = tokenizeExamples(data.train, tokenizer, opts).examples;

    show("status", `scoring the base model on ${data.tasks.length} task(s)…`);
    page.before = scoreRows(await evaluateSuite(m, tokenizer, data.tasks, { seed: s.seed }));
    renderScores();

    const instance = await method.apply(m, config, s.seed);
    const batches = new Batcher(train, {
      batchSize: s.batchSize,
      seqLen: T,
      padId: tokenizer.eosId ?? 0,
      seed: s.seed,
    });
    const trainer = await Trainer.create(m, batches, {
      steps: s.steps,
      lr: s.lr,
      warmupSteps: s.warmup,
      minLrRatio: 0.1,
      optimizer: { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, gradClip: 1.0 },
      // One loss readback a step: a live plot, and a wait on the GPU that lets the page breathe.
      logEvery: 1,
      seed: s.seed,
    }, { params: instance.trainable() });
    show("status", `training: ${instance.describe()}`);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 50);
    const t0 = performance.now();
    try {
      const result = await trainer.run((p) => {
        page.losses.push(p.loss);
        progress.value = p.step;
        plotLoss(page.losses, s.steps);
        show(
          "status",
          `step ${p.step}/${p.steps} · loss ${p.loss.toFixed(3)} · ${
            Math.round(p.tokensPerSecond)
          } tokens/s`,
        );
      });
      page.losses = result.losses;
      page.peakBytes = result.peakBytes;
    } finally {
      clearInterval(timer);
      trainer.release();
    }
    page.trainSeconds = (performance.now() - t0) / 1000;
    page.ticksDuringTraining = ticks;

    show("status", "scoring the tuned model…");
    page.after = scoreRows(await evaluateSuite(m, tokenizer, data.tasks, { seed: s.seed }));
    renderScores();

    const fs = files();
    if (!(fs instanceof BrowserFiles)) throw new Error("Cannot offer downloads: not in a browser");
    await fs.remove(ADAPTER_DIR).catch(() => {});
    await instance.save(ADAPTER_DIR, "whet/models/base");
    offerDownloads(fs);
    show(
      "layout",
      s.method === "bitfit"
        ? "Saved in whet's own layout (PEFT has no BitFit): whet_peft.json and trainable.safetensors, which whet's loadAdapter reads."
        : "Saved in Hugging Face PEFT's layout: PeftModel.from_pretrained loads it, and so does whet's loadAdapter.",
    );

    let logits: number[] = [];
    await generate(m, [tokenizer.encode(PROBE_PROMPT)], {
      maxNewTokens: 1,
      onLogits: (_step, _row, l) => logits = Array.from(l),
    });
    page.probe = { prompt: PROBE_PROMPT, logits };
    show(
      "status",
      `done: ${s.steps} steps in ${page.trainSeconds.toFixed(1)} s, loss ${
        page.losses[0].toFixed(3)
      } → ${page.losses.at(-1)!.toFixed(3)}; peak GPU memory ${
        ((page.peakBytes ?? 0) / 2 ** 20).toFixed(1)
      } MiB`,
    );
    page.state = "done";
  } catch (e) {
    fail((e as Error).message);
  } finally {
    setBusy(false);
  }
}

async function runGenerate(): Promise<void> {
  if (!model) return;
  setBusy(true);
  try {
    const prompt = ($("prompt") as HTMLTextAreaElement).value.replaceAll("\\n", "\n");
    const out = await generate(model, [tokenizer.encode(prompt)], {
      maxNewTokens: Number(($("max-new") as HTMLInputElement).value) || 32,
      tokenizer,
      stop: ["\n"],
    });
    page.generation = out.text![0];
    show("generation", page.generation);
  } catch (e) {
    fail((e as Error).message, page.state);
  } finally {
    setBusy(false);
  }
}

function setBusy(busy: boolean): void {
  for (const id of ["train", "generate"]) ($(id) as HTMLButtonElement).disabled = busy;
}

function taskChoices(): void {
  const box = $("tasks");
  for (const t of SUITE_TASKS) {
    const held = HELD_OUT_TASKS.includes(t);
    const label = document.createElement("label");
    label.innerHTML = `<input type="checkbox" name="${
      held ? "heldout" : "task"
    }" value="${t.name}"${
      held || ["summarise", "sentiment"].includes(t.name) ? " checked" : ""
    }> ${t.name}${held ? " (held out: forgetting)" : ""} <small>${t.metric}</small>`;
    box.append(label);
  }
}

async function start(): Promise<void> {
  taskChoices();
  $("train").addEventListener("click", () => void train());
  $("generate").addEventListener("click", () => void runGenerate());
  setBusy(true);
  if (!("gpu" in navigator) || !navigator.gpu) {
    fail(
      "WebGPU is not available in this browser, so whet cannot run here. It needs a browser with " +
        "WebGPU (Chrome or Edge 113+, Safari 26, Firefox 141+ on Windows) on a secure origin " +
        "(https or localhost); on Linux, start Chromium with --enable-unsafe-webgpu.",
      "no-webgpu",
    );
    return;
  }
  try {
    const adapter = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
    if (!adapter) {
      fail(
        "WebGPU is switched on in this browser, but it offers no adapter (no usable GPU, or the " +
          "GPU is blocklisted), so whet cannot run here. Chrome lists why at chrome://gpu; on " +
          "Linux, start Chromium with --enable-unsafe-webgpu.",
        "no-webgpu",
      );
      return;
    }
    gpu = await Gpu.create({ maxBindingBytes: MAX_BINDING_BYTES });
    const info = adapter.info;
    page.adapter = {
      name: gpu.adapterName,
      software: gpu.isSoftware,
      vendor: info.vendor,
      architecture: info.architecture,
    };
    show(
      "adapter",
      `WebGPU adapter: ${
        [info?.vendor, info?.architecture, info?.description].filter((x) => x)
          .join(" ")
      }${gpu.isSoftware ? " (software: slow, keep runs short)" : ""}. ` +
        `Limits held to: ${MAX_BINDING_BYTES / 2 ** 20} MiB per storage binding, ` +
        `buffers within the browser's default 256 MiB; no SharedArrayBuffer.`,
    );
    show("status", "loading the embedded base model…");
    const base = new URL("../models/base", location.href).href;
    checkpoint = await loadModelCheckpoint(base);
    tokenizer = await baseTokenizer(base, checkpoint.config.vocab_size);
    show("status", "compiling the WebGPU kernels and uploading the weights…");
    const m = await freshModel();
    const counts = m.countParameters();
    show(
      "model",
      `Base model: models/base, ${counts.total.toLocaleString("en-US")} parameters, ` +
        `${m.shape.maxPositions} positions, ${m.shape.V} token ids (tokenizer: ${tokenizer.name}).`,
    );
    show("status", "ready");
    page.startSeconds = performance.now() / 1000;
    page.state = "ready";
    setBusy(false);
  } catch (e) {
    fail(`Cannot start: ${(e as Error).message}`);
  }
}

void start();
