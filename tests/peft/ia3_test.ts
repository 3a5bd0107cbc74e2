import assert from "node:assert/strict";
import { GPT, ia3, type Inputs, readIA3Config, readSafetensors, Rng, Trainer } from "../../mod.ts";
import { gpt2ParameterShapes } from "../../models/checkpoint.ts";
import { assertClose, centralDiff, gpu } from "../helpers.ts";
import { randomWeights, SMALL } from "../models/_fixtures.ts";
import { gpt2PeftRef, gradTol, toF32 } from "../ref/peft.ts";

const cfg = SMALL, B = 2, T = 5;
const SHAPES = gpt2ParameterShapes(cfg);
const C = cfg.n_embd, F = 4 * cfg.n_embd, L = cfg.n_layer;

async function setup(config: Record<string, unknown> = {}) {
  const g = await gpu();
  const w = randomWeights(cfg, 13);
  const model = await GPT.create(g, cfg, { weights: toF32(w, SHAPES) });
  const inst = await ia3.apply(model, ia3.validate(config), 0);
  return { g, w, model, inst };
}

function batchOf(seed: number): { ids: number[]; labels: number[] } {
  const rng = new Rng(seed);
  const ids = Array.from({ length: B * T }, () => rng.int(cfg.vocab_size));
  return { ids, labels: ids.map((id, i) => (i % T) === 1 ? -100 : id) };
}

async function logitsOf(model: GPT, inputs: Inputs): Promise<Float32Array> {
  const acts = model.activations(B, T);
  const batch = model.gpu.batch();
  model.forward(batch, acts, inputs);
  await batch.submit();
  const [logits] = await model.gpu.read([acts.logits]);
  acts.release();
  return logits;
}

/** Random scaling vectors around 1, written into the instance; returned in float64. */
function randomScales(inst: Awaited<ReturnType<typeof setup>>["inst"], seed: number) {
  const rng = new Rng(seed);
  const attn: Float64Array[] = [], ff: Float64Array[] = [];
  for (const layer of inst.layers) {
    const v = Float32Array.from({ length: layer.l.value.size }, () => 1 + 0.5 * rng.normal());
    layer.l.value.write(v);
    const l = Number(layer.path.split(".")[1]);
    (layer.feedforward ? ff : attn)[l] = Float64Array.from(v);
  }
  return { attn, ff };
}

Deno.test("IA³ is a no-op at initialisation: logits bit-identical to the base model", async () => {
  const { g, w, model, inst } = await setup();
  const base = await GPT.create(g, cfg, { weights: toF32(w, SHAPES) });
  const inputs = batchOf(1);
  assert.deepEqual(await logitsOf(model, inputs), await logitsOf(base, inputs));
  assert.deepEqual(inst.layers.map((l) => [l.path, l.feedforward, l.l.shape]), [
    ["h.0.attn.c_attn", false, [3 * C, 1]],
    ["h.0.mlp.c_proj", true, [1, F]],
    ["h.1.attn.c_attn", false, [3 * C, 1]],
    ["h.1.mlp.c_proj", true, [1, F]],
  ]);
  model.release();
  base.release();
});

Deno.test("IA³: logits, loss and the gradients of the scaling vectors match the float64 reference", async () => {
  const { w, model, inst } = await setup();
  const { attn, ff } = randomScales(inst, 2);
  const inputs = batchOf(3);
  const ref = gpt2PeftRef(cfg, w, inputs.ids, inputs.labels, B, T, {
    ia3Attn: attn,
    ia3Ff: ff,
  }, true);
  const logits = await logitsOf(model, inputs);
  // f32 through two blocks with O(1) activations (as tests/models/gpt_test.ts).
  assertClose(logits, ref.logits, { rtol: 1e-4, atol: 1e-5 }, "logits");
  const acts = model.activations(B, T);
  const batch = model.gpu.batch();
  model.zeroGrad(batch);
  model.forward(batch, acts, inputs, { training: true });
  model.backward(batch, acts);
  await batch.submit();
  const grads = await model.gpu.read(inst.layers.map((l) => l.l.grad!));
  acts.release();
  inst.layers.forEach((layer, i) => {
    const l = Number(layer.path.split(".")[1]);
    const r = layer.feedforward ? ref.grads!.ia3Ff[l]! : ref.grads!.ia3Attn[l]!;
    assertClose(grads[i], r, gradTol(r), `d ${layer.path}.ia3_l`);
  });
  for (const p of model.params.values()) assert.equal(p.grad, null, `${p.name} frozen`);
  model.release();
});

Deno.test("IA³ reference: gradients match central finite differences of the loss", () => {
  const w = randomWeights(cfg, 13), inputs = batchOf(3), rng = new Rng(4);
  const attn = [0, 1].map(() => Float64Array.from({ length: 3 * C }, () => 1 + 0.3 * rng.normal()));
  const ff = [0, 1].map(() => Float64Array.from({ length: F }, () => 1 + 0.3 * rng.normal()));
  const run = () =>
    gpt2PeftRef(cfg, w, inputs.ids, inputs.labels, B, T, { ia3Attn: attn, ia3Ff: ff }, true);
  const ref = run();
  for (
    const [vec, grad, i] of [
      [attn[0], ref.grads!.ia3Attn[0]!, 2],
      [attn[1], ref.grads!.ia3Attn[1]!, 2 * C + 3],
      [ff[0], ref.grads!.ia3Ff[0]!, 7],
      [ff[1], ref.grads!.ia3Ff[1]!, F - 1],
    ] as const
  ) {
    const fd = centralDiff(() => run().loss, vec, i);
    assertClose([grad[i]], [fd], { rtol: 1e-5, atol: 1e-9 }, `d l[${i}]`);
  }
});

