import assert from "node:assert/strict";
import {
  adapters,
  GPT,
  type Inputs,
  readBottleneckConfig,
  readSafetensors,
  Rng,
  Trainer,
} from "../../mod.ts";
import { gpt2ParameterShapes } from "../../models/checkpoint.ts";
import { assertClose, centralDiff, gpu } from "../helpers.ts";
import { randomWeights, SMALL } from "../models/_fixtures.ts";
import { type ActName, type AdapterRef, gpt2PeftRef, gradTol, toF32 } from "../ref/peft.ts";

const cfg = SMALL, B = 2, T = 5;
const SHAPES = gpt2ParameterShapes(cfg);
const C = cfg.n_embd;

async function setup(config: Record<string, unknown> = {}) {
  const g = await gpu();
  const w = randomWeights(cfg, 14);
  const model = await GPT.create(g, cfg, { weights: toF32(w, SHAPES) });
  const inst = await adapters.apply(model, adapters.validate(config), 3);
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

/** Random adapter parameters written into the instance, returned in float64 by block. */
function randomAdapters(inst: Awaited<ReturnType<typeof setup>>["inst"], seed: number) {
  const rng = new Rng(seed);
  const attn: (AdapterRef | null)[] = [], mlp: (AdapterRef | null)[] = [];
  for (const a of inst.adapters) {
    const vals = a.params().map((p) => {
      const v = Float32Array.from({ length: p.value.size }, () => 0.4 * rng.normal());
      p.value.write(v);
      return Float64Array.from(v);
    });
    const ref = { downW: vals[0], downB: vals[1], upW: vals[2], upB: vals[3] };
    const l = Number(a.path.split(".")[1]);
    (a.path.endsWith("attn_adapter") ? attn : mlp)[l] = ref;
  }
  return { attn, mlp };
}

Deno.test("adapters are the identity at initialisation: logits bit-identical to the base model", async () => {
  for (const placement of ["houlsby", "pfeiffer"]) {
    const { g, w, model, inst } = await setup({ placement, reduction_factor: 5 });
    const base = await GPT.create(g, cfg, { weights: toF32(w, SHAPES) });
    const inputs = batchOf(1);
    assert.deepEqual(await logitsOf(model, inputs), await logitsOf(base, inputs), placement);
    assert.deepEqual(
      inst.adapters.map((a) => a.path),
      placement === "houlsby"
        ? ["h.0.attn_adapter", "h.0.mlp_adapter", "h.1.attn_adapter", "h.1.mlp_adapter"]
        : ["h.0.mlp_adapter", "h.1.mlp_adapter"],
    );
    assert.equal(inst.adapters[0].r, 4, "⌊24 / 5⌋");
    assert.deepEqual(inst.adapters[0].downW.shape, [4, C]);
    assert.deepEqual(inst.adapters[0].upW.shape, [C, 4]);
    model.release();
    base.release();
  }
});

for (const act of ["relu", "swish", "gelu_new", "gelu"] as ActName[]) {
  Deno.test(`adapters (houlsby, ${act}): logits, loss and every adapter gradient match the float64 reference`, async () => {
    const { w, model, inst } = await setup({
      placement: "houlsby",
      reduction_factor: 7,
      non_linearity: act,
    });
    const { attn, mlp } = randomAdapters(inst, 2);
    const inputs = batchOf(3);
    const ref = gpt2PeftRef(cfg, w, inputs.ids, inputs.labels, B, T, {
      attnAdapters: attn,
      mlpAdapters: mlp,
      act,
    }, true);
    // f32 through two blocks with O(1) activations (as tests/models/gpt_test.ts).
    assertClose(await logitsOf(model, inputs), ref.logits, { rtol: 1e-4, atol: 1e-5 }, "logits");
    const acts = model.activations(B, T);
    const batch = model.gpu.batch();
    model.zeroGrad(batch);
    model.forward(batch, acts, inputs, { training: true });
    model.backward(batch, acts);
    await batch.submit();
    const grads = await model.exportGrads();
    acts.release();
    assert.equal(grads.size, inst.added.length, "only adapter parameters have gradients");
    for (const a of inst.adapters) {
      const l = Number(a.path.split(".")[1]);
      const r =
        (a.path.endsWith("attn_adapter") ? ref.grads!.attnAdapters : ref.grads!.mlpAdapters)[l]!;
      const expected = [r.downW, r.downB, r.upW, r.upB];
      a.params().forEach((p, i) =>
        assertClose(grads.get(p.name)!, expected[i], gradTol(expected[i]), p.name)
      );
    }
    model.release();
  });
}

Deno.test("adapters reference: gradients match central finite differences of the loss", () => {
  const w = randomWeights(cfg, 14), inputs = batchOf(3), rng = new Rng(9), r = 3;
  const make = (): AdapterRef => ({
    downW: Float64Array.from({ length: r * C }, () => 0.4 * rng.normal()),
    downB: Float64Array.from({ length: r }, () => 0.4 * rng.normal()),
    upW: Float64Array.from({ length: C * r }, () => 0.4 * rng.normal()),
    upB: Float64Array.from({ length: C }, () => 0.4 * rng.normal()),
  });
  const attn = [make(), make()], mlp = [make(), make()];
  for (const act of ["swish", "gelu"] as ActName[]) {
    const run = () =>
      gpt2PeftRef(cfg, w, inputs.ids, inputs.labels, B, T, {
        attnAdapters: attn,
        mlpAdapters: mlp,
        act,
      }, true);
    const ref = run();
    for (
      const [which, l, key, i] of [
        ["attn", 0, "downW", 5],
        ["attn", 1, "upB", 3],
        ["mlp", 0, "upW", 7],
        ["mlp", 1, "downB", 2],
      ] as const
    ) {
      const p = (which === "attn" ? attn : mlp)[l][key];
      const g = (which === "attn" ? ref.grads!.attnAdapters : ref.grads!.mlpAdapters)[l]![key];
      const fd = centralDiff(() => run().loss, p, i);
      assertClose([g[i]], [fd], { rtol: 1e-5, atol: 1e-9 }, `${act} ${which}[${l}].${key}[${i}]`);
    }
  }
});

Deno.test("adapters train only their parameters: the loss falls and the base stays bit-identical", async () => {
  const { w, model, inst } = await setup({ placement: "houlsby", reduction_factor: 4 });
  const inputs = batchOf(5);
  const source = {
    batchesPerEpoch: 1,
    batch: () => ({ ids: inputs.ids, labels: inputs.labels, batchSize: B, seqLen: T }),
  };
  const trainer = await Trainer.create(model, source, {
    steps: 10,
    lr: 2e-2,
    logEvery: 1,
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

Deno.test("adapters save whet's layout and load it back exactly", async () => {
  const { g, w, model, inst } = await setup({
    placement: "houlsby",
    layers: [1],
    non_linearity: "gelu",
  });
  randomAdapters(inst, 4);
  const dir = await Deno.makeTempDir();
  try {
    await inst.save(dir);
    const json = JSON.parse(await Deno.readTextFile(`${dir}/adapter_config.json`));
    assert.deepEqual(Object.keys(json), Object.keys(json).sort(), "keys sorted");
    assert.equal(json.whet_method, "bottleneck");
    assert.equal(json.placement, "houlsby");
    assert.equal(json.bottleneck_size, 1, "⌊24 / 16⌋");
    assert.deepEqual(json.layers, [1]);
    const st = await readSafetensors(`${dir}/adapter_model.safetensors`);
    assert.deepEqual(st.metadata, { format: "pt" });
    assert.deepEqual(st.names().sort(), [
      "h.1.attn_adapter.down.bias",
      "h.1.attn_adapter.down.weight",
      "h.1.attn_adapter.up.bias",
      "h.1.attn_adapter.up.weight",
      "h.1.mlp_adapter.down.bias",
      "h.1.mlp_adapter.down.weight",
      "h.1.mlp_adapter.up.bias",
      "h.1.mlp_adapter.up.weight",
    ]);
    assert.deepEqual(st.tensor("h.1.mlp_adapter.down.weight").shape, [1, C]);
    assert.deepEqual(st.tensor("h.1.mlp_adapter.up.weight").shape, [C, 1]);
    const fresh = await GPT.create(g, cfg, { weights: toF32(w, SHAPES) });
    const again = await adapters.apply(fresh, await readBottleneckConfig(dir), 77);
    await again.load(dir);
    const inputs = batchOf(9);
    assert.deepEqual(await logitsOf(fresh, inputs), await logitsOf(model, inputs));
    fresh.release();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  model.release();
});

Deno.test("adapters reject bad configurations and a second application", async () => {
  assert.throws(() => adapters.validate({ placement: "parallel" }), /"placement"/);
  assert.throws(() => adapters.validate({ reduction_factor: 0 }), /"reduction_factor"/);
  assert.throws(() => adapters.validate({ non_linearity: "tanh" }), /"non_linearity"/);
  assert.throws(
    () => adapters.validate({ reduction_factor: "16" }),
    /key "reduction_factor" must be number/,
  );
  const { model } = await setup();
  await assert.rejects(
    () => adapters.apply(model, adapters.validate({}), 0),
    /already has an adapter/,
  );
  await assert.rejects(
    () => adapters.apply(model, adapters.validate({ layers: [2] }), 0),
    /outside 0..1/,
  );
  model.release();
});
