/**
 * The main job, shortened for CI: a few steps on a tiny model, checking that every output is
 * written and loads back, that a user's own Hugging Face model and JSONL work, and that an
 * interrupted run resumes.
 */
import assert from "node:assert/strict";
import { loadConfig } from "../../cli/config.ts";
import { runJob } from "../../cli/job.ts";
import {
  GPT,
  gptConfig,
  Gpu,
  lora,
  readLoraConfig,
  readSafetensors,
  saveHFCheckpoint,
} from "../../mod.ts";

const TINY = [
  "--model.path=",
  "--model.preset=tiny",
  "--steps=6",
  "--schedule.batch_size=4",
  "--data.train_size=16",
  "--data.dev_size=4",
  "--data.test_size=3",
  "--data.max_length=64",
  "--data.truncation=truncate",
  "--eval.every=3",
  "--eval.batches=1",
  "--output.checkpoint_every=3",
];

Deno.test("runJob() writes the adapter, metrics, report and plots, and the adapter loads back", async () => {
  const out = await Deno.makeTempDir();
  try {
    const c = await loadConfig(undefined, [...TINY, `--out=${out}`, "--name=ci"]);
    const job = await runJob(c, { log: () => {}, progress: false });
    const dir = `${out}/ci`;
    for (
      const f of [
        "metrics.json",
        "report.md",
        "loss.svg",
        "scores.svg",
        "config.json",
        "adapter/adapter_config.json",
      ]
    ) {
      assert.ok((await Deno.stat(`${dir}/${f}`)).size > 0, `${f} written`);
    }
    const metrics = JSON.parse(await Deno.readTextFile(`${dir}/metrics.json`));
    assert.equal(metrics.tasks.length, 8, "5 trained and 3 held-out tasks scored");
    assert.equal(metrics.losses.length, 6);
    assert.ok(metrics.losses.every(Number.isFinite));
    assert.ok(job.parameters.trainable < job.parameters.total);
    const report = await Deno.readTextFile(`${dir}/report.md`);
    assert.match(report, /\| summarise \| trained \| rougeL \|/);
    assert.match(
      report,
      /Perplexity of general text \(forgetting when it rises\): \d+\.\d{3} → \d+\.\d{3}/,
    );
    assert.ok(
      Number.isFinite(metrics.generalPerplexity.before) &&
        Number.isFinite(metrics.generalPerplexity.after),
    );
    assert.match(await Deno.readTextFile(`${dir}/loss.svg`), /^<svg /);
    // The adapter is a PEFT-layout LoRA that loads into the base model.
    const cfg = await readLoraConfig(`${dir}/adapter`);
    assert.equal(cfg.r, 16);
    const st = await readSafetensors(`${dir}/adapter/adapter_model.safetensors`);
    assert.ok(st.names().includes("base_model.model.transformer.h.0.attn.c_attn.lora_A.weight"));
    const model = await GPT.create(await Gpu.get(), gptConfig("tiny"), {
      seed: 0,
      trainable: false,
    });
    const inst = await lora.apply(model, cfg, 1);
    await inst.load(`${dir}/adapter`);
    model.release();
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("runJob() trains a user's own Hugging Face model on their JSONL", async () => {
  const out = await Deno.makeTempDir();
  try {
    const cfg = gptConfig("tiny", { n_layer: 1 });
    const model = await GPT.create(await Gpu.get(), cfg, { seed: 3 });
    await saveHFCheckpoint(`${out}/model`, cfg, await model.exportWeights());
    model.release();
    const lines = Array.from(
      { length: 40 },
      (_, i) => JSON.stringify({ prompt: `Q${i}: say hi\nA:`, completion: " hi" }),
    );
    await Deno.writeTextFile(`${out}/my.jsonl`, lines.join("\n") + "\n");
    const c = await loadConfig(undefined, [
      ...TINY,
      `--model=${out}/model`,
      `--data=${out}/my.jsonl`,
      `--out=${out}/runs`,
      "--name=mine",
      "--peft.method=bitfit",
      "--lr=0.01",
    ]);
    const job = await runJob(c, { log: () => {}, progress: false });
    assert.deepEqual(job.tasks.map((t) => t.task), ["custom"]);
    assert.ok(job.losses[5] < job.losses[0], `loss ${job.losses[0]} → ${job.losses[5]}`);
    assert.ok((await Deno.stat(`${out}/runs/mine/adapter/trainable.safetensors`)).size > 0);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("an interrupted run resumes from its last checkpoint with --resume", async () => {
  const out = await Deno.makeTempDir();
  try {
    const overrides = [...TINY, `--out=${out}`, "--name=r"];
    const full = await runJob(await loadConfig(undefined, [...overrides, "--name=whole"]), {
      log: () => {},
      progress: false,
    });
    // Simulate a crash after the step-3 checkpoint: the log hook throws on the progress line of step 3.
    const c = await loadConfig(undefined, overrides);
    await assert.rejects(
      runJob(c, {
        log: () => {},
        progress: false,
        onProgress: (step) => {
          if (step === 3) throw new Error("killed");
        },
      }),
      /killed/,
    );
    const state = JSON.parse(await Deno.readTextFile(`${out}/r/checkpoint/trainer_state.json`));
    assert.equal(state.step, 3);
    const lines: string[] = [];
    const resumed = await runJob(c, { resume: true, log: (l) => lines.push(l), progress: false });
    assert.ok(lines.some((l) => /resumed from .* at step 3/.test(l)), lines.join("\n"));
    assert.deepEqual(resumed.losses, full.losses, "same losses as the uninterrupted run");
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("runJob() passes schedule.gradient_checkpointing to the trainer: same losses, less activation memory", async () => {
  const out = await Deno.makeTempDir();
  try {
    const run = async (on: boolean) => {
      const c = await loadConfig(undefined, [
        ...TINY,
        "--steps=3",
        "--eval.every=0",
        "--data.test_size=1",
        `--schedule.gradient_checkpointing=${on}`,
        `--out=${out}`,
        `--name=ckpt-${on}`,
      ]);
      return await runJob(c, { log: () => {}, progress: false });
    };
    const [off, on] = [await run(false), await run(true)];
    const losses = async (name: string) =>
      JSON.parse(await Deno.readTextFile(`${out}/${name}/metrics.json`)).losses;
    assert.deepEqual(await losses("ckpt-true"), await losses("ckpt-false"));
    assert.ok(
      on.memory.activations < off.memory.activations,
      `activations ${on.memory.activations} < ${off.memory.activations} bytes`,
    );
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
