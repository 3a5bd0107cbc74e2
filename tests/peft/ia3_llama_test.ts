/**
 * IA³ on the Llama family: PEFT's defaults by model_type, gradients of the scaling vectors against
 * the float64 reference through the folded weights, merge/unmerge on nn.Linear's (out, in)
 * weights (with and without biases), and PEFT's file layout.
 */
import assert from "node:assert/strict";
import { ia3, type IA3Instance, readIA3Config, readSafetensors, Rng } from "../../mod.ts";
import { assertClose } from "../helpers.ts";
import { llamaRef, type Weights } from "../ref/llama.ts";
import { gradTol } from "../ref/peft.ts";
import { allLogits, gradsOf, LLAMA_PRESETS, llamaBatch, llamaSetup } from "./_llama.ts";

const B = 2, T = 5;

/** PEFT's TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING (peft/utils/constants.py). */
const DEFAULTS: Record<string, string[]> = {
  llama: ["k_proj", "v_proj", "down_proj"],
  qwen2: ["q_proj", "v_proj", "down_proj"],
};

/** Random scaling vectors around 1, written into the instance; returned in float64 by path. */
function randomScales(inst: IA3Instance, seed: number): Map<string, Float64Array> {
  const rng = new Rng(seed);
  const out = new Map<string, Float64Array>();
  for (const layer of inst.layers) {
    const v = Float32Array.from({ length: layer.l.value.size }, () => 1 + 0.5 * rng.normal());
    layer.l.value.write(v);
    out.set(layer.path, Float64Array.from(v));
  }
  return out;
}

