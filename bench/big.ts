/**
 * The big section of `deno task bench` (`--only big`): real sizes against PyTorch on the same CPU.
 * GPT-2 small (random weights in the Hugging Face layout, dropout off) with LoRA r 8 (alpha 16) on
 * `c_attn` and with full fine-tuning at batch 8 × sequence 256: training tokens/s; generation
 * tokens/s (batch 1, KV cache, 128 new tokens, greedy); peak GPU bytes and peak process RSS. Then a
 * GPT-2-medium-shaped LoRA step (does it fit in 8 GiB of process memory?) and SmolLM2-135M-shaped
 * LoRA training (r 8 on q, k, v). With `--profile`, where the time of a GPT-2 small decode step
 * (cached, batch 1) and of a GPT-2 small LoRA training step goes: each kernel of one step replayed
 * on its own (bench/replay.ts).
 *
 * Every measurement runs in a process of its own, so that its peak RSS (getrusage's `ru_maxrss`:
 * `resourceUsage().maxRSS` here, `resource.getrusage` in Python) belongs to that configuration
 * alone. whet's run this file as a child (`deno run … bench/big.ts JOB`); PyTorch's run
 * bench/torch_peer.py (PyTorch eager fp32, the same model written in torch.nn), interleaved with
 * whet's: PyTorch LoRA, whet LoRA, PyTorch full, whet full, PyTorch generation, whet generation.
 * The peer runs when some `python3` on the path (or /usr/bin/python3, where Debian's
 * python3-torch lives; bench/setup_torch.sh installs it) imports torch; otherwise the section says
 * why it did not.
 *
 * @module
 */

import process from "node:process";
import { fileURLToPath } from "node:url";
import {
  Activations,
  type Decoder,
  generate,
  GPT,
  gptConfig,
  Gpu,
  type KvCache,
  Llama,
  llamaConfig,
  lora,
  Trainer,
} from "../mod.ts";
import { replayProfile, type ReplayRow } from "./replay.ts";
import { benchData } from "./train.ts";

/** A model of the big section (`tiny` and `llama-tiny` only for `--quick` smoke runs). */
export type BigModel = "gpt2" | "gpt2-medium" | "smollm2-135m" | "tiny" | "llama-tiny";

/**
 * A part of the big section (`--parts`; `profile` runs only when asked for, or with `--profile`;
 * `lora-f16`, GPT-2 small LoRA with its frozen base stored in f16, only when asked for).
 */
export type BigPart = "lora" | "lora-f16" | "full" | "generate" | "medium" | "smollm" | "profile";

/** Every part, in the order they run. */
export const BIG_PARTS: readonly BigPart[] = [
  "lora",
  "lora-f16",
  "full",
  "generate",
  "medium",
  "smollm",
  "profile",
];

/** The parts run by default. */
export const DEFAULT_BIG_PARTS: readonly BigPart[] = BIG_PARTS.filter((p) =>
  p !== "profile" && p !== "lora-f16"
);

/** Process memory the GPT-2-medium LoRA step must fit in (issue 13's target). */
export const MEDIUM_RSS_TARGET = 8 * 2 ** 30;

/** One measurement, run in a process of its own. */
export type BigJob =
  | {
    kind: "train";
    model: BigModel;
    method: "lora" | "full";
    /** Timed steps after the warm-up step; 0 times the first step alone (memory checks). */
    steps: number;
    batch: number;
    seq: number;
    /** Storage of the frozen base weights (whet only; default f32): DecoderOptions.baseDtype. */
    baseDtype?: "f16" | "bf16";
  }
  | { kind: "generate"; model: BigModel; newTokens: number; prompt: number };

/** A profile, run in a process of its own like the measurements. */
export type ProfileJob =
  | {
    kind: "profile-decode";
    model: BigModel;
    /** Cache position of the profiled step (it attends to position + 1 keys). */
    position: number;
  }
  | { kind: "profile-train"; model: BigModel; method: "lora" | "full"; batch: number; seq: number };

/** Where one step's time goes: a cached decode step (batch 1) or a training step. */
export interface StepProfile {
  framework: "whet";
  /** What was profiled, e.g. "gpt2 decode step at position 80". */
  what: string;
  /**
   * Wall and CPU milliseconds of a whole step as it runs unprofiled: decode, the median of 5
   * (record, submit, read the logits back); training, the one recorded step (the Trainer's run).
   */
  stepMs: number;
  stepCpuMs: number;
  /** Every kernel of one step replayed on its own, largest first (bench/replay.ts). */
  kernels: ReplayRow[];
  /** The same, summed per kernel family (the name up to its first dot). */
  families: ReplayRow[];
  peakRssBytes: number;
}

/** What whet and PyTorch both report for a job. */
export interface Measured {
  framework: "whet" | "pytorch";
  /** Parameters of the model. */
  parameters: number;
  /** Seconds to build the model (random initialisation and upload). */
  createSeconds: number;
  /** Wall and CPU seconds of the timed part (CPU: the whole process, every thread). */
  seconds: number;
  cpuSeconds: number;
  /** Tokens (trained B·T per step, or generated) per wall second and per CPU second. */
  tokensPerSecond: number;
  tokensPerCpuSecond: number;
  /** Peak resident memory of the process (ru_maxrss), bytes. */
  peakRssBytes: number;
  /** PyTorch: torch.get_num_threads() (OpenBLAS was given as many). whet: absent (lavapipe: all). */
  threads?: number;
}

