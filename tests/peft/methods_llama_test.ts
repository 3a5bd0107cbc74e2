/**
 * Selective fine-tuning, BitFit, bottleneck adapters and the merged export on the Llama family
 * (Hugging Face names `model.layers.{i}.…`, RMSNorm weights without biases, q/k/v biases on
 * Qwen2 only).
 */
import assert from "node:assert/strict";
import {
  adapters,
  bitfit,
  Llama,
  loadModelCheckpoint,
  peftMethod,
  Rng,
  saveMergedCheckpoint,
  selective,
  selectParameters,
} from "../../mod.ts";
import { assertClose, gpu } from "../helpers.ts";
import { allLogits, llamaBatch, llamaSetup } from "./_llama.ts";

const B = 1, T = 6;

Deno.test("selectParameters() on Llama names: the layernorm preset takes the RMSNorms, lastLayers and qkv the layer's own tensors", async () => {
  const { model } = await llamaSetup("qwen2-tiny", 1);
  const names = (c: Record<string, unknown>) =>
    selectParameters(model, selective.validate(c)).map((s) => s.param.name);
  assert.deepEqual(names({ preset: "layernorm" }), [
    "model.layers.0.input_layernorm.weight",
    "model.layers.0.post_attention_layernorm.weight",
    "model.layers.1.input_layernorm.weight",
    "model.layers.1.post_attention_layernorm.weight",
    "model.norm.weight",
  ]);
  assert.ok(
    names({ include: ["model.layers.**"], lastLayers: 1 }).every((n) =>
      n.startsWith("model.layers.1.")
    ),
    "block index read from model.layers.{i}",
  );
  // Non-block parameters follow include alone.
  assert.ok(names({ lastLayers: 1 }).includes("model.embed_tokens.weight"));
  assert.deepEqual(names({ include: ["model.layers.0.self_attn.**"], qkv: ["v"] }), [
    "model.layers.0.self_attn.v_proj.weight",
    "model.layers.0.self_attn.v_proj.bias",
    "model.layers.0.self_attn.o_proj.weight",
  ]);
  assert.ok(
    selectParameters(model, selective.validate({ qkv: ["k"] })).every((s) => s.mask === null),
    "separate projections are chosen whole, never masked",
  );
  model.release();
});

Deno.test("BitFit trains Qwen2's q/k/v biases and refuses a model without biases", async () => {
  const { model } = await llamaSetup("qwen2-tiny", 2);
  const inst = await bitfit.apply(model, bitfit.validate({}), 0);
  assert.deepEqual(
    inst.trainable().map((p) => p.name),
    [0, 1].flatMap((l) => ["q", "k", "v"].map((x) => `model.layers.${l}.self_attn.${x}_proj.bias`)),
  );
  model.release();
  for (const preset of ["llama-tiny", "smollm-tiny"] as const) {
    const { model: m } = await llamaSetup(preset, 2);
    await assert.rejects(
      bitfit.apply(m, bitfit.validate({}), 0),
      /Cannot apply BitFit: the model has no bias parameters/,
    );
    assert.ok([...m.params.values()].every((p) => p.grad !== null), "the model is left as it was");
    m.release();
  }
});

Deno.test("bottleneck adapters on Llama blocks live under model.layers.{i} and are the identity at start", async () => {
  const { cfg, model } = await llamaSetup("smollm-tiny", 3);
  const inputs = llamaBatch(cfg, B, T, 1);
  const before = (await allLogits(model, inputs, B, T)).logits;
  const inst = await adapters.apply(
    model,
    adapters.validate({ placement: "houlsby", reduction_factor: 6 }),
    0,
  );
  assert.deepEqual(inst.adapters.map((a) => a.path), [
    "model.layers.0.attn_adapter",
    "model.layers.0.mlp_adapter",
    "model.layers.1.attn_adapter",
    "model.layers.1.mlp_adapter",
  ]);
  assert.equal(inst.adapters[0].r, 6, "C 36 / 6");
  assert.equal(inst.describe(), "bottleneck adapters (houlsby, r=6, relu) in 2 layers");
  assert.equal(inst.adapterConfig().n_embd, 36);
  assert.deepEqual((await allLogits(model, inputs, B, T)).logits, before);
  model.release();
});

for (
  const [name, settings, preset] of [
    ["lora", { r: 4, target_modules: ["all-linear"] }, "llama-tiny"],
    ["ia3", {}, "qwen2-tiny"],
    ["lora", { r: 2 }, "smollm-tiny"],
  ] as const
) {
  Deno.test(`saveMergedCheckpoint() exports ${name} on ${preset} as a plain Llama-family checkpoint with the same outputs`, async () => {
    const { cfg, w, model } = await llamaSetup(preset, 5);
    const method = peftMethod(name);
    const inst = await method.apply(model, method.validate(settings), 1);
    const rng = new Rng(2);
    for (const p of inst.added) {
      p.value.write(
        rng.fillNormal(new Float32Array(p.value.size), 0.3, name === "ia3" ? 1 : 0) as Float32Array,
      );
    }
    const inputs = llamaBatch(cfg, B, T, 3);
    const tuned = (await allLogits(model, inputs, B, T)).logits;
    const dir = await Deno.makeTempDir();
    try {
      await saveMergedCheckpoint(model, inst, dir);
      assert.deepEqual((await allLogits(model, inputs, B, T)).logits, tuned, "unmerged again");
      const weights = await model.exportWeights();
      for (const [k, v] of w) assert.deepEqual(weights.get(k)!.data, Float32Array.from(v), k);
      const ck = await loadModelCheckpoint(dir);
      assert.equal(ck.family, "llama");
      if (ck.family !== "llama") return;
      assert.deepEqual(ck.config, cfg);
      const plain = await Llama.create(await gpu(), ck.config, {
        weights: ck.weights,
        trainable: false,
      });
      // Folding changes the order of f32 operations only.
      assertClose(
        (await allLogits(plain, inputs, B, T)).logits,
        tuned,
        { rtol: 1e-4, atol: 1e-4 },
        "merged checkpoint's logits",
      );
      plain.release();
    } finally {
      await Deno.remove(dir, { recursive: true });
      model.release();
    }
  });
}
