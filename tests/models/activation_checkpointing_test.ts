import assert from "node:assert/strict";
import { adapters, GPT, type GPTConfig, gptConfig, ia3, lora, prefix, Rng } from "../../mod.ts";
import { gpu } from "../helpers.ts";
import { f32Weights, randomWeights, SMALL } from "./_fixtures.ts";

/** SMALL with three blocks (two of them recomputed) and dropout on the embeddings and branches. */
const CFG: GPTConfig = { ...SMALL, n_layer: 3, resid_pdrop: 0.2, embd_pdrop: 0.1 };
const B = 2, T = 7;

/** Every PEFT method whose forward runs inside the blocks (LoRA with its own dropout too). */
const METHODS: [string, (model: GPT) => Promise<unknown>][] = [
  ["full", () => Promise.resolve()],
  [
    "lora",
    (m) =>
      lora.apply(
        m,
        lora.validate({ r: 2, lora_dropout: 0.3, target_modules: ["c_attn", "c_fc", "c_proj"] }),
        1,
      ),
  ],
  ["adapters", (m) => adapters.apply(m, adapters.validate({ placement: "houlsby" }), 1)],
  ["prefix", (m) => prefix.apply(m, prefix.validate({ num_virtual_tokens: 2 }), 1)],
  ["ia3", (m) => ia3.apply(m, ia3.validate({}), 1)],
];

/** Losses and every gradient of one training forward/backward, with or without checkpointing. */
async function step(model: GPT, checkpoint: boolean, seed: number) {
  const g = model.gpu;
  const rng = new Rng(4);
  const ids = Array.from({ length: B * T }, () => rng.int(CFG.vocab_size));
  const acts = model.activations(B, T, { checkpoint });
  const batch = g.batch();
  model.zeroGrad(batch);
  model.forward(batch, acts, { ids, labels: ids }, { training: true, seed });
  model.backward(batch, acts);
  await batch.submit();
  const [losses] = await g.read([acts.losses]);
  const grads = await model.exportGrads();
  acts.release();
  return { losses, grads };
}

Deno.test("GPT.forward() with checkpointed activations gives bit-identical losses and gradients, with dropout, for full fine-tuning and PEFT methods", async () => {
  const g = await gpu();
  const weights = f32Weights(randomWeights(CFG, 5), CFG);
  for (const [name, apply] of METHODS) {
    const model = await GPT.create(g, CFG, { weights });
    await apply(model);
    // LoRA's B and the adapters' up-projections start at zero, which would hide their branches:
    // give every added parameter random values.
    const rng = new Rng(9);
    for (const p of model.injected.values()) {
      p.value.write(Float32Array.from({ length: p.value.size }, () => 0.3 * rng.normal()));
    }
    const plain = await step(model, false, 77);
    const ckpt = await step(model, true, 77);
    assert.deepEqual(ckpt.losses, plain.losses, `${name}: losses`);
    assert.ok(plain.grads.size > 0, `${name}: something is trained`);
    assert.deepEqual([...ckpt.grads.keys()], [...plain.grads.keys()], `${name}: gradient names`);
    for (const [param, grad] of plain.grads) {
      assert.ok(grad.some((v) => v !== 0), `${name}: ${param} has a nonzero gradient`);
      assert.deepEqual(ckpt.grads.get(param), grad, `${name}: gradient of ${param}`);
    }
    if (name === "full") {
      // The dropout masks matter: another seed gives other losses.
      const other = await step(model, false, 78);
      assert.notDeepEqual(other.losses, plain.losses, "dropout is active");
    }
    model.release();
  }
});

Deno.test("Activations with checkpoint share one set of block intermediates and keep each block's output", async () => {
  const g = await gpu();
  const model = await GPT.create(g, CFG, { seed: 1, trainable: false });
  const acts = model.activations(B, T, { checkpoint: true });
  const plain = model.activations(B, T);
  assert.equal(acts.checkpoint, true);
  assert.equal(plain.checkpoint, false);
  const [a0, a1, a2] = acts.blocks;
  for (const key of Object.keys(a0) as (keyof typeof a0)[]) {
    if (key === "res3") {
      assert.ok(a0.res3 !== a1.res3 && a1.res3 !== a2.res3, "each block keeps its output");
    } else {
      assert.ok(a0[key] === a1[key] && a1[key] === a2[key], `${key} is shared`);
      assert.ok(plain.blocks[0][key] !== plain.blocks[1][key], `${key} is per block without`);
    }
  }
  assert.equal(acts.residualOut, a2.res3);
  acts.release();
  plain.release();
  model.release();
});

Deno.test("a training step with checkpointed activations needs less peak GPU memory: n_layer − 1 blocks of intermediates and three gradient buffers", async () => {
  const g = await gpu();
  const cfg = gptConfig("tiny", { n_layer: 6 });
  const model = await GPT.create(g, cfg, { seed: 1 });
  const Bm = 4, Tm = 32;
  const ids = Array.from({ length: Bm * Tm }, (_, i) => (i * 7) % cfg.vocab_size);
  const peak = async (checkpoint: boolean) => {
    g.trimMemory();
    g.resetPeakMemory();
    const acts = model.activations(Bm, Tm, { checkpoint });
    const batch = g.batch();
    model.zeroGrad(batch);
    model.forward(batch, acts, { ids, labels: ids }, { training: true });
    model.backward(batch, acts);
    await batch.submit();
    const bytes = g.memory.peakReserved;
    // One block's intermediates: what each of the other n_layer − 1 blocks no longer holds.
    const a = acts.blocks[0];
    const perBlock = Object.entries(a).reduce(
      (sum, [key, t]) => sum + (key === "res3" ? 0 : t.size * 4),
      0,
    );
    // Gradient scratch held in dead shared intermediates (dln, datty, dfc).
    const reused = (a.fcProj.size + a.attProj.size + a.fcAct.size) * 4;
    acts.release();
    return { bytes, perBlock, reused };
  };
  const plain = await peak(false), ckpt = await peak(true);
  const expected = (cfg.n_layer - 1) * plain.perBlock + plain.reused;
  assert.ok(
    plain.bytes - ckpt.bytes >= 0.99 * expected,
    `peak ${plain.bytes} B without, ${ckpt.bytes} B with checkpointing: saved ${
      plain.bytes - ckpt.bytes
    } B, expected about ${expected} B`,
  );
  model.release();
});