/** A training job's result. */
export interface TrainMeasure extends Measured {
  method: "lora" | "full";
  trainable: number;
  batch: number;
  seq: number;
  steps: number;
  losses: number[];
  /** whet: the warm-up step's wall seconds (pipeline compilation and allocation included). */
  firstStepSeconds?: number;
  /** whet: peak bytes of GPU buffers (the pool's peak reserved) during the timed steps. */
  peakGpuBytes?: number;
}

/** A generation job's result. */
export interface GenerateMeasure extends Measured {
  promptTokens: number;
  newTokens: number;
  /** The generated ids (random weights: a check that generation ran, not a comparison). */
  ids: number[];
  /** whet: peak bytes of GPU buffers during the timed generation. */
  peakGpuBytes?: number;
}

/** bench/torch_peer.py's description of itself (`info`, repeated in every result). */
export interface TorchInfo {
  torch: string;
  python: string;
  executable: string;
  /** torch.get_num_threads() after setting it to every core. */
  threads: number;
  cpus: number;
  /** BLAS shared objects mapped into the peer's process. */
  blasLibraries: string[];
  /** OPENBLAS_NUM_THREADS when set (unset: OpenBLAS uses every core). */
  openblasThreadsEnv: string | null;
  /** torch.__config__.show(). */
  config: string;
}

/** whet ÷ PyTorch on one configuration, against the peer at one thread count. */
export interface BigComparison {
  /** The configuration: "LoRA training", "full fine-tuning" or "generation". */
  what: string;
  /** Threads of the PyTorch run compared with. */
  peerThreads: number;
  whet: Measured;
  torch: Measured;
  /** whet ÷ PyTorch tokens per wall second and per CPU second; peak RSS whet ÷ PyTorch. */
  wallRatio: number;
  cpuRatio: number;
  rssRatio: number;
}

/** One of issue 13's targets and whether the run met it. */
export interface BigTarget {
  target: string;
  measured: string;
  met: boolean;
}

/** Everything the big section measured. */
export interface BigResult {
  /** The peer's interpreter and build, or null when it did not run. */
  peer: TorchInfo | null;
  /** Why the peer did not run (or which interpreter ran it). */
  peerNote: string;
  /** Every job in the order run, with its result. */
  runs: { job: BigJob; result: TrainMeasure | GenerateMeasure }[];
  /** The decode-step and training-step profiles, when the `profile` part ran. */
  profiles?: StepProfile[];
  comparisons: BigComparison[];
  targets: BigTarget[];
  /** Wall seconds of the whole section. */
  seconds: number;
}

/** Options of {@linkcode bigSection}. */
export interface BigOptions {
  /** Timed training steps after the warm-up step. */
  steps: number;
  parts: readonly BigPart[];
  /** Run the PyTorch peer when torch is importable. */
  peer: boolean;
  /**
   * Thread counts the peer runs each configuration with (0: every core). Batch-1 decoding and
   * even training can be faster per CPU second on fewer threads: the targets are judged against
   * the peer's best.
   */
  torchThreads: readonly number[];
  /** Tiny models and shapes: a smoke test of the wiring, not a measurement. */
  quick: boolean;
  /** Progress lines (stderr in `--json` runs). */
  log: (line: string) => void;
}

const BENCH_DIR = fileURLToPath(new URL(".", import.meta.url));
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const TORCH_PEER = `${BENCH_DIR}torch_peer.py`;
/** Interpreters tried for the peer, in order: Debian's torch is seen only by /usr/bin/python3. */
const PYTHONS = ["python3", "/usr/bin/python3"];

function fail(what: string, why: string): never {
  throw new Error(`Cannot read ${what}: ${why}`);
}

function num(o: Record<string, unknown>, key: string, what: string): number {
  const v = o[key];
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0) {
    fail(what, `"${key}" is ${JSON.stringify(v)}, expected a finite number ≥ 0`);
  }
  return v;
}

function str(o: Record<string, unknown>, key: string, what: string): string {
  const v = o[key];
  if (typeof v !== "string") fail(what, `"${key}" is ${JSON.stringify(v)}, expected a string`);
  return v;
}

/** The last non-empty line of `text` as a JSON object. */
function lastJson(text: string, what: string): Record<string, unknown> {
  const line = text.trim().split("\n").pop() ?? "";
  let o: unknown;
  try {
    o = JSON.parse(line);
  } catch {
    fail(what, `its last output line is not JSON: ${JSON.stringify(line.slice(0, 200))}`);
  }
  if (typeof o !== "object" || o === null || Array.isArray(o)) {
    fail(what, "its last output line is not a JSON object");
  }
  return o as Record<string, unknown>;
}

