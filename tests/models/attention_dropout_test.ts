import assert from "node:assert/strict";
import {
  type Decoder,
  generate,
  GPT,
  type GPTConfig,
  Llama,
  type LlamaConfig,
  llamaConfig,
  Rng,
} from "../../mod.ts";
import { assertClose, gpu } from "../helpers.ts";
import type { LayerDropout } from "../ref/attention.ts";
import { gpt2Ref, type RefResult } from "../ref/gpt2.ts";
import { llamaRef } from "../ref/llama.ts";
import { llamaF32, llamaWeights } from "../peft/_llama.ts";
import { f32Weights, randomWeights, SMALL } from "./_fixtures.ts";

// Attention-probability dropout in the models (GPT-2's attn_pdrop, the Llama family's
// attention_dropout): active in training only, with the masks the float64 reference draws from
// the same seeds. The model runs the attention variant the adapter picks (gemm on lavapipe);
// tests/kernels/attention_test.ts checks every variant's dropout against the reference.

const P = 0.3, SEED = 77, B = 2, T = 7;

/**
 * Block l's attention mask seed for a pass with `seed`: the pass's seed + (−1 − l)·φ (φ =
 * 0x9e3779b9), a stream apart from the embedding's (the seed) and the residual branches'
 * (+ (2l + 1)·φ, + (2l + 2)·φ). Restated here so that a change to the scheme fails this test.
 */
function layerDropout(p: number, seed: number): LayerDropout {
  return { p, seed: (l) => (seed - Math.imul(l + 1, 0x9e3779b9)) >>> 0 };
}

/** GPT-2 SMALL with attention dropout only (the reference has no residual or embedding dropout). */
const GPT_CFG: GPTConfig = { ...SMALL, attn_pdrop: P, resid_pdrop: 0, embd_pdrop: 0 };
/** Grouped-query heads (4 on 2 kv heads), untied head. */
const LLAMA_CFG: LlamaConfig = llamaConfig("llama-tiny", { attention_dropout: P });

interface Family {
  name: string;
  /** The model with attention dropout `p` and weights from `seed`. */
  create(p: number, seed: number): Promise<Decoder>;
  /** The float64 reference of those weights, with attention dropout `drop`. */
  ref(seed: number, ids: number[], labels: number[], drop?: LayerDropout): RefResult;
  vocab: number;
}

const FAMILIES: Family[] = [
  {
    name: "GPT-2 attn_pdrop",
    create: async (p, seed) =>
      await GPT.create(await gpu(), { ...GPT_CFG, attn_pdrop: p }, {
        weights: f32Weights(randomWeights(GPT_CFG, seed), GPT_CFG),
      }),
    ref: (seed, ids, labels, drop) =>
      gpt2Ref(GPT_CFG, randomWeights(GPT_CFG, seed), ids, labels, B, T, true, drop),
    vocab: GPT_CFG.vocab_size,
  },
  {
    name: "Llama attention_dropout",
    create: async (p, seed) =>
      await Llama.create(await gpu(), { ...LLAMA_CFG, attention_dropout: p }, {
        weights: llamaF32(llamaWeights(LLAMA_CFG, seed), LLAMA_CFG),
      }),
    ref: (seed, ids, labels, drop) =>
      llamaRef(LLAMA_CFG, llamaWeights(LLAMA_CFG, seed), ids, labels, B, T, true, drop),
    vocab: LLAMA_CFG.vocab_size,
  },
];

function batchOf(vocab: number) {
  const rng = new Rng(5);
  const ids = Array.from({ length: B * T }, () => rng.int(vocab));
  // Labels: the ids themselves, with the first 3 positions of each row masked (a "prompt").
  return { ids, labels: ids.map((id, i) => (i % T) < 3 ? -100 : id) };
}

/** Logits and per-position losses of one forward; gradients too in training (zeroed first). */
async function pass(
  model: Decoder,
  inputs: { ids: number[]; labels: number[] },
  options: { training: boolean; seed?: number; checkpoint?: boolean },
) {
  const g = model.gpu;
  const acts = model.activations(B, T, { checkpoint: options.checkpoint });
  const batch = g.batch();
  if (options.training) model.zeroGrad(batch);
  model.forward(batch, acts, inputs, options);
  if (options.training) model.backward(batch, acts);
  await batch.submit();
  const [logits, losses] = await g.read([acts.logits, acts.losses]);
  const loss = await model.meanLoss(acts);
  const grads = options.training ? await model.exportGrads() : new Map<string, Float32Array>();
  acts.release();
  return { logits, losses, loss, grads };
}