for (const preset of LLAMA_PRESETS) {
  Deno.test(`IA³ takes PEFT's defaults for the model_type and is a no-op at initialisation (${preset})`, async () => {
    const { cfg, model } = await llamaSetup(preset, 1);
    const inputs = llamaBatch(cfg, B, T, 1);
    const before = (await allLogits(model, inputs, B, T)).logits;
    const inst = await ia3.apply(model, ia3.validate({}), 0);
    assert.deepEqual(inst.config.target_modules, DEFAULTS[cfg.model_type]);
    assert.deepEqual(inst.config.feedforward_modules, ["down_proj"]);
    const d = cfg.head_dim, F = cfg.intermediate_size;
    const width: Record<string, number> = {
      q_proj: cfg.num_attention_heads * d,
      k_proj: cfg.num_key_value_heads * d,
      v_proj: cfg.num_key_value_heads * d,
    };
    assert.deepEqual(
      inst.layers.map((l) => [l.path, l.feedforward, l.l.shape]),
      [0, 1].flatMap((layer) =>
        DEFAULTS[cfg.model_type].map((name) => {
          const mod = name === "down_proj" ? `mlp.${name}` : `self_attn.${name}`;
          const shape = name === "down_proj" ? [1, F] : [width[name], 1];
          return [`model.layers.${layer}.${mod}`, name === "down_proj", shape];
        })
      ),
    );
    assert.deepEqual((await allLogits(model, inputs, B, T)).logits, before, "bit-identical");
    model.release();
  });

  Deno.test(`IA³ gradients of the scaling vectors match the float64 reference through the folded weights (${preset})`, async () => {
    const { cfg, w, model } = await llamaSetup(preset, 2);
    const inst = await ia3.apply(
      model,
      ia3.validate({
        target_modules: ["all-linear"],
        feedforward_modules: ["o_proj", "down_proj"],
      }),
      0,
    );
    assert.equal(inst.layers.length, 7 * cfg.num_hidden_layers);
    const scales = randomScales(inst, 3);
    const inputs = llamaBatch(cfg, B, T, 4);
    // Output scaling folds l into W's rows (out, in) and the bias; input scaling into its columns.
    const eff: Weights = new Map([...w].map(([k, v]) => [k, v.slice()]));
    for (const layer of inst.layers) {
      const l = scales.get(layer.path)!, W = eff.get(`${layer.path}.weight`)!;
      const bias = eff.get(`${layer.path}.bias`);
      for (let o = 0; o < layer.nOut; o++) {
        for (let i = 0; i < layer.nIn; i++) W[o * layer.nIn + i] *= layer.feedforward ? l[i] : l[o];
        if (bias && !layer.feedforward) bias[o] *= l[o];
      }
    }
    const ref = llamaRef(cfg, eff, inputs.ids, inputs.labels, B, T, true);
    const { logits } = await allLogits(model, inputs, B, T);
    // f32 through two blocks with O(1) activations (as tests/models/llama_test.ts).
    assertClose(logits, ref.logits, { rtol: 1e-4, atol: 1e-5 }, "logits");
    const grads = await gradsOf(model, inputs, B, T, inst.layers.map((l) => l.l));
    inst.layers.forEach((layer, k) => {
      const W = w.get(`${layer.path}.weight`)!, bias = w.get(`${layer.path}.bias`);
      const dW = ref.grads!.get(`${layer.path}.weight`)!,
        dBias = ref.grads!.get(`${layer.path}.bias`);
      const dl = new Float64Array(layer.l.value.size);
      for (let o = 0; o < layer.nOut; o++) {
        for (let i = 0; i < layer.nIn; i++) {
          dl[layer.feedforward ? i : o] += dW[o * layer.nIn + i] * W[o * layer.nIn + i];
        }
        if (bias && !layer.feedforward) dl[o] += dBias![o] * bias[o];
      }
      assertClose(grads[k], dl, gradTol(dl), `d ${layer.path}.ia3_l`);
    });
    for (const p of model.params.values()) assert.equal(p.grad, null, `${p.name} frozen`);
    model.release();
  });

  Deno.test(`IA³ merge() scales (out, in) weights and biases by orientation; unmerge() restores them (${preset})`, async () => {
    const { cfg, w, model } = await llamaSetup(preset, 5);
    // q/k/v carry biases on qwen2-tiny; down_proj's input and o_proj's output are scaled.
    const inst = await ia3.apply(
      model,
      ia3.validate({
        target_modules: ["q_proj", "k_proj", "o_proj", "down_proj"],
        feedforward_modules: ["down_proj"],
      }),
      0,
    );
    randomScales(inst, 6);
    const inputs = llamaBatch(cfg, B, T, 7);
    const unmerged = (await allLogits(model, inputs, B, T)).logits;
    const report = await inst.merge();
    const biased = cfg.attention_bias;
    assert.deepEqual(
      report.merged,
      [0, 1].flatMap((l) => {
        const a = `model.layers.${l}.self_attn.`;
        return [
          `${a}q_proj.weight`,
          ...(biased ? [`${a}q_proj.bias`] : []),
          `${a}k_proj.weight`,
          ...(biased ? [`${a}k_proj.bias`] : []),
          `${a}o_proj.weight`,
          `model.layers.${l}.mlp.down_proj.weight`,
        ];
      }),
    );
    const merged = (await allLogits(model, inputs, B, T)).logits;
    // Merging reassociates one product per weight ((x·Wᵀ)·l vs x·(W·l)ᵀ): f32 rounding only.
    assertClose(merged, unmerged, { rtol: 1e-5, atol: 1e-5 }, "merged logits");
    await assert.rejects(() => inst.merge(), /already merged/);
    await inst.unmerge();
    const weights = await model.exportWeights();
    for (const [name, v] of w) {
      // W·l/l: a multiply and a division, each rounded (≤ 3.5 ulp).
      assertClose(weights.get(name)!.data, v, { rtol: 5e-7, atol: 0 }, `${name} restored`);
    }
    model.release();
  });

  Deno.test(`IA³ saves PEFT's layout for ${preset} (keys, shapes, fan_in_fan_out false) and loads it back exactly`, async () => {
    const { cfg, model } = await llamaSetup(preset, 8);
    const inst = await ia3.apply(model, ia3.validate({}), 0);
    randomScales(inst, 9);
    const dir = await Deno.makeTempDir();
    try {
      await inst.save(dir, `whet/${preset}`);
      const json = JSON.parse(await Deno.readTextFile(`${dir}/adapter_config.json`));
      assert.deepEqual(Object.keys(json), Object.keys(json).sort(), "keys sorted");
      assert.equal(json.peft_type, "IA3");
      assert.equal(json.task_type, "CAUSAL_LM");
      assert.equal(json.fan_in_fan_out, false);
      assert.equal(json.base_model_name_or_path, `whet/${preset}`);
      assert.deepEqual(json.target_modules, DEFAULTS[cfg.model_type]);
      assert.deepEqual(json.feedforward_modules, ["down_proj"]);
      const st = await readSafetensors(`${dir}/adapter_model.safetensors`);
      assert.deepEqual(st.metadata, { format: "pt" });
      const expected = inst.layers.map((l) => `base_model.model.${l.path}.ia3_l`);
      assert.ok(expected[0].startsWith("base_model.model.model.layers.0."), expected[0]);
      assert.deepEqual(st.names().sort(), expected.slice().sort());
      for (const l of inst.layers) {
        assert.deepEqual(st.tensor(`base_model.model.${l.path}.ia3_l`).shape, l.l.shape);
      }
      const { model: fresh } = await llamaSetup(preset, 8);
      const again = await ia3.apply(fresh, await readIA3Config(dir), 0);
      await again.load(dir);
      const inputs = llamaBatch(cfg, B, T, 10);
      assert.deepEqual(
        (await allLogits(fresh, inputs, B, T)).logits,
        (await allLogits(model, inputs, B, T)).logits,
      );
      fresh.release();
    } finally {
      await Deno.remove(dir, { recursive: true });
      model.release();
    }
  });
}

Deno.test("IA³ with explicit targets keeps the family's feed-forward default only among them", async () => {
  const { model } = await llamaSetup("llama-tiny", 11);
  const inst = await ia3.apply(model, ia3.validate({ target_modules: ["v_proj"] }), 0);
  assert.deepEqual(inst.config.feedforward_modules, [], "down_proj is not a target");
  assert.ok(inst.layers.every((l) => !l.feedforward));
  assert.throws(
    () => ia3.validate({ target_modules: ["v_proj"], feedforward_modules: ["down_proj"] }),
    /feedforward module "down_proj" is not among target_modules/,
  );
  // A string is a regular expression over the whole module path, as PEFT reads it.
  assert.equal(
    ia3.validate({ feedforward_modules: ".*down_proj" }).feedforward_modules,
    ".*down_proj",
  );
  assert.throws(() => ia3.validate({ feedforward_modules: "(" }), /not a valid regular expression/);
  assert.throws(() => ia3.validate({ feedforward_modules: 3 }), /must be a list/);
  model.release();
});