/**
 * The peer's `info` from bench/torch_peer.py's output (its last line, one JSON object), checked.
 *
 * @example
 * ```ts
 * import { parseTorchInfo } from "./big.ts";
 * const info = parseTorchInfo(JSON.stringify({
 *   torch: "1.13.0a0", python: "3.11.2", executable: "/usr/bin/python3", threads: 2, cpus: 2,
 *   blasLibraries: ["/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblasp-r0.3.21.so"],
 *   openblasThreadsEnv: null, config: "PyTorch built with: …",
 * }));
 * if (info.threads !== 2) throw new Error();
 * ```
 */
export function parseTorchInfo(text: string): TorchInfo {
  const what = "the PyTorch peer's info";
  const o = lastJson(text, what);
  const libs = o.blasLibraries;
  if (!Array.isArray(libs) || !libs.every((l) => typeof l === "string")) {
    fail(what, `"blasLibraries" is ${JSON.stringify(libs)}, expected a list of paths`);
  }
  const env = o.openblasThreadsEnv;
  if (env !== null && typeof env !== "string") {
    fail(what, `"openblasThreadsEnv" is ${JSON.stringify(env)}, expected a string or null`);
  }
  return {
    torch: str(o, "torch", what),
    python: str(o, "python", what),
    executable: str(o, "executable", what),
    threads: num(o, "threads", what),
    cpus: num(o, "cpus", what),
    blasLibraries: libs as string[],
    openblasThreadsEnv: env as string | null,
    config: str(o, "config", what),
  };
}

/**
 * A result of `job` from its process's output (the last line, one JSON object), checked: the
 * fields both frameworks report, and the job's own.
 *
 * @example
 * ```ts
 * import { parseMeasure } from "./big.ts";
 * const job = { kind: "generate", model: "tiny", newTokens: 2, prompt: 4 } as const;
 * const r = parseMeasure(job, JSON.stringify({
 *   framework: "pytorch", parameters: 10, createSeconds: 0.1, seconds: 1, cpuSeconds: 2,
 *   tokensPerSecond: 2, tokensPerCpuSecond: 1, peakRssBytes: 1e8, promptTokens: 4, newTokens: 2,
 *   ids: [3, 4],
 * }));
 * if (r.tokensPerCpuSecond !== 1) throw new Error();
 * ```
 */
export function parseMeasure(job: BigJob, text: string): TrainMeasure | GenerateMeasure {
  const what = `the ${job.kind} result of ${job.model}${
    job.kind === "train" ? " " + job.method : ""
  }`;
  const o = lastJson(text, what);
  const framework = o.framework;
  if (framework !== "whet" && framework !== "pytorch") {
    fail(what, `"framework" is ${JSON.stringify(framework)}, expected "whet" or "pytorch"`);
  }
  const base: Measured = {
    framework,
    parameters: num(o, "parameters", what),
    createSeconds: num(o, "createSeconds", what),
    seconds: num(o, "seconds", what),
    cpuSeconds: num(o, "cpuSeconds", what),
    tokensPerSecond: num(o, "tokensPerSecond", what),
    tokensPerCpuSecond: num(o, "tokensPerCpuSecond", what),
    peakRssBytes: num(o, "peakRssBytes", what),
    ...(o.threads === undefined ? {} : { threads: num(o, "threads", what) }),
  };
  const optional = (key: string) => o[key] === undefined ? {} : { [key]: num(o, key, what) };
  const numbers = (key: string) => {
    const v = o[key];
    if (!Array.isArray(v) || !v.every((x) => typeof x === "number")) {
      fail(what, `"${key}" is ${JSON.stringify(v)}, expected a list of numbers`);
    }
    return v as number[];
  };
  if (job.kind === "generate") {
    const r: GenerateMeasure = {
      ...base,
      promptTokens: num(o, "promptTokens", what),
      newTokens: num(o, "newTokens", what),
      ids: numbers("ids"),
      ...optional("peakGpuBytes"),
    };
    if (r.newTokens !== job.newTokens || r.ids.length !== job.newTokens) {
      fail(what, `${r.ids.length} ids for ${job.newTokens} new tokens`);
    }
    return r;
  }
  const r: TrainMeasure = {
    ...base,
    method: job.method,
    trainable: num(o, "trainable", what),
    batch: num(o, "batch", what),
    seq: num(o, "seq", what),
    steps: num(o, "steps", what),
    losses: numbers("losses"),
    ...optional("firstStepSeconds"),
    ...optional("peakGpuBytes"),
  };
  if (o.method !== job.method || r.batch !== job.batch || r.seq !== job.seq) {
    fail(what, `it ran ${String(o.method)} at ${r.batch}×${r.seq}, not the job's`);
  }
  if (!r.losses.every(Number.isFinite)) fail(what, `a loss is not finite: ${r.losses.join(", ")}`);
  return r;
}

/**
 * The BLAS a peer used, from the shared objects in its process: e.g. "OpenBLAS 0.3.21
 * (openblas-pthread)", or "reference BLAS (…/libblas.so.3)" when only netlib's is mapped.
 *
 * @example
 * ```ts
 * import { blasName } from "./big.ts";
 * const name = blasName(["/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblasp-r0.3.21.so"]);
 * if (name !== "OpenBLAS 0.3.21 (openblas-pthread)") throw new Error(name);
 * ```
 */
