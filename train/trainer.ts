/**
 * The training loop: AdamW with decoupled weight decay, warmup + cosine schedule, global-norm
 * clipping, gradient accumulation, evaluation loss every N steps, atomic checkpoints every N steps
 * and at the end, exact resume, and a clean stop (keeping the last good checkpoint) when the loss
 * becomes NaN or infinite. Optional activation checkpointing trades compute for activation memory.
 *
 * One optimizer step is recorded into one batch and submitted once; the GPU is waited on only when
 * losses are logged (every `logEvery` steps), at evaluations and at checkpoints.
 *
 * @module
 */

import { IGNORE_INDEX } from "../kernels/crossentropy.ts";
import { HF_CONFIG_FILE, HF_WEIGHTS_FILE, saveModelCheckpoint } from "../models/checkpoint.ts";
import type { Activations } from "../models/activations.ts";
import type { Decoder } from "../models/decoder.ts";
import type { Param } from "../models/param.ts";
import { readSafetensors, writeFileAtomic, writeSafetensors } from "../models/safetensors.ts";
import { mix32 } from "../runtime/rng.ts";
import type { Tensor } from "../runtime/tensor.ts";
import { type AdamWConfig, Optimizer } from "./optimizer.ts";
import { learningRate } from "./schedule.ts";
import { storedInBaseDtype } from "../models/base_dtype.ts";
import {
  type Available,
  availableMemory,
  fitMemory,
  type FitResult,
  type MemoryPlan,
  planInputFromModel,
  type RemedyNames,
} from "./memory_plan.ts";

/** The options a memory-plan error names. */
const TRAIN_OPTION_NAMES: RemedyNames = {
  gradientCheckpointing: "gradientCheckpointing",
  halfBase: "baseDtype",
  batchSize: "batchSize",
  seqLen: "seqLen",
};
import { files } from "../io/files.ts";

/** A (B,T) batch of ids and labels (labels aligned with ids; -100 ignored). */
export interface TrainBatch {
  /** (B·T) ids. */
  ids: ArrayLike<number>;
  /** (B·T) labels. */
  labels: ArrayLike<number>;
  /** B. */
  batchSize: number;
  /** T. */
  seqLen: number;
}

/** Where batches come from: a pure function of (epoch, index), so resume is exact (e.g. `Batcher`). */
export interface BatchSource {
  /** Batches per epoch. */
  readonly batchesPerEpoch: number;
  /** Batch `index` of epoch `epoch`. */
  batch(epoch: number, index: number): TrainBatch;
}

/** Training hyperparameters and bookkeeping. */
export interface TrainOptions {
  /** Optimizer steps. */
  steps: number;
  /** Peak learning rate. */
  lr: number;
  /** Linear warmup steps (default 0). */
  warmupSteps?: number;
  /** Cosine floor as a fraction of lr (default 0.1). */
  minLrRatio?: number;
  /** Micro-batches per optimizer step (default 1); the loss is averaged over all their targets. */
  gradAccum?: number;
  /** AdamW settings (defaults: β 0.9/0.999, ε 1e-8, weight decay 0.01, clip 1.0). */
  optimizer?: Partial<AdamWConfig>;
  /** Read and report losses every N steps (default 10). Each report is one GPU wait. */
  logEvery?: number;
  /** Evaluate the dev loss every N steps (0: only at the end when dev data is given). */
  evalEvery?: number;
  /** Dev batches per evaluation (default: all of one epoch). */
  evalBatches?: number;
  /** Write a checkpoint every N steps (0: only at the end). Needs `outDir`. */
  checkpointEvery?: number;
  /** Folder for `checkpoint/` (written atomically); none: no checkpoints. */
  outDir?: string;
  /** Seed of the dropout masks. */
  seed?: number;
  /**
   * Activation (gradient) checkpointing (default false): keep only each block's output and
   * recompute its intermediates in the backward. Same losses and gradients, much less activation
   * memory, about one more forward of compute per step.
   */
  gradientCheckpointing?: boolean;
}

