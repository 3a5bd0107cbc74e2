import assert from "node:assert/strict";
import {
  type BatchSource,
  GPT,
  type GPTConfig,
  gptConfig,
  learningRate,
  lora,
  prompt,
  Rng,
  type TrainBatch,
  Trainer,
} from "../../mod.ts";
import { gpt2ParameterShapes } from "../../models/checkpoint.ts";
import { gpu } from "../helpers.ts";
import { f32Weights, isKeyBias, randomWeights, SMALL } from "../models/_fixtures.ts";
import { adamwStep } from "../ref/adamw.ts";
import { gpt2Ref } from "../ref/gpt2.ts";
import { gradNorm } from "../ref/gradnorm.ts";
import { gpt2PeftRef } from "../ref/peft.ts";

/** A deterministic source of random (B,T) batches: batch (e, i) depends only on (seed, e, i). */
function randomSource(
  cfg: GPTConfig,
  B: number,
  T: number,
  perEpoch: number,
  seed: number,
): BatchSource {
  return {
    batchesPerEpoch: perEpoch,
    batch(epoch: number, index: number): TrainBatch {
      const rng = new Rng(seed * 1000 + epoch * 97 + index);
      const ids = Array.from({ length: B * T }, () => rng.int(cfg.vocab_size));
      const labels = ids.map((id, i) => (i % T) < 2 ? -100 : id);
      return { ids, labels, batchSize: B, seqLen: T };
    },
  };
}

Deno.test("Trainer steps match the float64 reference (AdamW, weight decay on matrices only, clipping, warmup+cosine)", async () => {
  const g = await gpu();
  const cfg = SMALL, B = 2, T = 6, steps = 4;
  const w = randomWeights(cfg, 21);
  const source = randomSource(cfg, B, T, 3, 4);
  const opts = {
    steps,
    lr: 1e-2,
    warmupSteps: 2,
    logEvery: 1,
    optimizer: { gradClip: 0.5, weightDecay: 0.1 },
  };
  const model = await GPT.create(g, cfg, { weights: f32Weights(w, cfg) });
  const trainer = await Trainer.create(model, source, opts);
  const result = await trainer.run();

  // Reference: the same steps in float64.
  const ref = new Map([...w].map(([k, v]) => [k, v.slice()]));
  const m = new Map([...w].map(([k, v]) => [k, new Float64Array(v.length)]));
  const v2 = new Map([...w].map(([k, v]) => [k, new Float64Array(v.length)]));
  const refLosses: number[] = [];
  for (let s = 1; s <= steps; s++) {
    const b = source.batch(Math.floor((s - 1) / 3), (s - 1) % 3);
    const r = gpt2Ref(cfg, ref, b.ids, b.labels, B, T, true);
    refLosses.push(r.loss);
    const [, clip] = gradNorm([...r.grads!.values()].map((grad) => ({ grad })), 0.5);
    const lr = learningRate({ lr: 1e-2, warmupSteps: 2, totalSteps: steps }, s);
    for (const [name, p] of ref) {
      const decay = name.includes(".weight") && gpt2ParameterShapes(cfg).get(name)!.length === 2 &&
        !name.startsWith("wte") && !name.startsWith("wpe");
      adamwStep(p, r.grads!.get(name)!, m.get(name)!, v2.get(name)!, null, null, clip, {
        lr,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weightDecay: decay ? 0.1 : 0,
        step: s,
      });
    }
  }
  // Losses agree to f32 accuracy (~1e-6 relative per step, growing slowly with the steps).
  for (let s = 0; s < steps; s++) {
    assert.ok(
      Math.abs(result.losses[s] - refLosses[s]) < 1e-4 * refLosses[s],
      `step ${s + 1}: ${result.losses[s]} vs ${refLosses[s]}`,
    );
  }
  const final = await model.exportWeights();
  // Adam normalises each update to about lr, so weights differ from the reference by ~lr × (relative
  // gradient error); 1e-4 absolute after 4 steps of lr ≤ 1e-2 leaves room for f32 rounding only.
  for (const [name, p] of ref) {
    const got = final.get(name)!.data;
    let max = 0;
    for (let i = 0; i < p.length; i++) {
      if (!isKeyBias(cfg, name, i)) max = Math.max(max, Math.abs(got[i] - p[i]));
    }
    assert.ok(max < 1e-4, `${name}: max weight difference ${max}`);
  }
  trainer.release();
  model.release();
});

