/**
 * Checkpoint saves stopped at any moment: every on-disk state a save passes through (captured by
 * copying the run folder at each stage of the save) still holds a complete checkpoint that
 * `Trainer.recoverCheckpoint()` finds, and resuming from it gives the uninterrupted run's losses
 * and weights. Damaged checkpoints are refused by name, never silently replaced by step 0.
 */
import assert from "node:assert/strict";
import { type BatchSource, GPT, Rng, type TrainBatch, Trainer } from "../../mod.ts";
import { gpu } from "../helpers.ts";
import { SMALL } from "../models/_fixtures.ts";

/** A deterministic source of random (B,T) batches. */
function randomSource(B: number, T: number, perEpoch: number, seed: number): BatchSource {
  return {
    batchesPerEpoch: perEpoch,
    batch(epoch: number, index: number): TrainBatch {
      const rng = new Rng(seed * 1000 + epoch * 97 + index);
      const ids = Array.from({ length: B * T }, () => rng.int(SMALL.vocab_size));
      return { ids, labels: ids, batchSize: B, seqLen: T };
    },
  };
}

const OPTIONS = { steps: 4, lr: 5e-3, warmupSteps: 1, logEvery: 2, checkpointEvery: 2, seed: 3 };
const SOURCE = randomSource(2, 5, 3, 9);

async function copyTree(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const e of Deno.readDir(from)) {
    if (e.isDirectory) await copyTree(`${from}/${e.name}`, `${to}/${e.name}`);
    else await Deno.copyFile(`${from}/${e.name}`, `${to}/${e.name}`);
  }
}