Deno.test("IA³ merge and unmerge: outputs equal the unmerged model within f32 rounding", async () => {
  const { w, model, inst } = await setup();
  randomScales(inst, 5);
  const inputs = batchOf(7);
  const unmerged = await logitsOf(model, inputs);
  const report = await inst.merge();
  assert.deepEqual(report.merged, [
    "h.0.attn.c_attn.weight",
    "h.0.attn.c_attn.bias",
    "h.0.mlp.c_proj.weight",
    "h.1.attn.c_attn.weight",
    "h.1.attn.c_attn.bias",
    "h.1.mlp.c_proj.weight",
  ]);
  const merged = await logitsOf(model, inputs);
  let maxDiff = 0;
  merged.forEach((v, i) => maxDiff = Math.max(maxDiff, Math.abs(v - unmerged[i])));
  // Merging reassociates one product per weight ((x·W)·l vs x·(W·l)): f32 rounding only.
  assertClose(merged, unmerged, { rtol: 1e-5, atol: 1e-5 }, `merged logits (max diff ${maxDiff})`);
  await assert.rejects(() => inst.merge(), /already merged/);
  await inst.unmerge();
  await assert.rejects(() => inst.unmerge(), /not merged/);
  assertClose(
    await logitsOf(model, inputs),
    unmerged,
    { rtol: 1e-5, atol: 1e-5 },
    "unmerged again",
  );
  const weights = await model.exportWeights();
  for (const [name, v] of w) {
    // W·l/l: two roundings of a division-free multiply and a division (≤ 3.5 ulp).
    assertClose(weights.get(name)!.data, v, { rtol: 5e-7, atol: 0 }, `${name} restored`);
  }
  model.release();
});

Deno.test("IA³ trains the scaling vectors only: the loss falls and the base stays bit-identical", async () => {
  const { w, model, inst } = await setup();
  const inputs = batchOf(5);
  const source = {
    batchesPerEpoch: 1,
    batch: () => ({ ids: inputs.ids, labels: inputs.labels, batchSize: B, seqLen: T }),
  };
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
    assert.ok(
      after.get(name)!.data.every((x, i) => x === Math.fround(v[i])),
      `${name} bit-identical`,
    );
  }
  trainer.release();
  model.release();
});

Deno.test("IA³ saves PEFT's layout (keys, shapes) and loads it back exactly", async () => {
  const { g, w, model, inst } = await setup();
  randomScales(inst, 8);
  const dir = await Deno.makeTempDir();
  try {
    await inst.save(dir);
    const json = JSON.parse(await Deno.readTextFile(`${dir}/adapter_config.json`));
    assert.deepEqual(Object.keys(json), Object.keys(json).sort(), "keys sorted");
    assert.equal(json.peft_type, "IA3");
    assert.deepEqual(json.target_modules, ["c_attn", "mlp.c_proj"]);
    assert.deepEqual(json.feedforward_modules, ["mlp.c_proj"]);
    assert.equal(json.fan_in_fan_out, true);
    const st = await readSafetensors(`${dir}/adapter_model.safetensors`);
    assert.deepEqual(st.metadata, { format: "pt" });
    for (let l = 0; l < L; l++) {
      const p = `base_model.model.transformer.h.${l}.`;
      assert.deepEqual(st.tensor(p + "attn.c_attn.ia3_l").shape, [3 * C, 1]);
      assert.deepEqual(st.tensor(p + "mlp.c_proj.ia3_l").shape, [1, F]);
    }
    assert.equal(st.names().length, 2 * L);
    const fresh = await GPT.create(g, cfg, { weights: toF32(w, SHAPES) });
    const again = await ia3.apply(fresh, await readIA3Config(dir), 0);
    await again.load(dir);
    const inputs = batchOf(9);
    assert.deepEqual(await logitsOf(fresh, inputs), await logitsOf(model, inputs));
    fresh.release();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  model.release();
});

Deno.test("IA³ rejects bad configurations and double wrapping", async () => {
  assert.throws(() => ia3.validate({ target_modules: [] }), /"target_modules" is empty/);
  assert.throws(
    () => ia3.validate({ target_modules: ["c_attn"], feedforward_modules: ["c_fc"] }),
    /feedforward module "c_fc"/,
  );
  const { model } = await setup({ layers_to_transform: [1] });
  await assert.rejects(
    () => ia3.apply(model, ia3.validate({ layers_to_transform: [1] }), 0),
    /already wrapped/,
  );
  await assert.rejects(
    () => ia3.apply(model, ia3.validate({ layers_to_transform: [5] }), 0),
    /outside 0..1/,
  );
  model.release();
});