Deno.test("Trainer overfits one small batch: the loss falls to near zero", async () => {
  const g = await gpu();
  const cfg = gptConfig("tiny");
  const model = await GPT.create(g, cfg, { seed: 3 });
  const text = new TextEncoder().encode("whet fine-tunes small models on WebGPU!!");
  const T = text.length, ids = Array.from(text);
  const source: BatchSource = {
    batchesPerEpoch: 1,
    batch: () => ({ ids, labels: ids, batchSize: 1, seqLen: T }),
  };
  const trainer = await Trainer.create(model, source, {
    steps: 150,
    lr: 1e-2,
    warmupSteps: 10,
    logEvery: 50,
    optimizer: { weightDecay: 0 },
  });
  const result = await trainer.run();
  assert.ok(result.losses[0] > 4, `initial loss ${result.losses[0]} should be near ln 256 = 5.5`);
  assert.ok(result.losses[149] < 0.05, `final loss ${result.losses[149]}`);
  trainer.release();
  model.release();
});

Deno.test("Trainer with gradient accumulation equals one larger batch", async () => {
  const g = await gpu();
  const cfg = SMALL, T = 6;
  const w = f32Weights(randomWeights(cfg, 2), cfg);
  const big = randomSource(cfg, 2, T, 1, 9);
  const halves: BatchSource = {
    batchesPerEpoch: 2,
    batch: (_e, i) => {
      const b = big.batch(0, 0);
      const sl = (a: ArrayLike<number>) => Array.from(a).slice(i * T, (i + 1) * T);
      return { ids: sl(b.ids), labels: sl(b.labels), batchSize: 1, seqLen: T };
    },
  };
  const run = async (source: BatchSource, gradAccum: number) => {
    const model = await GPT.create(g, cfg, { weights: w });
    const trainer = await Trainer.create(model, source, {
      steps: 1,
      lr: 1e-2,
      gradAccum,
      logEvery: 1,
    });
    const r = await trainer.run();
    const weights = await model.exportWeights();
    trainer.release();
    model.release();
    return { loss: r.losses[0], weights };
  };
  const a = await run(big, 1), b = await run(halves, 2);
  assert.ok(Math.abs(a.loss - b.loss) < 1e-6 * a.loss, `${a.loss} vs ${b.loss}`);
  for (const [name, t] of a.weights) {
    const u = b.weights.get(name)!.data;
    for (let i = 0; i < u.length; i++) {
      if (!isKeyBias(cfg, name, i)) {
        assert.ok(Math.abs(u[i] - t.data[i]) < 1e-6, `${name}[${i}]: ${u[i]} vs ${t.data[i]}`);
      }
    }
  }
});