async function entries(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

/** Trains OPTIONS from seed-1 weights, optionally into `outDir`; returns losses and weights. */
async function train(
  outDir?: string,
  extra: Parameters<typeof Trainer.create>[3] = {},
  resumeFrom?: string,
) {
  const model = await GPT.create(await gpu(), SMALL, { seed: 1 });
  const trainer = await Trainer.create(model, SOURCE, { ...OPTIONS, outDir }, extra);
  try {
    if (resumeFrom) await trainer.resume(resumeFrom);
    const result = await trainer.run();
    return { losses: result.losses, weights: await model.exportWeights() };
  } finally {
    trainer.release();
    model.release();
  }
}

Deno.test("Trainer.recoverCheckpoint() finds a complete checkpoint at every stage of a save, and resuming from it is exact", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    const whole = await train();
    // Each stage of each save, as a process killed there would leave the folder.
    const snapshots: { step: number; stage: string; dir: string }[] = [];
    await train(`${tmp}/run`, {
      checkpointHook: async (stage, step) => {
        const dir = `${tmp}/at-${step}-${stage}`;
        await copyTree(`${tmp}/run`, dir);
        snapshots.push({ step, stage, dir });
      },
    });
    assert.deepEqual(
      snapshots.map((s) => `${s.step} ${s.stage}`),
      [2, 4].flatMap((n) =>
        ["created", "partial", "verified", "moved", "renamed"].map((s) => `${n} ${s}`)
      ),
    );
    for (const { step, stage, dir } of snapshots) {
      const at = `step ${step}, ${stage}`;
      if (stage === "moved") {
        const names = await entries(dir);
        assert.ok(!names.includes("checkpoint"), `${at}: the swap window has no checkpoint/`);
      }
      const found = await Trainer.recoverCheckpoint(dir);
      // Before verification the new save is unfinished: the previous checkpoint (if any) holds.
      const before = stage === "created" || stage === "partial";
      const expected = before ? step - 2 : step;
      assert.equal(found?.step ?? 0, expected, at);
      assert.deepEqual(
        await entries(dir),
        expected > 0 ? ["checkpoint"] : [],
        `${at}: only checkpoint/ is left`,
      );
      if (expected > 0) {
        assert.equal(found!.path, `${dir}/checkpoint`);
        const state = JSON.parse(await Deno.readTextFile(`${dir}/checkpoint/trainer_state.json`));
        assert.equal(state.step, expected, at);
      }
    }
    // Resume from the swap window of the step-2 save, where the old code started over.
    const resumed = await train(`${tmp}/at-2-moved`, {}, `${tmp}/at-2-moved/checkpoint`);
    assert.deepEqual(resumed.losses, whole.losses, "same losses as the uninterrupted run");
    for (const [name, t] of whole.weights) {
      assert.deepEqual(resumed.weights.get(name)!.data, t.data, `weights of ${name}`);
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("Trainer.recoverCheckpoint() refuses a damaged checkpoint by file name and takes a complete one when there is one", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    const run = `${tmp}/run`;
    await train(run);
    const good = `${tmp}/good`;
    await copyTree(`${run}/checkpoint`, good);
    // Truncated weights: refused, naming the file, and nothing is removed.
    const weights = `${run}/checkpoint/trainable.safetensors`;
    const bytes = await Deno.readFile(weights);
    await Deno.writeFile(weights, bytes.subarray(0, bytes.length - 4));
    await Deno.mkdir(`${run}/.checkpoint.empty`);
    await assert.rejects(Trainer.recoverCheckpoint(run), (e: Error) => {
      assert.match(e.message, /^Cannot resume from .*: no complete checkpoint; /);
      assert.ok(e.message.includes(weights), e.message);
      return true;
    });
    assert.deepEqual(await entries(run), [".checkpoint.empty", "checkpoint"]);
    // With a complete copy beside it (as .checkpoint.old), that copy is taken.
    await copyTree(good, `${run}/.checkpoint.old`);
    const found = await Trainer.recoverCheckpoint(run);
    assert.deepEqual(found, { path: `${run}/checkpoint`, step: 4, from: ".checkpoint.old" });
    assert.deepEqual(await entries(run), ["checkpoint"]);
    assert.deepEqual(await Deno.readFile(weights), bytes);
    // A missing file listed in the state makes a folder incomplete.
    await Deno.remove(`${run}/checkpoint/config.json`);
    await assert.rejects(
      Trainer.recoverCheckpoint(run),
      /checkpoint\/config\.json is missing, the state lists \d+/,
    );
    // A checkpoint written before the state listed its files is still taken.
    await Deno.remove(`${run}/checkpoint`, { recursive: true });
    await copyTree(good, `${run}/checkpoint`);
    const statePath = `${run}/checkpoint/trainer_state.json`;
    const { files: _files, ...older } = JSON.parse(await Deno.readTextFile(statePath));
    await Deno.writeTextFile(statePath, JSON.stringify(older));
    assert.equal((await Trainer.recoverCheckpoint(run))?.step, 4);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("Trainer.resume() names the step when the checkpoint is past the run's steps", async () => {
  const tmp = await Deno.makeTempDir();
  const model = await GPT.create(await gpu(), SMALL, { seed: 1 });
  try {
    await train(`${tmp}/run`);
    const trainer = await Trainer.create(model, SOURCE, { ...OPTIONS, steps: 3 });
    await assert.rejects(
      trainer.resume(`${tmp}/run/checkpoint`),
      new RegExp(
        `^Error: Cannot resume from ${tmp}/run/checkpoint: the checkpoint is at step 4, past this run's 3 steps$`,
      ),
    );
    trainer.release();
  } finally {
    model.release();
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("Trainer writes checkpointFiles into every checkpoint, listed in its state, and refuses names it uses itself", async () => {
  const tmp = await Deno.makeTempDir();
  const model = await GPT.create(await gpu(), SMALL, { seed: 1 });
  try {
    await train(`${tmp}/run`, { checkpointFiles: { "run_config.json": '{"lr":1}\n' } });
    const dir = `${tmp}/run/checkpoint`;
    assert.equal(await Deno.readTextFile(`${dir}/run_config.json`), '{"lr":1}\n');
    const state = JSON.parse(await Deno.readTextFile(`${dir}/trainer_state.json`));
    assert.equal(state.files["run_config.json"], 9);
    for (const name of ["trainer_state.json", "config.json", "../x", ""]) {
      await assert.rejects(
        Trainer.create(model, SOURCE, OPTIONS, { checkpointFiles: { [name]: "" } }),
        {
          message: new RegExp(
            `^Cannot create a trainer: checkpoint file "${
              name.replace(/\./g, "\\.")
            }" must be a plain file name`,
          ),
        },
      );
    }
  } finally {
    model.release();
    await Deno.remove(tmp, { recursive: true });
  }
});
