/**
 * Whole models whose token table (and logits) exceed the storage-binding limit, and the head +
 * loss over vocabulary chunks: a tiny GPT-2 and tiny Llamas (untied and tied) with a 1,999-id
 * vocabulary on a device forced to a 64 KiB binding limit, against the same models on the
 * unforced device and the float64 references (logits, loss, every gradient, training, generation).
 */
import assert from "node:assert/strict";
import {
  type BatchSource,
  type Decoder,
  generate,
  GPT,
  type GPTConfig,
  gptConfig,
  Gpu,
  Llama,
  type LlamaConfig,
  llamaConfig,
  llamaParameterShapes,
  lora,
  Rng,
  type TensorData,
  Trainer,
} from "../../mod.ts";
import { assertClose, gpu } from "../helpers.ts";
import { gpt2Ref, type RefResult, type Weights } from "../ref/gpt2.ts";
import { llamaRef } from "../ref/llama.ts";
import { f32Weights, randomWeights } from "./_fixtures.ts";

/** A forced binding limit under the token tables (192–384 KB) and the logits (112 KB), over the rest. */
const LIMIT = 65536;
const V = 1999;
const B = 2, T = 7;

const GPT_CFG: GPTConfig = gptConfig("tiny", {
  vocab_size: V,
  n_positions: 16,
  n_embd: 24,
  n_layer: 2,
  n_head: 3,
});

interface Family {
  name: string;
  create(g: Gpu): Promise<Decoder>;
  ref(ids: number[], labels: number[], grads: boolean): RefResult;
}

function gptFamily(): Family {
  const w = randomWeights(GPT_CFG, 11);
  return {
    name: "GPT-2",
    create: (g) => GPT.create(g, GPT_CFG, { weights: f32Weights(w, GPT_CFG) }),
    ref: (ids, labels, grads) => gpt2Ref(GPT_CFG, w, ids, labels, B, T, grads),
  };
}

/** As tests/models/llama_test.ts: weights that keep activations O(1), rounded to f32. */
function llamaFamily(preset: "llama-tiny" | "smollm-tiny"): Family {
  const cfg: LlamaConfig = llamaConfig(preset, { vocab_size: V });
  const rng = new Rng(11);
  const w: Weights = new Map();
  const shapes = llamaParameterShapes(cfg);
  for (const [name, shape] of shapes) {
    const n = shape.reduce((a, b) => a * b, 1);
    const norm = name.endsWith("norm.weight");
    const std = /embed_tokens|lm_head/.test(name) ? 0.3 : norm ? 0.1 : 0.15;
    w.set(
      name,
      Float64Array.from({ length: n }, () => Math.fround((norm ? 1 : 0) + std * rng.normal())),
    );
  }
  const weights = new Map<string, TensorData>(
    [...w].map(([k, v]) => [k, { shape: shapes.get(k)!, data: Float32Array.from(v) }]),
  );
  return {
    name: `${preset} (${cfg.tie_word_embeddings ? "tied" : "untied"} head)`,
    create: (g) => Llama.create(g, cfg, { weights }),
    ref: (ids, labels, grads) => llamaRef(cfg, w, ids, labels, B, T, grads),
  };
}

function batchOf(seed: number) {
  const rng = new Rng(seed);
  const ids = Array.from({ length: B * T }, () => rng.int(V));
  ids[0] = V - 1;
  return { ids, labels: ids.map((id, i) => (i % T) < 3 ? -100 : id) };
}

/** Logits of an inference forward, the mean loss of a labelled one, and every gradient. */
async function runModel(model: Decoder, headChunkBytes?: number) {
  const g = model.gpu, { ids, labels } = batchOf(5);
  const acts = model.activations(B, T, { headChunkBytes });
  let batch = g.batch();
  model.forward(batch, acts, { ids });
  await batch.submit();
  const [logits] = await g.read([acts.logits]);
  batch = g.batch();
  model.forward(batch, acts, { ids, labels }, { logits: true });
  await batch.submit();
  const loss = await model.meanLoss(acts);
  // With `logits: true` the loss's forward also writes every logit, chunked or not.
  assert.deepEqual(await acts.logits.read(), logits, "logits of a labelled forward");
  batch = g.batch();
  model.zeroGrad(batch);
  model.forward(batch, acts, { ids, labels }, { training: true });
  model.backward(batch, acts);
  await batch.submit();
  const grads = await model.exportGrads();
  const vocabChunk = acts.vocabChunk;
  acts.release();
  return { logits, loss, grads, vocabChunk };
}

/** The whole-model tolerances of tests/models/gpt_test.ts and llama_test.ts. */
function assertMatchesRef(got: Awaited<ReturnType<typeof runModel>>, ref: RefResult, what: string) {
  assertClose(got.logits, ref.logits, { rtol: 1e-4, atol: 1e-5 }, `${what}: logits`);
  assert.ok(
    Math.abs(got.loss - ref.loss) < 1e-5 * ref.loss,
    `${what}: loss ${got.loss} vs ${ref.loss}`,
  );
  assert.equal(got.grads.size, ref.grads!.size, `${what}: every parameter has a gradient`);
  for (const [name, refGrad] of ref.grads!) {
    const max = refGrad.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
    assertClose(
      got.grads.get(name)!,
      refGrad,
      { rtol: 1e-3, atol: 1e-4 * max + 1e-9 },
      `${what}: grad ${name}`,
    );
  }
}

