import assert from "node:assert/strict";
import { GPT, type GPTConfig, Llama, llamaConfig, Rng } from "../../mod.ts";
import { FlashAttention } from "../../kernels/flash_attention.ts";
import { assertClose, gpu } from "../helpers.ts";
import { f32Weights, randomWeights, SMALL } from "../models/_fixtures.ts";

// The models' hook (models/attention.ts) runs the fused kernels on hardware adapters; here they
// are switched on for lavapipe and every loss and parameter gradient of one training step is
// compared with the same step on kernels/attention.ts (itself checked against the float64
// reference in tests/models/). Both paths compute the same sums in f32 in different orders; the
// gradients pass through two layers and the head, which can amplify the kernel-level 2e-5
// difference a few times; a masking or indexing error is off by O(0.1).
const TOL = { rtol: 1e-4, atol: 1e-5 };

type Model = GPT | Llama;

/** Losses, every gradient and the kernels that ran, for one training forward/backward. */
async function step(model: Model, flash: boolean, B: number, T: number, vocab: number) {
  const g = model.gpu;
  const f = FlashAttention.for(g);
  const was = f.enabled;
  f.enabled = flash;
  try {
    const rng = new Rng(4);
    const ids = Array.from({ length: B * T }, () => rng.int(vocab));
    const acts = model.activations(B, T);
    const batch = g.batch();
    model.zeroGrad(batch);
    model.forward(batch, acts, { ids, labels: ids }, { training: true, seed: 5 });
    model.backward(batch, acts);
    const kernels = [...batch.kernels];
    await batch.submit();
    const [losses] = await g.read([acts.losses]);
    const grads = await model.exportGrads();
    acts.release();
    return { losses, grads, kernels };
  } finally {
    f.enabled = was;
  }
}

async function compare(
  model: Model,
  B: number,
  T: number,
  vocab: number,
  hs: number,
  what: string,
) {
  await FlashAttention.for(model.gpu).prepare(hs);
  const plain = await step(model, false, B, T, vocab);
  const fused = await step(model, true, B, T, vocab);
  assert.ok(!plain.kernels.some((k) => k.startsWith("flash_attention")), `${what}: plain path`);
  for (
    const k of [
      "flash_attention.forward",
      "flash_attention.backward_query",
      "flash_attention.backward_key",
    ]
  ) {
    assert.ok(fused.kernels.some((n) => n.startsWith(k)), `${what}: ${k} ran`);
  }
  assertClose(fused.losses, plain.losses, TOL, `${what}: losses`);
  assert.deepEqual([...fused.grads.keys()], [...plain.grads.keys()]);
  for (const [name, grad] of plain.grads) {
    assertClose(fused.grads.get(name)!, grad, TOL, `${what}: ${name}`);
  }
}

Deno.test("GPT trains the same with the fused attention as with kernels/attention.ts", async () => {
  const g = await gpu();
  const cfg: GPTConfig = { ...SMALL, n_positions: 80 };
  const model = await GPT.create(g, cfg, { weights: f32Weights(randomWeights(cfg, 5), cfg) });
  try {
    // T = 71 spans two 64-row query blocks.
    await compare(model, 2, 71, cfg.vocab_size, cfg.n_embd / cfg.n_head, "GPT");
  } finally {
    model.release();
  }
});

Deno.test("Llama (grouped-query heads) trains the same with the fused attention", async () => {
  const g = await gpu();
  const cfg = llamaConfig("llama-tiny");
  const model = await Llama.create(g, cfg, { seed: 3 });
  try {
    await compare(model, 2, 9, cfg.vocab_size, cfg.head_dim, "Llama");
  } finally {
    model.release();
  }
});

Deno.test("The fused attention is not used when attention dropout is on", async () => {
  const g = await gpu();
  const cfg: GPTConfig = { ...SMALL, attn_pdrop: 0.1 };
  const model = await GPT.create(g, cfg, { seed: 2 });
  try {
    await FlashAttention.for(g).prepare(cfg.n_embd / cfg.n_head);
    const run = await step(model, true, 1, 5, cfg.vocab_size);
    assert.ok(
      !run.kernels.some((k) => k.startsWith("flash_attention")),
      "dropout keeps the plain path",
    );
    assert.ok(run.kernels.some((k) => k.includes("dropout")), "attention dropout ran");
  } finally {
    model.release();
  }
});
