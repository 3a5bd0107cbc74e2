import assert from "node:assert/strict";
import {
  GPT,
  type Inputs,
  type Param,
  prefix,
  readPrefixConfig,
  readSafetensors,
  Rng,
  Trainer,
} from "../../mod.ts";
import { gpt2ParameterShapes } from "../../models/checkpoint.ts";
import { assertClose, centralDiff, gpu } from "../helpers.ts";
import { randomWeights, SMALL } from "../models/_fixtures.ts";
import { gpt2PeftRef, gradTol, toF32 } from "../ref/peft.ts";

const cfg = SMALL, B = 2, T = 5, n = 3;
const SHAPES = gpt2ParameterShapes(cfg);
const V = cfg.vocab_size;

async function setup(config: Record<string, unknown>, seed = 7) {
  const g = await gpu();
  const w = randomWeights(cfg, 12);
  const model = await GPT.create(g, cfg, { weights: toF32(w, SHAPES) });
  const inst = await prefix.apply(model, prefix.validate(config), seed);
  return { g, w, model, inst };
}

/**
 * Random ids with labels = ids except labels[0] of each sequence (−100): Hugging Face's prefix
 * tuning never scores the first label, which whet's model would score from the last dummy row.
 */
function batchOf(seed: number): { ids: number[]; labels: number[] } {
  const rng = new Rng(seed);
  const ids = Array.from({ length: B * T }, () => rng.int(V));
  return { ids, labels: ids.map((id, i) => (i % T) === 0 ? -100 : id) };
}

/** Logits of the real positions only (B, T, V) and the mean loss. */
async function realLogits(model: GPT, inputs: Inputs) {
  const acts = model.activations(B, T);
  const batch = model.gpu.batch();
  model.forward(batch, acts, inputs);
  await batch.submit();
  const [all] = await model.gpu.read([acts.logits]);
  const loss = await model.meanLoss(acts);
  const S = acts.T, k = acts.nVirtual, out = new Float32Array(B * T * V);
  for (let b = 0; b < B; b++) out.set(all.subarray((b * S + k) * V, (b + 1) * S * V), b * T * V);
  acts.release();
  return { logits: out, loss };
}

async function gradsOf(model: GPT, inputs: Inputs, params: Param[]): Promise<Float32Array[]> {
  const acts = model.activations(B, T);
  const batch = model.gpu.batch();
  model.zeroGrad(batch);
  model.forward(batch, acts, inputs, { training: true });
  model.backward(batch, acts);
  await batch.submit();
  const out = await model.gpu.read(params.map((p) => p.grad!));
  acts.release();
  return out;
}

Deno.test("prefix tuning matches attention over [P; K], [P; V] done directly: logits, loss and dP", async () => {
  // The reference has no dummy rows, so this also checks that zeroing the dummy rows' dqkv keeps
  // their gradient out of earlier layers' prefixes.
  const { w, model, inst } = await setup({ num_virtual_tokens: n, init_std: 0.5 });
  const inputs = batchOf(3);
  const [P] = await model.gpu.read([inst.prefix.value]);
  const ref = gpt2PeftRef(cfg, w, inputs.ids, inputs.labels, B, T, {
    n,
    prefix: Float64Array.from(P),
  }, true);
  const { logits, loss } = await realLogits(model, inputs);
  // f32 through two blocks with O(1) activations (as tests/models/gpt_test.ts).
  assertClose(logits, ref.logits, { rtol: 1e-4, atol: 1e-5 }, "logits of the real positions");
  assert.ok(Math.abs(loss - ref.loss) < 1e-5 * ref.loss, `loss ${loss} vs ${ref.loss}`);
  const [dP] = await gradsOf(model, inputs, [inst.prefix]);
  const C = cfg.n_embd, L = cfg.n_layer;
  assert.deepEqual(inst.prefix.shape, [n, L * 2 * C]);
  assertClose(dP, ref.grads!.prefix!, gradTol(ref.grads!.prefix!), "dP (n, L·2C)");
  // Every layer's key and value slices get a gradient.
  for (let l = 0; l < L; l++) {
    for (const kv of [0, 1]) {
      const slice = ref.grads!.prefix!.filter((_, i) =>
        Math.floor((i % (L * 2 * C)) / C) === 2 * l + kv
      );
      assert.ok(slice.some((v) => Math.abs(v) > 1e-4), `layer ${l} ${kv ? "value" : "key"} trains`);
    }
  }
  model.release();
});