Deno.test("Trainer.resume() continues exactly: same weights and losses as an uninterrupted run", async () => {
  const g = await gpu();
  const cfg = SMALL;
  const w = f32Weights(randomWeights(cfg, 7), cfg);
  const source = randomSource(cfg, 2, 5, 2, 1);
  const dir = await Deno.makeTempDir();
  try {
    const opts = { steps: 6, lr: 5e-3, warmupSteps: 2, logEvery: 3, checkpointEvery: 3, seed: 5 };
    // Uninterrupted.
    const m1 = await GPT.create(g, cfg, { weights: w });
    const t1 = await Trainer.create(m1, source, opts);
    const r1 = await t1.run();
    const w1 = await m1.exportWeights();
    t1.release();
    m1.release();
    // Interrupted after the step-3 checkpoint (a crash right after it was written).
    const m2 = await GPT.create(g, cfg, { weights: w });
    const t2 = await Trainer.create(m2, source, { ...opts, outDir: dir });
    await assert.rejects(
      t2.run((p) => {
        if (p.step === 3) throw new Error("simulated crash");
      }),
      /simulated crash/,
    );
    t2.release();
    m2.release();
    // Resumed in a fresh process-like setup: base weights, then the checkpoint.
    const m3 = await GPT.create(g, cfg, { weights: w });
    const t3 = await Trainer.create(m3, source, { ...opts, outDir: dir });
    await t3.resume(`${dir}/checkpoint`);
    assert.equal(t3.step, 3);
    const r3 = await t3.run();
    const w3 = await m3.exportWeights();
    assert.deepEqual(
      r3.losses.slice(3),
      r1.losses.slice(3),
      "losses after the resume are identical",
    );
    assert.deepEqual(
      r3.losses.slice(0, 3),
      r1.losses.slice(0, 3),
      "losses before it come from the checkpoint",
    );
    for (const [name, t] of w1) {
      assert.deepEqual(w3.get(name)!.data, t.data, `weights of ${name} are identical`);
    }
    t3.release();
    m3.release();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Trainer stops with a clear error when the loss becomes NaN and keeps the last good checkpoint", async () => {
  const g = await gpu();
  const cfg = SMALL;
  const model = await GPT.create(g, cfg, { seed: 1 });
  const dir = await Deno.makeTempDir();
  try {
    // lr 1e30 moves every weight by ~1e30 in the first step: the next forward overflows.
    const trainer = await Trainer.create(model, randomSource(cfg, 1, 5, 1, 2), {
      steps: 5,
      lr: 1e30,
      logEvery: 1,
      checkpointEvery: 1,
      outDir: dir,
      optimizer: { gradClip: 0 },
    });
    await assert.rejects(trainer.run(), (e: unknown) => {
      assert.match(
        (e as Error).message,
        /Cannot (continue training: the loss became NaN at step 2|save a checkpoint: parameter)/,
      );
      return true;
    });
    const state = JSON.parse(await Deno.readTextFile(`${dir}/checkpoint/trainer_state.json`));
    assert.equal(state.step, 1, "the step-1 checkpoint is still there");
    trainer.release();
  } finally {
    model.release();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Trainer with gradientCheckpointing gives the same losses and weights as without (dropout on, LoRA and full)", async () => {
  const g = await gpu();
  const cfg: GPTConfig = { ...SMALL, n_layer: 3, resid_pdrop: 0.2, embd_pdrop: 0.1 };
  const w = f32Weights(randomWeights(cfg, 3), cfg);
  const source = randomSource(cfg, 2, 6, 2, 5);
  const run = async (method: "full" | "lora", gradientCheckpointing: boolean) => {
    const model = await GPT.create(g, cfg, { weights: w });
    const params = method === "lora"
      ? (await lora.apply(model, lora.validate({ r: 2, lora_dropout: 0.2 }), 1)).trainable()
      : undefined;
    const trainer = await Trainer.create(model, source, {
      steps: 3,
      lr: 1e-2,
      gradAccum: 2,
      logEvery: 1,
      seed: 7,
      gradientCheckpointing,
    }, { params });
    g.trimMemory();
    const r = await trainer.run();
    const values = await g.read(model.parameters().map((p) => p.value));
    trainer.release();
    model.release();
    return { losses: r.losses, values, peakBytes: r.peakBytes };
  };
  for (const method of ["full", "lora"] as const) {
    const plain = await run(method, false), ckpt = await run(method, true);
    assert.ok(plain.losses.every(Number.isFinite), `${method}: ${plain.losses}`);
    assert.deepEqual(ckpt.losses, plain.losses, `${method}: losses`);
    assert.deepEqual(ckpt.values, plain.values, `${method}: parameters after 3 steps`);
    // The option reaches the activations: two blocks' intermediates are no longer held.
    assert.ok(
      ckpt.peakBytes < plain.peakBytes,
      `${method}: peak ${ckpt.peakBytes} B with checkpointing, ${plain.peakBytes} B without`,
    );
  }
  const model = await GPT.create(g, cfg, { weights: w });
  await assert.rejects(
    Trainer.create(model, source, {
      steps: 1,
      lr: 1e-2,
      gradientCheckpointing: "yes" as unknown as boolean,
    }),
    /option "gradientCheckpointing" must be a boolean/,
  );
  model.release();
});

Deno.test("Trainer under prompt tuning scores label 0 from the last virtual token: its loss and loss scale match the float64 reference", async () => {
  const g = await gpu();
  const cfg = SMALL, B = 2, T = 5, n = 3;
  const w = randomWeights(cfg, 13);
  const model = await GPT.create(g, cfg, { weights: f32Weights(w, cfg) });
  const inst = await prompt.apply(model, prompt.validate({ num_virtual_tokens: n }), 4);
  const [P] = await g.read([inst.trainable()[0].value]);
  const rng = new Rng(8);
  const ids = Array.from({ length: B * T }, () => rng.int(cfg.vocab_size));
  // Label 0 of each row is kept (it is what the last virtual position predicts); one is masked.
  const labels = ids.map((id, i) => (i % T) === 2 ? -100 : id);
  const source: BatchSource = {
    batchesPerEpoch: 1,
    batch: () => ({ ids, labels, batchSize: B, seqLen: T }),
  };
  const trainer = await Trainer.create(model, source, { steps: 1, lr: 1e-3, logEvery: 1 });
  const result = await trainer.run();
  const ref = gpt2PeftRef(cfg, w, ids, labels, B, T, { n, prompt: Float64Array.from(P) });
  // The step's loss is the mean over all 2·(5 − 1) = 8 scored labels (label 0 included): a count
  // that left label 0 out would divide by 6 and log 4/3 of it. f32 through two blocks: 1e-5.
  assert.ok(
    Math.abs(result.losses[0] - ref.loss) < 1e-5 * ref.loss,
    `loss ${result.losses[0]} vs reference ${ref.loss}`,
  );
  assert.equal(model.countTargets(labels, T), 8);
  trainer.release();
  model.release();
});