for (const family of FAMILIES) {
  Deno.test(`${family.name} > 0 leaves evaluation and generation unchanged: logits, loss and greedy tokens bit-identical to p = 0`, async () => {
    const inputs = batchOf(family.vocab);
    const dropped = await family.create(P, 11), plain = await family.create(0, 11);
    const a = await pass(dropped, inputs, { training: false, seed: SEED });
    const b = await pass(plain, inputs, { training: false, seed: SEED });
    assert.deepEqual(a.logits, b.logits, "logits");
    assert.equal(a.loss, b.loss, "loss");
    const prompts = [inputs.ids.slice(0, 3), inputs.ids.slice(T, T + 5)];
    for (const cache of [true, false]) {
      const logits = (model: Decoder) => {
        const seen: Float32Array[] = [];
        return generate(model, prompts, {
          maxNewTokens: 4,
          cache,
          onLogits: (_step, _row, l) => seen.push(l.slice()),
        }).then((out) => ({ ids: out.ids, seen }));
      };
      assert.deepEqual(await logits(dropped), await logits(plain), `generation (cache ${cache})`);
    }
    dropped.release();
    plain.release();
  });

  Deno.test(`${family.name} in training matches the float64 reference with the same masks: loss and every parameter gradient`, async () => {
    const inputs = batchOf(family.vocab);
    const model = await family.create(P, 11);
    const got = await pass(model, inputs, { training: true, seed: SEED });
    const ref = family.ref(11, inputs.ids, inputs.labels, layerDropout(P, SEED));
    // As tests/models/gpt_test.ts and llama_test.ts: f32 through two blocks with O(1)
    // activations; kept probabilities are scaled by 1/(1 − p) = 1.43, which changes no bound.
    assert.ok(
      Math.abs(got.loss - ref.loss) < 1e-5 * Math.abs(ref.loss),
      `loss ${got.loss} vs ${ref.loss}`,
    );
    assert.equal(got.grads.size, ref.grads!.size, "every parameter has a gradient");
    for (const [name, refGrad] of ref.grads!) {
      // Sums over B·T rows of f32 products: the tolerance scales with the tensor's largest
      // reference gradient, so near-zero entries are judged absolutely.
      let max = 0;
      for (const v of refGrad) max = Math.max(max, Math.abs(v));
      assertClose(got.grads.get(name)!, refGrad, { rtol: 1e-3, atol: 1e-4 * max + 1e-9 }, name);
    }
    // Not vacuous: without dropout, or with another pass seed, the loss is another.
    const undropped = family.ref(11, inputs.ids, inputs.labels);
    assert.ok(Math.abs(undropped.loss - ref.loss) > 1e-3, "dropout changes the reference loss");
    const other = await pass(model, inputs, { training: true, seed: SEED + 1 });
    assert.ok(Math.abs(other.loss - got.loss) > 1e-4, "another seed draws other masks");
    model.release();
  });

  Deno.test(`${family.name}: checkpointed activations give bit-identical losses and gradients with dropout on`, async () => {
    const inputs = batchOf(family.vocab);
    const model = await family.create(P, 13);
    const plain = await pass(model, inputs, { training: true, seed: SEED });
    const ckpt = await pass(model, inputs, { training: true, seed: SEED, checkpoint: true });
    assert.deepEqual(ckpt.losses, plain.losses, "losses");
    assert.deepEqual([...ckpt.grads.keys()], [...plain.grads.keys()], "gradient names");
    for (const [name, grad] of plain.grads) {
      assert.deepEqual(ckpt.grads.get(name), grad, `gradient of ${name}`);
    }
    model.release();
  });
}

Deno.test("GPT-2 with attention, residual and embedding dropout together: checkpointed activations stay bit-identical, and attention dropout changes the losses", async () => {
  const cfg: GPTConfig = { ...GPT_CFG, n_layer: 3, resid_pdrop: 0.2, embd_pdrop: 0.1 };
  const weights = f32Weights(randomWeights(cfg, 5), cfg);
  const inputs = batchOf(cfg.vocab_size);
  const model = await GPT.create(await gpu(), cfg, { weights });
  const plain = await pass(model, inputs, { training: true, seed: SEED });
  const ckpt = await pass(model, inputs, { training: true, seed: SEED, checkpoint: true });
  assert.deepEqual(ckpt.losses, plain.losses, "losses");
  for (const [name, grad] of plain.grads) {
    assert.deepEqual(ckpt.grads.get(name), grad, `gradient of ${name}`);
  }
  const noAttn = await GPT.create(await gpu(), { ...cfg, attn_pdrop: 0 }, { weights });
  const without = await pass(noAttn, inputs, { training: true, seed: SEED });
  assert.notDeepEqual(without.losses, plain.losses, "attention dropout is active");
  model.release();
  noAttn.release();
});