/** One progress report. */
export interface Progress {
  /** Optimizer steps done. */
  step: number;
  /** Total steps. */
  steps: number;
  /** Mean training loss of the last logged step. */
  loss: number;
  /** Learning rate of the last step. */
  lr: number;
  /** Global gradient norm before clipping, of the last step. */
  gradNorm: number;
  /** Tokens (B·T per micro-batch) per second since the run (or resume) started. */
  tokensPerSecond: number;
  /** Seconds since start. */
  elapsed: number;
  /** Estimated seconds left. */
  eta: number;
}

/** What a run produced. */
export interface TrainResult {
  /** Mean training loss of every step (index 0 is step 1; steps before a resume are NaN). */
  losses: number[];
  /** Dev losses by step. */
  evalLosses: { step: number; loss: number }[];
  /** Tokens processed (B·T per micro-batch) in this run. */
  tokens: number;
  /** Wall seconds of this run. */
  seconds: number;
  /** tokens / seconds. */
  tokensPerSecond: number;
  /** Peak GPU bytes held by the buffer pool during the run. */
  peakBytes: number;
  /** Where the final checkpoint is, if any. */
  checkpoint?: string;
}

/** The state saved beside the weights, enough to continue exactly. */
interface TrainerState {
  step: number;
  losses: number[];
  evalLosses: { step: number; loss: number }[];
  options: TrainOptions;
  /**
   * Byte size of every other file of the checkpoint. The state is written last, so a folder whose
   * state parses and whose files have these sizes is complete. Absent in checkpoints written before
   * it existed: those are checked by parsing their two safetensors files only.
   */
  files?: Record<string, number>;
}

/** The stages of a checkpoint save, in order (see {@linkcode Trainer.create}). */
type CheckpointStage = "created" | "partial" | "verified" | "moved" | "renamed";
type CheckpointHook = (stage: CheckpointStage, step: number) => void | Promise<void>;

const STATE_FILE = "trainer_state.json";
const TRAINABLE_FILE = "trainable.safetensors";
const OPTIMIZER_FILE = "optimizer.safetensors";
/** The checkpoint folder inside `outDir`. */
const CHECKPOINT_DIR = "checkpoint";
/** Every other folder a save creates starts with this: its temporary folders and the old copy. */
const CHECKPOINT_PREFIX = ".checkpoint.";
/** Where the previous checkpoint waits while the new one is renamed into place. */
const OLD_CHECKPOINT_DIR = `${CHECKPOINT_PREFIX}old`;

/**
 * Checks that `dir` holds a complete checkpoint and returns its step, or the reason it is not one.
 */
async function inspectCheckpoint(dir: string): Promise<{ step: number } | { problem: string }> {
  let state: TrainerState;
  try {
    state = JSON.parse(await files().readText(`${dir}/${STATE_FILE}`));
  } catch (e) {
    return { problem: `${dir}/${STATE_FILE} cannot be read: ${(e as Error).message}` };
  }
  if (typeof state !== "object" || state === null || !Number.isInteger(state.step)) {
    return { problem: `${dir}/${STATE_FILE} has no integer "step"` };
  }
  for (const [name, size] of Object.entries(state.files ?? {})) {
    const actual = await files().stat(`${dir}/${name}`).then((s) => s?.size, () => undefined);
    if (actual !== size) {
      return {
        problem: `${dir}/${name} ${
          actual === undefined ? "is missing" : `has ${actual} bytes`
        }, the state lists ${size}`,
      };
    }
  }
  for (const file of [TRAINABLE_FILE, OPTIMIZER_FILE]) {
    try {
      await readSafetensors(`${dir}/${file}`);
    } catch (e) {
      return { problem: (e as Error).message };
    }
  }
  return { step: state.step };
}

async function removeIfPresent(path: string): Promise<void> {
  try {
    await files().remove(path);
  } catch (e) {
    if (!files().isNotFound(e)) throw e;
  }
}