for (const make of [gptFamily, () => llamaFamily("llama-tiny"), () => llamaFamily("smollm-tiny")]) {
  const family = make();
  Deno.test(`${family.name} with a token table over a forced 64 KiB binding limit matches the unforced model and the float64 reference`, async () => {
    const shared = await gpu();
    const small = await Gpu.create({ maxBindingBytes: LIMIT });
    try {
      const forced = await family.create(small);
      assert.ok(forced.wte.value.byteLength > 2 * LIMIT, "the token table spans several bindings");
      const chunked = await runModel(forced);
      assert.ok(chunked.vocabChunk < V, "W over the limit: the loss runs over vocabulary chunks");
      const plain = await family.create(shared);
      const whole = await runModel(plain);
      assert.equal(whole.vocabChunk, V, "unforced: one chunk, the logits themselves");
      // Same products in the same order: the embedding and the head's logits chunk by chunk.
      assert.deepEqual(chunked.logits, whole.logits, "logits bit for bit");
      const ref = family.ref(batchOf(5).ids, batchOf(5).labels, true);
      assertMatchesRef(whole, ref, "unforced");
      // The loss and the head's input gradient sum over vocabulary chunks in another order.
      assertMatchesRef(chunked, ref, "forced limit");
      // The chunked head on the unforced device (W fits, the scratch does not hold the logits).
      const fused = await runModel(plain, 4096);
      assert.ok(
        fused.vocabChunk < V && V % fused.vocabChunk !== 0,
        `vocabChunk ${fused.vocabChunk}`,
      );
      assertMatchesRef(fused, ref, "chunked head");
      forced.release();
      plain.release();
    } finally {
      small.destroy();
    }
  });
}

Deno.test("Trainer steps (full and LoRA) and cached generation run on a model over a forced binding limit as on the unforced device", async () => {
  const family = gptFamily();
  const source: BatchSource = {
    batchesPerEpoch: 2,
    batch(_epoch: number, index: number) {
      const { ids, labels } = batchOf(10 + index);
      return { ids, labels, batchSize: B, seqLen: T };
    },
  };
  const opts = { steps: 3, lr: 1e-2, logEvery: 1, optimizer: { weightDecay: 0.1 } };
  const train = async (g: Gpu, method: "full" | "lora") => {
    const model = await family.create(g);
    if (method === "lora") {
      await lora.apply(model, lora.validate({ r: 4, target_modules: ["c_attn"] }), 0);
    }
    const trainer = await Trainer.create(model, source, opts);
    const result = await trainer.run();
    // Full: the token table (trained through the chunked head and embedding, and AdamW in
    // chunks); LoRA: every adapter matrix (the frozen table's head takes no weight gradient).
    const trained = method === "full" ? [model.wte] : [...model.injected.values()];
    const weights = Float32Array.from(
      (await g.read(trained.map((p) => p.value))).flatMap((a) => [...a]),
    );
    const generated = await generate(model, [[1, 2, 3], [V - 1]], { maxNewTokens: 4 });
    trainer.release();
    model.release();
    return { losses: result.losses, weights, generated: generated.ids };
  };
  const small = await Gpu.create({ maxBindingBytes: LIMIT });
  try {
    for (const method of ["full", "lora"] as const) {
      const forced = await train(small, method), whole = await train(await gpu(), method);
      for (let s = 0; s < opts.steps; s++) {
        assert.ok(
          Math.abs(forced.losses[s] - whole.losses[s]) < 1e-5 * whole.losses[s],
          `${method} step ${s + 1}: ${forced.losses[s]} vs ${whole.losses[s]}`,
        );
      }
      // Adam moves each weight by about lr per step, so f32 differences in the gradients stay
      // ~lr × their relative size: 1e-4 after 3 steps (as tests/train/trainer_test.ts).
      assertClose(
        forced.weights,
        whole.weights,
        { rtol: 0, atol: 1e-4 },
        `${method}: trained weights`,
      );
      assert.deepEqual(forced.generated, whole.generated, `${method}: generated ids`);
    }
  } finally {
    small.destroy();
  }
});

Deno.test("Decoder.forward() with logitRows computes those positions' logits only, and refuses bad rows", async () => {
  const g = await gpu();
  const model = await gptFamily().create(g);
  const { ids } = batchOf(3);
  const acts = model.activations(B, T);
  const rows = [T - 1, 2 * T - 1, 3];
  const out = g.tensor([rows.length, V], new Float32Array(rows.length * V).fill(NaN), "out");
  let batch = g.batch();
  model.forward(batch, acts, { ids }, { logitRows: { rows, out } });
  await batch.submit();
  const some = await out.read();
  batch = g.batch();
  model.forward(batch, acts, { ids });
  await batch.submit();
  const all = await acts.logits.read();
  rows.forEach((r, i) => {
    assert.deepEqual(
      some.subarray(i * V, (i + 1) * V),
      all.subarray(r * V, (r + 1) * V),
      `row ${r}`,
    );
  });
  assert.throws(
    () => model.forward(g.batch(), acts, { ids }, { logitRows: { rows: [B * T], out: out } }),
    /Cannot compute the logits of 1 positions: tensor "out" has 5997 elements, expected \(1, 1999\)/,
  );
  const one = g.tensor([1, V], undefined, "one");
  assert.throws(
    () => model.forward(g.batch(), acts, { ids }, { logitRows: { rows: [B * T], out: one } }),
    /Cannot compute the logits of position 14: the activations hold positions 0\.\.13/,
  );
  for (const t of [out, one]) t.release();
  acts.release();
  model.release();
});