Deno.test("prefix tuning reference: dP matches central finite differences of the loss", () => {
  const w = randomWeights(cfg, 12), inputs = batchOf(3), k = 2;
  const C = cfg.n_embd, L = cfg.n_layer;
  const P = Float64Array.from({ length: k * L * 2 * C }, (_, i) => 0.7 * Math.cos(i));
  const ref = gpt2PeftRef(cfg, w, inputs.ids, inputs.labels, B, T, { n: k, prefix: P }, true);
  // Layer 0 key, layer 0 value, layer 1 key, layer 1 value, second virtual token.
  for (const i of [3, C + 5, 2 * C + 1, 3 * C + 23, L * 2 * C + 2 * C + 7]) {
    const fd = centralDiff(
      (v) => gpt2PeftRef(cfg, w, inputs.ids, inputs.labels, B, T, { n: k, prefix: v }).loss,
      P,
      i,
    );
    assertClose([ref.grads!.prefix![i]], [fd], { rtol: 1e-5, atol: 1e-9 }, `dP[${i}]`);
  }
});

Deno.test("prefix tuning trains the prefixes only: the loss falls and the base stays bit-identical", async () => {
  const { w, model, inst } = await setup({ num_virtual_tokens: 4, init_std: 0.5 });
  const inputs = batchOf(5);
  const source = {
    batchesPerEpoch: 1,
    batch: () => ({ ids: inputs.ids, labels: inputs.labels, batchSize: B, seqLen: T }),
  };
  const [P0] = await model.gpu.read([inst.prefix.value]);
  const trainer = await Trainer.create(model, source, {
    steps: 10,
    lr: 5e-2,
    logEvery: 1,
    optimizer: { weightDecay: 0 },
  }, { params: inst.trainable() });
  const result = await trainer.run();
  assert.ok(result.losses[9] < result.losses[0] - 0.05, `loss ${result.losses}`);
  const after = await model.exportWeights();
  for (const [name, v] of w) {
    const a = after.get(name)!.data;
    assert.ok(a.every((x, i) => x === Math.fround(v[i])), `${name} is bit-identical`);
  }
  const [P] = await model.gpu.read([inst.prefix.value]);
  assert.ok(P.some((x, i) => x !== P0[i]), "the prefixes changed");
  trainer.release();
  model.release();
});

Deno.test("prefix tuning saves PEFT's layout and loads it back exactly", async () => {
  const { g, w, model, inst } = await setup({ num_virtual_tokens: n });
  const dir = await Deno.makeTempDir();
  try {
    await inst.save(dir);
    const json = JSON.parse(await Deno.readTextFile(`${dir}/adapter_config.json`));
    assert.deepEqual(Object.keys(json), Object.keys(json).sort(), "keys sorted");
    assert.equal(json.peft_type, "PREFIX_TUNING");
    assert.equal(json.prefix_projection, false);
    assert.equal(json.num_virtual_tokens, n);
    assert.equal(json.num_layers, cfg.n_layer);
    assert.equal(json.token_dim, cfg.n_embd);
    const st = await readSafetensors(`${dir}/adapter_model.safetensors`);
    assert.deepEqual(st.names(), ["prompt_embeddings"]);
    assert.deepEqual(st.tensor("prompt_embeddings").shape, [n, cfg.n_layer * 2 * cfg.n_embd]);
    assert.deepEqual(st.metadata, { format: "pt" });

    const fresh = await GPT.create(g, cfg, { weights: toF32(w, SHAPES) });
    const again = await prefix.apply(fresh, await readPrefixConfig(dir), 99);
    await again.load(dir);
    const inputs = batchOf(6);
    assert.deepEqual(
      (await realLogits(fresh, inputs)).logits,
      (await realLogits(model, inputs)).logits,
    );
    fresh.release();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  model.release();
});

Deno.test("prefix tuning rejects bad configurations with errors naming the key", () => {
  assert.throws(() => prefix.validate({ num_virtual_tokens: 1.5 }), /"num_virtual_tokens"/);
  assert.throws(() => prefix.validate({ prefix_projection: true }), /"prefix_projection"/);
  assert.throws(() => prefix.validate({ init_std: 0 }), /"init_std"/);
  assert.throws(() => prefix.validate({ encoder_hidden_size: 8 }), /unknown key/);
});