export function blasName(libraries: readonly string[]): string {
  for (const lib of libraries) {
    const m = /\/([^/]+)\/libopenblas[a-z]*-r([\d.]+)\.so/.exec(lib);
    if (m) return `OpenBLAS ${m[2].replace(/\.$/, "")} (${m[1]})`;
  }
  const blas = libraries.find((l) => /libblas\.so/.test(l));
  return blas ? `reference BLAS (${blas})` : "no BLAS library mapped";
}

/**
 * whet ÷ PyTorch for one configuration.
 *
 * @example
 * ```ts
 * import { compareMeasures, type Measured } from "./big.ts";
 * const m = (framework: "whet" | "pytorch", tps: number, cps: number, rss: number): Measured => ({
 *   framework, parameters: 1, createSeconds: 0, seconds: 1, cpuSeconds: 1,
 *   tokensPerSecond: tps, tokensPerCpuSecond: cps, peakRssBytes: rss,
 * });
 * const torch = { ...m("pytorch", 60, 100, 4e9), threads: 1 };
 * const c = compareMeasures("lora", m("whet", 30, 25, 3e9), torch);
 * if (c.wallRatio !== 0.5 || c.cpuRatio !== 0.25 || c.rssRatio !== 0.75) throw new Error();
 * if (c.peerThreads !== 1) throw new Error();
 * ```
 */
export function compareMeasures(what: string, whet: Measured, torch: Measured): BigComparison {
  return {
    what,
    peerThreads: torch.threads ?? 0,
    whet,
    torch,
    wallRatio: whet.tokensPerSecond / torch.tokensPerSecond,
    cpuRatio: whet.tokensPerCpuSecond / torch.tokensPerCpuSecond,
    rssRatio: whet.peakRssBytes / torch.peakRssBytes,
  };
}

const GiB = 2 ** 30;
const gib = (bytes: number) => `${(bytes / GiB).toFixed(2)} GiB`;
const times = (x: number) => `${x.toFixed(2)}×`;

/**
 * Issue 13's targets against what a run measured: GPT-2 small LoRA training ≥ 0.3× PyTorch's
 * tokens/s (judged per CPU second, robust to the shared machine's load; wall clock shown beside
 * it) with peak RSS ≤ PyTorch's, generation ≥ 0.5×, and the GPT-2-medium LoRA step in 8 GiB. Where
 * the peer ran at several thread counts, against its best per CPU second.
 *
 * @example
 * ```ts
 * import { bigTargets } from "./big.ts";
 * const t = bigTargets([], [{
 *   job: { kind: "train", model: "gpt2-medium", method: "lora", steps: 0, batch: 8, seq: 256 },
 *   result: {
 *     framework: "whet", parameters: 1, createSeconds: 0, seconds: 1, cpuSeconds: 1,
 *     tokensPerSecond: 1, tokensPerCpuSecond: 1, peakRssBytes: 7 * 2 ** 30, method: "lora",
 *     trainable: 1, batch: 8, seq: 256, steps: 0, losses: [11],
 *   },
 * }]);
 * if (t.length !== 1 || !t[0].met) throw new Error();
 * ```
 */
export function bigTargets(
  comparisons: readonly BigComparison[],
  runs: BigResult["runs"],
): BigTarget[] {
  const out: BigTarget[] = [];
  const against = (what: string) =>
    comparisons.filter((c) => c.what === what).sort((a, b) => a.cpuRatio - b.cpuRatio)[0];
  const peer = (c: BigComparison) =>
    `PyTorch on ${c.peerThreads} thread${c.peerThreads === 1 ? "" : "s"}`;
  const loraC = against("LoRA training");
  if (loraC) {
    out.push({
      target: "GPT-2 small LoRA training ≥ 0.3× PyTorch tokens/s",
      measured: `${times(loraC.cpuRatio)} per CPU second (${times(loraC.wallRatio)} wall), ${
        peer(loraC)
      }`,
      met: loraC.cpuRatio >= 0.3,
    }, {
      target: "GPT-2 small LoRA peak RSS ≤ PyTorch's",
      measured: `${gib(loraC.whet.peakRssBytes)} vs ${gib(loraC.torch.peakRssBytes)} (${
        times(loraC.rssRatio)
      })`,
      met: loraC.rssRatio <= 1,
    });
  }
  const genC = against("generation");
  if (genC) {
    out.push({
      target: "GPT-2 small generation ≥ 0.5× PyTorch tokens/s",
      measured: `${times(genC.cpuRatio)} per CPU second (${times(genC.wallRatio)} wall), ${
        peer(genC)
      }`,
      met: genC.cpuRatio >= 0.5,
    });
  }
  const medium = runs.find((r) => r.job.model === "gpt2-medium");
  if (medium) {
    out.push({
      target: "GPT-2 medium LoRA step in 8 GiB of process memory",
      measured: `peak RSS ${gib(medium.result.peakRssBytes)}`,
      met: medium.result.peakRssBytes <= MEDIUM_RSS_TARGET,
    });
  }
  return out;
}

