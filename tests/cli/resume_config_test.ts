/**
 * `--resume` with a changed config: the job compares the run's stored config.json with the new
 * config and refuses, key by key, any difference not explicitly allowed; config.json is replaced
 * only once the resume is accepted and restored.
 */
import assert from "node:assert/strict";
import { DEFAULT_CONFIG, loadConfig, type RunConfig } from "../../cli/config.ts";
import { configDifferences, runJob } from "../../cli/job.ts";

const TINY = [
  "--model.path=",
  "--model.preset=tiny",
  "--steps=4",
  "--lr=0.003",
  "--schedule.batch_size=2",
  "--data.tasks=[uppercase]",
  "--data.held_out=[]",
  "--data.train_size=8",
  "--data.dev_size=2",
  "--data.test_size=1",
  "--data.max_length=32",
  "--data.truncation=truncate",
  "--eval.every=0",
  "--output.checkpoint_every=2",
  "--name=r",
];

Deno.test("configDifferences() lists changed, added and removed keys by full name, not the run's location", () => {
  const stored = JSON.parse(JSON.stringify(DEFAULT_CONFIG));
  const now: RunConfig = structuredClone(DEFAULT_CONFIG);
  now.name = "moved";
  now.output.dir = "elsewhere";
  now.schedule.steps = 8;
  now.data.tasks = ["uppercase"];
  now.peft = { method: "lora", r: 16, lora_alpha: 32, lora_dropout: 0.1 };
  assert.deepEqual(configDifferences(stored, now), [
    { key: "data.tasks", stored: DEFAULT_CONFIG.data.tasks, now: ["uppercase"] },
    { key: "peft.lora_dropout", stored: undefined, now: 0.1 },
    { key: "peft.target_modules", stored: ["all-linear"], now: undefined },
    { key: "schedule.steps", stored: DEFAULT_CONFIG.schedule.steps, now: 8 },
  ]);
  assert.deepEqual(configDifferences(stored, DEFAULT_CONFIG), []);
});

Deno.test("runJob({ resume }) refuses a config that differs from its checkpoint's by key, keeps config.json, and resumes once the keys are allowed", async () => {
  const out = await Deno.makeTempDir();
  try {
    const dir = `${out}/r`, saved = `${dir}/checkpoint/run_config.json`;
    const first = await loadConfig(undefined, [...TINY, `--out=${out}`]);
    // Stopped after the step-2 checkpoint; the base scores are not what is tested.
    const quick = { log: () => {}, progress: false, before: [0], beforePerplexity: 1 };
    const stopAt2 = (step: number) => {
      if (step === 2) throw new Error("stopped");
    };
    await assert.rejects(runJob(first, { ...quick, onProgress: stopAt2 }), /stopped/);
    const stored = await Deno.readTextFile(`${dir}/config.json`);
    assert.equal(await Deno.readTextFile(saved), stored, "the checkpoint carries the config");
    const changed = await loadConfig(undefined, [
      ...TINY,
      `--out=${out}`,
      "--lr=0.002",
      "--steps=6",
    ]);
    const refusal = (keys: string) =>
      `Cannot resume ${dir}: the config differs from the stored ${saved} in ${keys}; ` +
      `pass --resume-allow=optimizer.lr,schedule.steps to accept`;
    await assert.rejects(runJob(changed, { ...quick, resume: true }), {
      message: refusal(
        `"optimizer.lr" (stored 0.003, now 0.002) and "schedule.steps" (stored 4, now 6)`,
      ),
    });
    // Allowing one of two is not enough; the message keeps what was allowed.
    await assert.rejects(runJob(changed, { ...quick, resume: true, resumeAllow: ["lr"] }), {
      message: refusal(`"schedule.steps" (stored 4, now 6)`),
    });
    await assert.rejects(
      runJob(changed, { ...quick, resume: true, resumeAllow: ["lr", "stepz"] }),
      {
        message:
          `Cannot use --resume-allow: "stepz" is not a config key or section (e.g. optimizer.lr, lr, schedule)`,
      },
    );
    assert.equal(await Deno.readTextFile(`${dir}/config.json`), stored, "config.json kept");
    // A fresh run with the new config, stopped inside its first save, rewrote config.json but
    // not the checkpoint: resuming is still checked against what the checkpoint was trained with.
    await assert.rejects(
      runJob(changed, {
        ...quick,
        onCheckpointStage: () => {
          throw new Error("stopped in the save");
        },
      }),
      /stopped in the save/,
    );
    assert.notEqual(await Deno.readTextFile(`${dir}/config.json`), stored);
    await assert.rejects(runJob(changed, { ...quick, resume: true }), {
      message: refusal(
        `"optimizer.lr" (stored 0.003, now 0.002) and "schedule.steps" (stored 4, now 6)`,
      ),
    });
    const state = JSON.parse(await Deno.readTextFile(`${dir}/checkpoint/trainer_state.json`));
    assert.equal(state.step, 2, "the checkpoint kept");
    // Allowed by short name and by section: resumed at step 2 with the new steps and lr.
    const lines: string[] = [];
    const job = await runJob(changed, {
      ...quick,
      resume: true,
      resumeAllow: ["lr", "schedule"],
      log: (l) => lines.push(l),
    });
    assert.ok(
      lines.includes(`resume: "optimizer.lr" changed from 0.003 to 0.002 (allowed)`),
      lines.join("\n"),
    );
    assert.ok(lines.includes(`resumed from ${dir}/checkpoint at step 2`), lines.join("\n"));
    assert.equal(job.losses.length, 6);
    for (const file of [`${dir}/config.json`, saved]) {
      const now = JSON.parse(await Deno.readTextFile(file));
      assert.deepEqual([now.optimizer.lr, now.schedule.steps], [0.002, 6], `${file} replaced`);
    }
    // A checkpoint without its own copy is checked against config.json; without either, refused.
    const statePath = `${dir}/checkpoint/trainer_state.json`;
    const final = JSON.parse(await Deno.readTextFile(statePath));
    delete final.files["run_config.json"];
    await Deno.writeTextFile(statePath, JSON.stringify(final));
    await Deno.remove(saved);
    await Deno.remove(`${dir}/config.json`);
    await assert.rejects(
      runJob(changed, { ...quick, resume: true }),
      new RegExp(
        `^Error: Cannot resume ${dir}: the config its checkpoint was trained with cannot be read from ${dir}/config.json`,
      ),
    );
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