/** Names of the folders in `outDir` that hold or held a checkpoint (the final one first). */
async function checkpointFolders(outDir: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for (const e of await files().readDir(outDir)) {
      if (
        e.isDirectory && (e.name === CHECKPOINT_DIR || e.name.startsWith(CHECKPOINT_PREFIX))
      ) names.push(e.name);
    }
  } catch (e) {
    if (files().isNotFound(e)) return [];
    throw e;
  }
  return names.sort();
}

/**
 * Trains `params` (default: every trainable parameter of the model) on batches from `train`.
 *
 * @example
 * ```ts
 * import { GPT, gptConfig, Gpu, Trainer } from "../mod.ts";
 * const gpu = await Gpu.get();
 * const model = await GPT.create(gpu, gptConfig("tiny"), { seed: 1 });
 * const ids = Array.from({ length: 16 }, (_, i) => i % 4);
 * const source = { batchesPerEpoch: 1, batch: () => ({ ids, labels: ids, batchSize: 1, seqLen: 16 }) };
 * const trainer = await Trainer.create(model, source, { steps: 20, lr: 3e-3, logEvery: 20 });
 * const result = await trainer.run();
 * if (!(result.losses[19] < result.losses[0])) throw new Error("loss did not fall");
 * trainer.release();
 * model.release();
 * ```
 */
export class Trainer {
  /** The model. */
  readonly model: Decoder;
  /** The optimizer. */
  readonly optimizer: Optimizer;
  /** Options with defaults filled in. */
  readonly options:
    & Required<Omit<TrainOptions, "outDir" | "optimizer">>
    & Pick<TrainOptions, "outDir" | "optimizer">;
  /** The memory plan made before the first step (see train/memory_plan.ts). */
  readonly memoryPlan: MemoryPlan;
  /**
   * True when the run fitted only with gradient checkpointing and `create` turned it on
   * (`options.gradientCheckpointing` is then true).
   */
  readonly checkpointingTurnedOn: boolean;
  readonly #train: BatchSource;
  readonly #dev: BatchSource | undefined;
  readonly #acts: Activations;
  readonly #lossLog: Tensor;
  #step = 0;
  #losses: number[] = [];
  #evalLosses: { step: number; loss: number }[] = [];
  #lastCheckpoint: string | undefined;
  readonly #checkpointHook: CheckpointHook | undefined;
  readonly #checkpointFiles: Readonly<Record<string, string>>;