async function runProcess(
  command: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ ok: boolean; stdout: string; stderr: string }> {
  const out = await new Deno.Command(command, {
    args,
    env,
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { ok: out.success, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** The first interpreter that runs the peer's `info`, or why none did. */
async function findPeer(): Promise<{ python: string; info: TorchInfo } | { why: string }> {
  const whys: string[] = [];
  for (const python of PYTHONS) {
    try {
      const r = await runProcess(python, [TORCH_PEER, "info"]);
      if (r.ok) return { python, info: parseTorchInfo(r.stdout) };
      const last = r.stderr.trim().split("\n").pop() ?? "";
      whys.push(`${python}: ${last}`);
    } catch (e) {
      whys.push(`${python}: ${(e as Error).message}`);
    }
  }
  return {
    why: `PyTorch peer not run: no interpreter imports torch (${
      whys.join("; ")
    }); install it with bench/setup_torch.sh`,
  };
}

function torchArgs(job: BigJob, quick: boolean): string[] {
  const model = ["--model", quick ? "tiny" : "gpt2"];
  return job.kind === "train"
    ? [
      "train",
      ...model,
      "--method",
      job.method,
      "--steps",
      String(job.steps),
      "--batch",
      String(job.batch),
      "--seq",
      String(job.seq),
    ]
    : [
      "generate",
      ...model,
      "--new-tokens",
      String(job.newTokens),
      "--prompt",
      String(job.prompt),
    ];
}

/** The peer on `threads` threads (0: every core), OpenBLAS's pool sized to match. */
async function runTorch(python: string, job: BigJob, quick: boolean, threads: number) {
  const args = [...torchArgs(job, quick), "--threads", String(threads)];
  const env: Record<string, string> = threads > 0 ? { OPENBLAS_NUM_THREADS: String(threads) } : {};
  const r = await runProcess(python, [TORCH_PEER, ...args], env);
  if (!r.ok) {
    throw new Error(
      `Cannot run the PyTorch peer (${python} bench/torch_peer.py ${args.join(" ")}): ${
        r.stderr.trim().split("\n").slice(-3).join(" | ")
      }`,
    );
  }
  return parseMeasure(job, r.stdout);
}

/** Runs `job` in a child Deno process (this file), its stderr passed through; its stdout. */
async function runChild(job: BigJob | ProfileJob): Promise<string> {
  const out = await new Deno.Command("deno", {
    args: [
      "run",
      "--config",
      `${BENCH_DIR}deno.json`,
      "--allow-read=.",
      "--allow-env=XDG_RUNTIME_DIR",
      `${BENCH_DIR}big.ts`,
      JSON.stringify(job),
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "inherit",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(
      `Cannot run whet's ${job.kind} job on ${job.model}: the child exited with ${out.code}`,
    );
  }
  return stdout;
}

/**
 * Runs the big section: per part, PyTorch's measurement (when the peer runs) then whet's, each in
 * its own process; then the comparisons and targets.
 */
export async function bigSection(opts: BigOptions): Promise<BigResult> {
  const t0 = performance.now();
  const found = opts.peer ? await findPeer() : { why: "PyTorch peer not run: --no-peer" };
  const peer = "info" in found ? found : null;
  const peerNote = peer
    ? `PyTorch peer: ${peer.python} (${peer.info.executable}), torch ${peer.info.torch}, ${
      blasName(peer.info.blasLibraries)
    }, ${peer.info.threads} threads on ${peer.info.cpus} CPUs`
    : (found as { why: string }).why;
  opts.log(peerNote);
  const q = opts.quick;
  const small: BigModel = q ? "tiny" : "gpt2";
  const [B, T] = q ? [2, 16] : [8, 256];
  const runs: BigResult["runs"] = [];
  const comparisons: BigComparison[] = [];
  const describe = (job: BigJob) =>
    job.kind === "train"
      ? `${job.model} ${job.method}${
        job.baseDtype ? ` (${job.baseDtype} base)` : ""
      } ${job.batch}×${job.seq}, ${job.steps} timed steps`
      : `${job.model} generation, ${job.newTokens} new tokens after ${job.prompt}`;
  const measure = async (job: BigJob, framework: "whet" | "pytorch", threads = 0) => {
    const who = framework === "whet"
      ? "whet"
      : `pytorch (${threads || "all"} thread${threads === 1 ? "" : "s"})`;
    opts.log(`${who}: ${describe(job)} …`);
    const result = framework === "whet"
      ? parseMeasure(job, await runChild(job))
      : await runTorch(peer!.python, job, q, threads);
    opts.log(
      `${who}: ${result.tokensPerSecond.toFixed(2)} tokens/s, ${
        result.tokensPerCpuSecond.toFixed(2)
      } tokens/CPU·s, peak RSS ${gib(result.peakRssBytes)}`,
    );
    runs.push({ job, result });
    return result;
  };
  const pair = async (what: string, job: BigJob) => {
    const torch = [];
    for (const threads of peer ? opts.torchThreads : []) {
      torch.push(await measure(job, "pytorch", threads));
    }
    const whet = await measure(job, "whet");
    for (const t of torch) comparisons.push(compareMeasures(what, whet, t));
  };
  const train = (
    model: BigModel,
    method: "lora" | "full",
    steps = opts.steps,
  ): Extract<BigJob, { kind: "train" }> => ({
    kind: "train",
    model,
    method,
    steps,
    batch: B,
    seq: T,
  });
  const profiles: StepProfile[] = [];
  for (const part of opts.parts) {
    if (part === "lora") await pair("LoRA training", train(small, "lora"));
    else if (part === "lora-f16") {
      await measure({ ...train(small, "lora"), baseDtype: "f16" }, "whet");
    } else if (part === "full") await pair("full fine-tuning", train(small, "full"));
    else if (part === "generate") {
      await pair("generation", {
        kind: "generate",
        model: small,
        newTokens: q ? 8 : 128,
        prompt: q ? 4 : 16,
      });
    } else if (part === "medium") {
      await measure(train(q ? "tiny" : "gpt2-medium", "lora", 0), "whet");
    } else if (part === "smollm") {
      await measure(train(q ? "llama-tiny" : "smollm2-135m", "lora"), "whet");
    } else {
      // Midway through the generation measured above: 16 prompt tokens + 64 generated.
      const jobs: ProfileJob[] = [
        { kind: "profile-decode", model: small, position: q ? 8 : 80 },
        { kind: "profile-train", model: small, method: "lora", batch: B, seq: T },
      ];
      for (const job of jobs) {
        opts.log(`whet: profile (${job.kind}) of ${small} …`);
        profiles.push(JSON.parse((await runChild(job)).trim().split("\n").pop()!) as StepProfile);
      }
    }
  }
  return {
    peer: peer?.info ?? null,
    peerNote,
    runs,
    ...(profiles.length > 0 ? { profiles } : {}),
    comparisons,
    targets: q ? [] : bigTargets(comparisons, runs),
    seconds: (performance.now() - t0) / 1000,
  };
}

/** Prints the section's tables. */
export function printBig(r: BigResult): void {
  const rows = [[
    "model",
    "job",
    "framework",
    "tokens/s",
    "tokens/CPU·s",
    "peak RSS",
    "peak GPU",
    "first step s",
  ]];
  for (const { job, result } of r.runs) {
    const t = result as TrainMeasure;
    rows.push([
      job.model,
      job.kind === "train"
        ? `${job.method}${
          job.baseDtype ? ` (${job.baseDtype} base)` : ""
        } ${job.batch}×${job.seq} (${job.steps} timed)`
        : "generate",
      result.framework + (result.threads ? ` (${result.threads} thr.)` : ""),
      result.tokensPerSecond.toFixed(2),
      result.tokensPerCpuSecond.toFixed(2),
      gib(result.peakRssBytes),
      t.peakGpuBytes === undefined ? "" : gib(t.peakGpuBytes),
      t.firstStepSeconds === undefined ? "" : t.firstStepSeconds.toFixed(1),
    ]);
  }
  if (r.runs.length > 0) table(rows, 3);
  if (r.comparisons.length > 0) {
    console.log("\nwhet ÷ PyTorch:");
    table(
      [["configuration", "PyTorch threads", "tokens/s", "tokens/CPU·s", "peak RSS"]].concat(
        r.comparisons.map((c) => [
          c.what,
          String(c.peerThreads),
          times(c.wallRatio),
          times(c.cpuRatio),
          times(c.rssRatio),
        ]),
      ),
      1,
    );
  }
  if (r.targets.length > 0) {
    console.log("\ntargets:");
    table(
      [["target", "measured", "met"]].concat(
        r.targets.map((t) => [t.target, t.measured, t.met ? "yes" : "NO"]),
      ),
      3,
    );
  }
  for (const p of r.profiles ?? []) {
    const sum = p.kernels.reduce((a, k) => a + k.ms, 0);
    console.log(
      `\n${p.what}: ${p.stepMs.toFixed(1)} ms wall, ${
        p.stepCpuMs.toFixed(1)
      } ms CPU; kernels replayed on their own: ${sum.toFixed(1)} ms`,
    );
    const rows = (list: ReplayRow[]) =>
      list.map((k) => [
        k.name,
        String(k.dispatches),
        k.ms.toFixed(2),
        `${(100 * k.ms / sum).toFixed(1)}%`,
        k.cpuMs.toFixed(2),
        k.flop ? (k.flop / k.cpuMs / 1e6).toFixed(2) : "",
      ]);
    const head = ["dispatches", "ms", "share", "CPU ms", "GFLOP/CPU·s"];
    table([["family", ...head], ...rows(p.families)], 1);
    table([["kernel", ...head], ...rows(p.kernels.slice(0, 12))], 1);
  }
  // Also in the progress lines (stderr), but stdout alone should say what the peer was.
  console.log(`\n${r.peerNote}\nsection: ${(r.seconds / 60).toFixed(1)} min`);
}

function table(rows: string[][], rightFrom: number): void {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) {
    console.log(
      r.map((s, i) => (i >= rightFrom ? s.padStart(widths[i]) : s.padEnd(widths[i]))).join("  "),
    );
  }
}

// ---- the child: one whet job per process ----

const NO_DROPOUT = { resid_pdrop: 0, embd_pdrop: 0, attn_pdrop: 0 };

/** A model of `which` with random weights (seed 1); gradients for every weight when `trainable`. */
async function createModel(
  gpu: Gpu,
  which: BigModel,
  trainable: boolean,
  baseDtype?: "f16" | "bf16",
): Promise<Decoder> {
  const options = { seed: 1, trainable, baseDtype };
  switch (which) {
    case "gpt2":
      return await GPT.create(gpu, gptConfig("gpt2", NO_DROPOUT), options);
    case "gpt2-medium": // Hugging Face's gpt2-medium: d 1024, 24 layers, 16 heads
      return await GPT.create(
        gpu,
        gptConfig("gpt2", { ...NO_DROPOUT, n_embd: 1024, n_layer: 24, n_head: 16 }),
        options,
      );
    case "tiny":
      return await GPT.create(gpu, gptConfig("tiny"), options);
    case "smollm2-135m":
      return await Llama.create(gpu, llamaConfig("smollm2-135m"), options);
    case "llama-tiny":
      return await Llama.create(gpu, llamaConfig("llama-tiny"), options);
  }
}

/** LoRA r 8, alpha 16 on GPT-2's fused `c_attn`, or on the Llama family's q, k and v. */
function loraConfig(model: Decoder) {
  return lora.validate({
    r: 8,
    lora_alpha: 16,
    target_modules: model.shape.split ? ["q_proj", "k_proj", "v_proj"] : ["c_attn"],
  });
}

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** ru_maxrss of this process in bytes (Linux reports KiB). */
function peakRss(): number {
  return process.resourceUsage().maxRSS * 1024;
}

async function trainJob(
  gpu: Gpu,
  job: Extract<BigJob, { kind: "train" }>,
): Promise<TrainMeasure> {
  const t0 = performance.now();
  const model = await createModel(gpu, job.model, job.method === "full", job.baseDtype);
  const createSeconds = (performance.now() - t0) / 1000;
  const params = job.method === "lora"
    ? (await lora.apply(model, loraConfig(model), 1)).trainable()
    : undefined;
  const { batch: B, seq: T } = job;
  const ids = benchData(B, T, model.shape.V);
  const src = { batchesPerEpoch: 1, batch: () => ({ ids, labels: ids, batchSize: B, seqLen: T }) };
  const opts = { lr: 1e-3, warmupSteps: 0 };
  const run = async (steps: number) => {
    const trainer = await Trainer.create(model, src, { ...opts, steps, logEvery: steps }, {
      params,
    });
    const c0 = cpuSeconds(), w0 = performance.now();
    const r = await trainer.run(); // restarts the peak GPU accounting at its start
    const timing = { seconds: (performance.now() - w0) / 1000, cpu: cpuSeconds() - c0 };
    trainer.release();
    return { ...timing, losses: r.losses, peakGpuBytes: gpu.memory.peakReserved };
  };
  const first = await run(1);
  const timed = job.steps > 0 ? await run(job.steps) : first;
  const steps = Math.max(job.steps, 1);
  const counts = model.countParameters();
  model.release();
  return {
    framework: "whet",
    parameters: counts.total,
    createSeconds,
    seconds: timed.seconds,
    cpuSeconds: timed.cpu,
    tokensPerSecond: (steps * B * T) / timed.seconds,
    tokensPerCpuSecond: (steps * B * T) / timed.cpu,
    peakRssBytes: peakRss(),
    method: job.method,
    trainable: counts.trainable,
    batch: B,
    seq: T,
    steps: job.steps,
    losses: job.steps > 0 ? [...first.losses, ...timed.losses] : first.losses,
    firstStepSeconds: first.seconds,
    peakGpuBytes: Math.max(first.peakGpuBytes, timed.peakGpuBytes),
  };
}

async function generateJob(
  gpu: Gpu,
  job: Extract<BigJob, { kind: "generate" }>,
): Promise<GenerateMeasure> {
  const t0 = performance.now();
  const model = await createModel(gpu, job.model, false);
  const createSeconds = (performance.now() - t0) / 1000;
  const prompt = benchData(1, job.prompt, model.shape.V);
  await generate(model, [prompt], { maxNewTokens: 4 }); // warm-up: pipelines, cache buffers
  gpu.resetPeakMemory();
  const c0 = cpuSeconds(), w0 = performance.now();
  const out = await generate(model, [prompt], { maxNewTokens: job.newTokens }); // greedy, cached
  const seconds = (performance.now() - w0) / 1000, cpu = cpuSeconds() - c0;
  const parameters = model.countParameters().total;
  model.release();
  return {
    framework: "whet",
    parameters,
    createSeconds,
    seconds,
    cpuSeconds: cpu,
    tokensPerSecond: job.newTokens / seconds,
    tokensPerCpuSecond: job.newTokens / cpu,
    peakRssBytes: peakRss(),
    promptTokens: job.prompt,
    newTokens: job.newTokens,
    ids: out.ids[0],
    peakGpuBytes: gpu.memory.peakReserved,
  };
}

/**
 * One cached decode step of batch 1 at `position` (a cache of position + 1 zeroed keys and
 * values), the dispatches generate() records per token (Decoder.decodeStep): its wall and CPU time
 * as generation runs it (record, submit, read the logits back), then each kernel replayed alone.
 */
async function profileDecodeJob(
  gpu: Gpu,
  job: Extract<ProfileJob, { kind: "profile-decode" }>,
): Promise<StepProfile> {
  const model = await createModel(gpu, job.model, false);
  const { Hkv, d } = model.shape;
  const S = job.position + 1;
  const acts = new Activations(gpu, model.shape, 1, 1);
  const cache: KvCache = {
    layers: model.blocks.map((_, l) => gpu.tensor([1, S, 2 * Hkv * d], undefined, `h.${l}.kv`)),
    start: gpu.tensor([1], undefined, "start"),
    hostStart: Uint32Array.of(job.position),
    S,
  };
  const init = gpu.batch();
  for (const t of cache.layers) init.fill(t, 0);
  await init.submit();
  const step = async () => {
    const c0 = cpuSeconds(), t0 = performance.now();
    const batch = gpu.batch();
    batch.write(cache.start, cache.hostStart);
    model.decodeStep(batch, acts, [1], cache);
    await batch.submit();
    await gpu.read([acts.logits]);
    return { ms: performance.now() - t0, cpuMs: (cpuSeconds() - c0) * 1000 };
  };
  for (let i = 0; i < 2; i++) await step(); // warm-up: pipelines, packed operands
  const timed = [];
  for (let i = 0; i < 5; i++) timed.push(await step());
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  gpu.recorder = [];
  await step();
  const recorded = gpu.recorder;
  gpu.recorder = null;
  const kernels = (await replayProfile(gpu, recorded)).sort((a, b) => b.ms - a.ms);
  acts.release();
  for (const t of [...cache.layers, cache.start]) t.release();
  model.release();
  return {
    framework: "whet",
    what: `${job.model} decode step at position ${job.position}`,
    stepMs: median(timed.map((s) => s.ms)),
    stepCpuMs: median(timed.map((s) => s.cpuMs)),
    kernels,
    families: byFamily(kernels),
    peakRssBytes: peakRss(),
  };
}

/**
 * One training step as trainJob runs it (after a warm-up step), recorded, then each kernel
 * replayed on its own once (a GPT-2 small step is a minute of CPU: one replay doubles it) while
 * the step's tensors are alive.
 */
async function profileTrainJob(
  gpu: Gpu,
  job: Extract<ProfileJob, { kind: "profile-train" }>,
): Promise<StepProfile> {
  const model = await createModel(gpu, job.model, job.method === "full");
  const params = job.method === "lora"
    ? (await lora.apply(model, loraConfig(model), 1)).trainable()
    : undefined;
  const { batch: B, seq: T } = job;
  const ids = benchData(B, T, model.shape.V);
  const src = { batchesPerEpoch: 1, batch: () => ({ ids, labels: ids, batchSize: B, seqLen: T }) };
  const trainer = () =>
    Trainer.create(model, src, { lr: 1e-3, warmupSteps: 0, steps: 1, logEvery: 1 }, { params });
  const warm = await trainer();
  await warm.run();
  warm.release();
  const step = await trainer();
  gpu.recorder = [];
  const c0 = cpuSeconds(), t0 = performance.now();
  await step.run();
  const stepMs = performance.now() - t0, stepCpuMs = (cpuSeconds() - c0) * 1000;
  const recorded = gpu.recorder;
  gpu.recorder = null;
  const kernels = (await replayProfile(gpu, recorded, 1)).sort((a, b) => b.ms - a.ms);
  step.release();
  model.release();
  return {
    framework: "whet",
    what: `${job.model} ${job.method} training step ${B}×${T}`,
    stepMs,
    stepCpuMs,
    kernels,
    families: byFamily(kernels),
    peakRssBytes: peakRss(),
  };
}

/** Replayed kernels summed per family (the name up to its first dot), largest first. */
function byFamily(kernels: readonly ReplayRow[]): ReplayRow[] {
  const families = new Map<string, ReplayRow & { flop: number }>();
  for (const k of kernels) {
    const name = k.name.split(".")[0];
    const f = families.get(name) ?? { name, dispatches: 0, ms: 0, cpuMs: 0, flop: 0 };
    f.dispatches += k.dispatches;
    f.ms += k.ms;
    f.cpuMs += k.cpuMs;
    f.flop += k.flop ?? 0;
    families.set(name, f);
  }
  return [...families.values()]
    .map(({ flop, ...f }) => flop ? { ...f, flop } : f)
    .sort((a, b) => b.ms - a.ms);
}

if (import.meta.main) {
  const job = JSON.parse(Deno.args[0] ?? "null") as BigJob | ProfileJob | null;
  const gpu = await Gpu.get();
  let result;
  if (job?.kind === "train") result = await trainJob(gpu, job);
  else if (job?.kind === "generate") result = await generateJob(gpu, job);
  else if (job?.kind === "profile-decode") result = await profileDecodeJob(gpu, job);
  else if (job?.kind === "profile-train") result = await profileTrainJob(gpu, job);
  else throw new Error(`Cannot run a big-section job: expected a job as JSON, got ${Deno.args[0]}`);
  console.log(JSON.stringify(result));
}