  private constructor(
    model: Decoder,
    optimizer: Optimizer,
    train: BatchSource,
    dev: BatchSource | undefined,
    options: TrainOptions,
    checkpoint: { hook?: CheckpointHook; files?: Readonly<Record<string, string>> },
    fit: FitResult,
  ) {
    this.model = model;
    this.memoryPlan = fit.plan;
    this.checkpointingTurnedOn = fit.checkpointingTurnedOn;
    this.optimizer = optimizer;
    this.#train = train;
    this.#dev = dev;
    this.#checkpointHook = checkpoint.hook;
    this.#checkpointFiles = checkpoint.files ?? {};
    this.options = {
      warmupSteps: 0,
      minLrRatio: 0.1,
      gradAccum: 1,
      logEvery: 10,
      evalEvery: 0,
      evalBatches: dev?.batchesPerEpoch ?? 0,
      checkpointEvery: 0,
      seed: 0,
      gradientCheckpointing: false,
      ...options,
    };
    const first = train.batch(0, 0);
    this.#acts = model.activations(first.batchSize, first.seqLen, {
      checkpoint: this.options.gradientCheckpointing,
    });
    const M = this.#acts.B * this.#acts.T;
    this.#lossLog = model.gpu.tensor(
      [this.options.logEvery * this.options.gradAccum * M + 2],
      undefined,
      "loss_log",
    );
  }

  /**
   * A trainer for `model` on `train` (and `dev` for evaluation). `params` defaults to the model's
   * trainable parameters; PEFT methods pass their own list. `checkpointFiles` are text files
   * (name → content) written into every checkpoint and verified with it, such as the run's own
   * config, so that it travels with the weights it produced. `checkpointHook` is awaited at each
   * stage of every checkpoint save, in this order: "created" (empty temporary folder), "partial"
   * (some files written), "verified" (temporary folder complete, previous checkpoint still in
   * place), "moved" (previous checkpoint renamed to `.checkpoint.old`), "renamed" (new checkpoint
   * in place, old one not yet removed); the kill tests stop the process there.
   *
   * Before it allocates anything, `create` plans the run's memory (train/memory_plan.ts) against
   * the device's limits and `available` (default: {@linkcode availableMemory}; null: limits only):
   * a run that does not fit is refused with a `MemoryPlanError` that says which
   * change would make it fit, and one that fits only with gradient checkpointing gets it
   * ({@linkcode Trainer.checkpointingTurnedOn}).
   */
  static async create(
    model: Decoder,
    train: BatchSource,
    options: TrainOptions,
    extra: {
      dev?: BatchSource;
      params?: Param[];
      checkpointHook?: (
        stage: "created" | "partial" | "verified" | "moved" | "renamed",
        step: number,
      ) => void | Promise<void>;
      checkpointFiles?: Readonly<Record<string, string>>;
      available?: Available | null;
    } = {},
  ): Promise<Trainer> {
    validate(options);
    // The memory plan, before the optimizer state and the activations are allocated.
    const first = train.batch(0, 0);
    // A half base can be suggested when no base matrix is trained.
    const trainsBase = [...model.params.values()]
      .some((p) => p.grad !== null && storedInBaseDtype(p.name, p.shape));
    const fit = fitMemory(
      planInputFromModel(model, first.batchSize, first.seqLen, {
        halfEligible: trainsBase ? undefined : storedInBaseDtype,
        gradientCheckpointing: options.gradientCheckpointing ?? false,
        lossLogBatches: (options.logEvery ?? 10) * (options.gradAccum ?? 1),
        available: extra.available === null
          ? undefined
          : extra.available ?? availableMemory(model.gpu),
      }),
      TRAIN_OPTION_NAMES,
    );
    if (fit.checkpointingTurnedOn) options = { ...options, gradientCheckpointing: true };
    const reserved = [STATE_FILE, TRAINABLE_FILE, OPTIMIZER_FILE, HF_CONFIG_FILE, HF_WEIGHTS_FILE];
    for (const name of Object.keys(extra.checkpointFiles ?? {})) {
      if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(name) || reserved.includes(name)) {
        throw new RangeError(
          `Cannot create a trainer: checkpoint file "${name}" must be a plain file name other than ${
            reserved.join(", ")
          }`,
        );
      }
    }
    const optimizer = await Optimizer.create(
      model.gpu,
      extra.params ?? model.parameters(),
      options.optimizer,
    );
    return new Trainer(model, optimizer, train, extra.dev, options, {
      hook: extra.checkpointHook,
      files: extra.checkpointFiles,
    }, fit);
  }

  /** Optimizer steps done. */
  get step(): number {
    return this.#step;
  }

  #position(micro: number): [number, number] {
    const per = this.#train.batchesPerEpoch;
    return [Math.floor(micro / per), micro % per];
  }

  /** Dropout seed of micro-batch `micro` (a pure function of the seed and the position). */
  #seed(micro: number): number {
    return mix32((mix32(this.options.seed >>> 0) ^ micro) >>> 0);
  }

  /**
   * Runs to `options.steps`, calling `onProgress` at every log point. Throws (after keeping the
   * last good checkpoint) when the loss becomes NaN or infinite.
   */
  async run(onProgress?: (p: Progress) => void): Promise<TrainResult> {
    const o = this.options, gpu = this.model.gpu, acts = this.#acts, M = acts.B * acts.T;
    const sched = {
      lr: o.lr,
      warmupSteps: o.warmupSteps,
      totalSteps: o.steps,
      minLrRatio: o.minLrRatio,
    };
    const start = performance.now(), startStep = this.#step;
    gpu.resetPeakMemory();
    let tokens = 0;
    let pending: { step: number; counts: number[]; lr: number }[] = [];
    const flush = async (): Promise<Progress | undefined> => {
      if (pending.length === 0) return undefined;
      const [log] = await gpu.read([this.#lossLog]);
      let slot = 0;
      for (const p of pending) {
        let sum = 0;
        for (let j = 0; j < p.counts.length; j++, slot++) {
          for (let i = 0; i < M; i++) sum += log[slot * M + i];
        }
        const total = p.counts.reduce((a, b) => a + b, 0);
        const loss = total > 0 ? sum / total : NaN;
        this.#losses[p.step - 1] = loss;
        if (!Number.isFinite(loss) && total > 0) {
          const kept = this.#lastCheckpoint
            ? `the last good checkpoint is ${this.#lastCheckpoint}`
            : "no checkpoint was written";
          throw new Error(
            `Cannot continue training: the loss became ${loss} at step ${p.step}; ${kept}`,
          );
        }
      }
      const last = pending[pending.length - 1];
      pending = [];
      const elapsed = (performance.now() - start) / 1000;
      const done = this.#step - startStep;
      return {
        step: this.#step,
        steps: o.steps,
        loss: this.#losses[last.step - 1],
        lr: last.lr,
        gradNorm: log[log.length - 2],
        tokensPerSecond: tokens / elapsed,
        elapsed,
        eta: done > 0 ? (elapsed / done) * (o.steps - this.#step) : NaN,
      };
    };

    while (this.#step < o.steps) {
      const step = this.#step + 1;
      const lr = learningRate(sched, step);
      const batch = gpu.batch();
      this.model.zeroGrad(batch);
      const micro0 = (step - 1) * o.gradAccum;
      const batches = Array.from(
        { length: o.gradAccum },
        (_, j) => this.#train.batch(...this.#position(micro0 + j)),
      );
      const counts = batches.map((b) => this.model.countTargets(b.labels, b.seqLen));
      const total = counts.reduce((a, b) => a + b, 0);
      const slotBase = pending.reduce((a, p) => a + p.counts.length, 0);
      batches.forEach((b, j) => {
        checkShape(b, acts.B, acts.realT);
        this.model.forward(batch, acts, b, {
          training: true,
          seed: this.#seed(micro0 + j),
          lossScale: total > 0 ? 1 / total : 0,
        });
        this.model.backward(batch, acts);
        batch.copy(acts.losses, {
          buffer: this.#lossLog.buffer,
          offset: (slotBase + j) * M * 4,
          size: M * 4,
        }, M * 4);
        tokens += M;
      });
      this.optimizer.step(batch, lr);
      batch.copy(this.optimizer.normOut, {
        buffer: this.#lossLog.buffer,
        offset: (this.#lossLog.size - 2) * 4,
        size: 8,
      }, 8);
      await batch.submit();
      this.#step = step;
      pending.push({ step, counts, lr });
      const atEnd = step === o.steps;
      const checkpointNow = o.outDir &&
        (atEnd || (o.checkpointEvery > 0 && step % o.checkpointEvery === 0));
      const evalNow = this.#dev && (atEnd || (o.evalEvery > 0 && step % o.evalEvery === 0));
      if (pending.length === o.logEvery || atEnd || checkpointNow || evalNow) {
        const progress = await flush();
        if (evalNow) this.#evalLosses.push({ step, loss: await this.evaluate() });
        if (checkpointNow) await this.saveCheckpoint();
        if (progress && onProgress) onProgress(progress);
      }
    }
    const seconds = (performance.now() - start) / 1000;
    return {
      losses: this.#losses.slice(),
      evalLosses: this.#evalLosses.slice(),
      tokens,
      seconds,
      tokensPerSecond: tokens / seconds,
      peakBytes: gpu.memory.peakReserved,
      checkpoint: this.#lastCheckpoint,
    };
  }

  /** Mean loss over the dev batches (targets weighted equally; one GPU wait per batch). */
  async evaluate(): Promise<number> {
    const dev = this.#dev;
    if (!dev) throw new Error("Cannot evaluate: no dev data was given");
    let sum = 0, count = 0;
    const n = Math.min(this.options.evalBatches || dev.batchesPerEpoch, dev.batchesPerEpoch);
    for (let i = 0; i < n; i++) {
      const b = dev.batch(0, i);
      checkShape(b, this.#acts.B, this.#acts.realT);
      const batch = this.model.gpu.batch();
      this.model.forward(batch, this.#acts, b, { lossScale: 1 });
      await batch.submit();
      const [losses] = await this.model.gpu.read([this.#acts.losses]);
      for (let r = 0; r < losses.length; r++) {
        if (this.#acts.hostTargets[r] !== IGNORE_INDEX) {
          sum += losses[r];
          count++;
        }
      }
    }
    return count > 0 ? sum / count : NaN;
  }

  /**
   * Writes `outDir/checkpoint/`: the trainable parameters, the optimizer moments, the trainer state
   * and, when every model parameter is trainable, a Hugging Face checkpoint (config.json +
   * model.safetensors) loadable on its own. The files go to a temporary `.checkpoint.*` folder that
   * is read back and verified before the previous checkpoint is moved aside, so that a process
   * stopped at any moment leaves at least one complete checkpoint for
   * {@linkcode Trainer.recoverCheckpoint} to find.
   */
  async saveCheckpoint(): Promise<string> {
    const outDir = this.options.outDir;
    if (!outDir) throw new Error("Cannot save a checkpoint: no outDir was given");
    await files().mkdir(outDir);
    const final = `${outDir}/${CHECKPOINT_DIR}`, old = `${outDir}/${OLD_CHECKPOINT_DIR}`;
    const step = this.#step;
    const stage = async (s: CheckpointStage) => await this.#checkpointHook?.(s, step);
    const tmp = await files().makeTempDir(outDir, CHECKPOINT_PREFIX);
    // Until the previous checkpoint is moved aside, a failed save only has its own folder to remove.
    let moved = false;
    try {
      await stage("created");
      const params = this.optimizer.params;
      const values = await this.model.gpu.read(params.map((p) => p.value));
      const trainable = new Map(
        params.map((p, i) => [p.name, { shape: p.shape, data: values[i] }]),
      );
      for (const [name, t] of trainable) {
        for (const v of t.data) {
          if (!Number.isFinite(v)) {
            throw new Error(`Cannot save a checkpoint: parameter "${name}" holds ${v}`);
          }
        }
      }
      await writeSafetensors(`${tmp}/${TRAINABLE_FILE}`, trainable);
      await stage("partial");
      await writeSafetensors(`${tmp}/${OPTIMIZER_FILE}`, await this.optimizer.exportState());
      if (this.model.injected.size === 0 && params.length === this.model.params.size) {
        await saveModelCheckpoint(tmp, this.model.config, trainable);
      } else {
        await writeFileAtomic(
          `${tmp}/${HF_CONFIG_FILE}`,
          JSON.stringify(this.model.configJson(), null, 2) + "\n",
        );
      }
      for (const [name, text] of Object.entries(this.#checkpointFiles)) {
        await writeFileAtomic(`${tmp}/${name}`, text);
      }
      const sizes: Record<string, number> = {};
      for (const e of await files().readDir(tmp)) {
        if (e.isFile) sizes[e.name] = (await files().stat(`${tmp}/${e.name}`))?.size ?? -1;
      }
      const state: TrainerState = {
        step,
        losses: this.#losses.map((l) => (Number.isFinite(l) ? l : null)) as number[],
        evalLosses: this.#evalLosses,
        options: this.options,
        files: sizes,
      };
      // The state goes last: a folder with a readable state is a finished one.
      await writeFileAtomic(`${tmp}/${STATE_FILE}`, JSON.stringify(state, null, 2) + "\n");
      const check = await inspectCheckpoint(tmp);
      if (!("step" in check) || check.step !== step) {
        throw new Error(
          `Cannot save a checkpoint: ${tmp} did not verify after writing (${
            "problem" in check ? check.problem : `step ${check.step}, expected ${step}`
          })`,
        );
      }
      await stage("verified");
      // POSIX cannot swap two folders in one step: the previous checkpoint is renamed aside first,
      // and while neither name holds it, the verified temporary folder is the one resume takes.
      await removeIfPresent(old);
      try {
        await files().rename(final, old);
      } catch (e) {
        if (!files().isNotFound(e)) throw e;
      }
      moved = true;
      await stage("moved");
      await files().rename(tmp, final);
      await stage("renamed");
    } catch (e) {
      if (!moved) await removeIfPresent(tmp);
      throw e;
    }
    // The new checkpoint is in place: the previous one and what interrupted saves left can go.
    for (const name of await checkpointFolders(outDir)) {
      if (name !== CHECKPOINT_DIR) await removeIfPresent(`${outDir}/${name}`);
    }
    this.#lastCheckpoint = final;
    return final;
  }

  /**
   * Finds the last complete checkpoint in `outDir` after a process was stopped at any moment, even
   * inside {@linkcode Trainer.saveCheckpoint}: `checkpoint/`, or a verified `.checkpoint.*`
   * temporary folder (newer than it), or `.checkpoint.old` (older). The one found is renamed to
   * `outDir/checkpoint` and the other checkpoint folders are removed (unfinished temporary ones
   * included). Returns undefined when there is none; throws, removing nothing, when the only
   * checkpoint there is incomplete.
   *
   * @example
   * ```ts
   * import { Trainer } from "../mod.ts";
   * const dir = await Deno.makeTempDir();
   * await Deno.mkdir(`${dir}/.checkpoint.x1y2`); // a save stopped just after it began
   * if ((await Trainer.recoverCheckpoint(dir)) !== undefined) throw new Error("nothing to resume");
   * for await (const e of Deno.readDir(dir)) throw new Error(`${e.name} left behind`);
   * await Deno.remove(dir);
   * ```
   */
  static async recoverCheckpoint(
    outDir: string,
  ): Promise<{ path: string; step: number; from: string } | undefined> {
    const names = await checkpointFolders(outDir);
    // Most recent first: a verified temporary folder exists only between its verification and its
    // rename into place, when it is newer than checkpoint/, which is newer than .checkpoint.old.
    const rank = (n: string) => n === CHECKPOINT_DIR ? 1 : n === OLD_CHECKPOINT_DIR ? 2 : 0;
    const found = await Promise.all(
      names.map(async (name) => ({ name, ...(await inspectCheckpoint(`${outDir}/${name}`)) })),
    );
    const complete = found.filter((f): f is { name: string; step: number } => "step" in f)
      .sort((a, b) => rank(a.name) - rank(b.name) || b.step - a.step);
    if (complete.length === 0) {
      const kept = found.filter((f) => rank(f.name) > 0);
      if (kept.length > 0) {
        throw new Error(
          `Cannot resume from ${outDir}: no complete checkpoint; ${
            kept.map((f) => "problem" in f ? f.problem : f.name).join("; ")
          }`,
        );
      }
      for (const name of names) await removeIfPresent(`${outDir}/${name}`);
      return undefined;
    }
    const best = complete[0], final = `${outDir}/${CHECKPOINT_DIR}`;
    if (best.name !== CHECKPOINT_DIR) {
      // checkpoint/ is older or incomplete; stopped halfway through removing it, it is incomplete
      // and the next recovery still ranks `best` first.
      await removeIfPresent(final);
      await files().rename(`${outDir}/${best.name}`, final);
    }
    for (const name of names) {
      if (name !== best.name && name !== CHECKPOINT_DIR) await removeIfPresent(`${outDir}/${name}`);
    }
    return { path: final, step: best.step, from: best.name };
  }

  /**
   * Restores trainable parameters, optimizer moments and the step from a checkpoint folder written
   * by {@linkcode saveCheckpoint}, so that `run()` continues exactly as an uninterrupted run would.
   */
  async resume(dir: string): Promise<void> {
    let state: TrainerState;
    try {
      state = JSON.parse(await files().readText(`${dir}/${STATE_FILE}`));
    } catch (e) {
      throw new Error(`Cannot resume from ${dir}/${STATE_FILE}: ${(e as Error).message}`, {
        cause: e,
      });
    }
    if (!Number.isInteger(state.step) || state.step < 0) {
      throw new Error(`Cannot resume from ${dir}/${STATE_FILE}: field "step" is ${state.step}`);
    }
    if (state.step > this.options.steps) {
      throw new Error(
        `Cannot resume from ${dir}: the checkpoint is at step ${state.step}, past this run's ${this.options.steps} steps`,
      );
    }
    const weights = await readSafetensors(`${dir}/${TRAINABLE_FILE}`);
    for (const p of this.optimizer.params) {
      const t = weights.tensor(p.name);
      if (t.shape.join() !== p.shape.join()) {
        throw new Error(
          `Cannot resume from ${dir}/${TRAINABLE_FILE}: tensor "${p.name}" has shape [${t.shape}], expected [${p.shape}]`,
        );
      }
      p.value.write(t.data);
    }
    const opt = await readSafetensors(`${dir}/${OPTIMIZER_FILE}`);
    this.optimizer.importState(new Map(opt.names().map((n) => [n, opt.tensor(n)])), state.step);
    this.#step = state.step;
    this.#losses = state.losses.map((l) => l ?? NaN);
    this.#evalLosses = state.evalLosses ?? [];
    this.#lastCheckpoint = dir;
  }

  /** Releases the activations, loss log and optimizer state (not the model). */
  release(): void {
    this.#acts.release();
    this.#lossLog.release();
    this.optimizer.release();
  }
}

function checkShape(b: TrainBatch, B: number, T: number): void {
  if (b.batchSize !== B || b.seqLen !== T || b.ids.length !== B * T || b.labels.length !== B * T) {
    throw new RangeError(
      `Cannot train on a batch of (B=${b.batchSize}, T=${b.seqLen}) with ${b.ids.length} ids: every batch must be (B=${B}, T=${T})`,
    );
  }
}

function validate(o: TrainOptions): void {
  const positiveInt = ["steps"] as const;
  for (const k of positiveInt) {
    if (!Number.isInteger(o[k]) || o[k] < 1) {
      throw new RangeError(`Cannot train: option "${k}" must be a positive integer, got ${o[k]}`);
    }
  }
  for (const k of ["warmupSteps", "evalEvery", "checkpointEvery", "evalBatches"] as const) {
    const v = o[k];
    if (v !== undefined && (!Number.isInteger(v) || v < 0)) {
      throw new RangeError(`Cannot train: option "${k}" must be a non-negative integer, got ${v}`);
    }
  }
  for (const k of ["gradAccum", "logEvery"] as const) {
    const v = o[k];
    if (v !== undefined && (!Number.isInteger(v) || v < 1)) {
      throw new RangeError(`Cannot train: option "${k}" must be a positive integer, got ${v}`);
    }
  }
  if (o.gradientCheckpointing !== undefined && typeof o.gradientCheckpointing !== "boolean") {
    throw new RangeError(
      `Cannot train: option "gradientCheckpointing" must be a boolean, got ${o.gradientCheckpointing}`,
    );
  }
  if (!(o.lr > 0 && Number.isFinite(o.lr))) {
    throw new RangeError(`Cannot train: option "lr" must be a positive number, got ${o.lr}`);
  }
}
