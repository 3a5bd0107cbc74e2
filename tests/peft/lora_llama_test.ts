/**
 * LoRA on the Llama family (nn.Linear weights stored (out, in)): gradients against the float64
 * reference through the merged weight, merge/unmerge, PEFT's file layout for LlamaForCausalLM /
 * Qwen2ForCausalLM, and PEFT's target rules.
 */
import assert from "node:assert/strict";
import {
  type Decoder,
  GPT,
  lora,
  type LoraInstance,
  readLoraConfig,
  readSafetensors,
  Rng,
} from "../../mod.ts";
import { assertClose, gpu } from "../helpers.ts";
import { SMALL } from "../models/_fixtures.ts";
import { llamaRef, type Weights } from "../ref/llama.ts";
import { gradTol } from "../ref/peft.ts";
import { allLogits, LLAMA_PRESETS, llamaBatch, llamaSetup } from "./_llama.ts";

const B = 2, T = 6;

/** Gives every B a random value so the adapter changes the model (B starts at zero). */
async function randomizeB(model: Decoder, inst: LoraInstance, seed: number): Promise<void> {
  const rng = new Rng(seed);
  for (const p of inst.added) {
    if (p.name.includes("lora_B")) {
      p.value.write(rng.fillNormal(new Float32Array(p.value.size), 0.5) as Float32Array);
    }
  }
  await model.gpu.sync();
}

/** A and B of every adapted layer in float64, by whet parameter name. */
async function loraValues(
  model: Decoder,
  inst: LoraInstance,
): Promise<Map<string, Float64Array>> {
  const data = await model.gpu.read(inst.added.map((p) => p.value));
  return new Map(inst.added.map((p, i) => [p.name, Float64Array.from(data[i])]));
}

for (const preset of LLAMA_PRESETS) {
  Deno.test(`LoRA gradients of A and B on every linear layer match the float64 reference through the merged weight (${preset})`, async () => {
    const { cfg, w, model } = await llamaSetup(preset, 4);
    const config = lora.validate({ r: 3, lora_alpha: 6, target_modules: ["all-linear"] });
    const inst = await lora.apply(model, config, 5);
    assert.deepEqual(inst.config.target_modules, [
      "q_proj",
      "k_proj",
      "v_proj",
      "o_proj",
      "gate_proj",
      "up_proj",
      "down_proj",
    ]);
    assert.equal(inst.layers.length, 7 * cfg.num_hidden_layers, "every linear layer, not the head");
    await randomizeB(model, inst, 6);
    const inputs = llamaBatch(cfg, B, T, 7);
    const acts = model.activations(B, T);
    const batch = model.gpu.batch();
    model.zeroGrad(batch);
    model.forward(batch, acts, inputs, { training: true });
    model.backward(batch, acts);
    await batch.submit();
    const grads = await model.exportGrads();
    acts.release();
    assert.deepEqual(
      [...grads.keys()].sort(),
      inst.added.map((p) => p.name).sort(),
      "only LoRA parameters have gradients",
    );

    // Reference: W_eff (out,in) = W + s·B·A; dA = s·Bᵀ·dW_eff (r,in), dB = s·dW_eff·Aᵀ (out,r).
    const s = config.lora_alpha / config.r, r = config.r;
    const values = await loraValues(model, inst);
    const eff: Weights = new Map([...w].map(([k, v]) => [k, v.slice()]));
    for (const l of inst.layers) {
      const A = values.get(`${l.path}.lora_A.default.weight`)!;
      const Bm = values.get(`${l.path}.lora_B.default.weight`)!;
      const W = eff.get(`${l.path}.weight`)!;
      for (let o = 0; o < l.nOut; o++) {
        for (let i = 0; i < l.nIn; i++) {
          let acc = 0;
          for (let k = 0; k < r; k++) acc += Bm[o * r + k] * A[k * l.nIn + i];
          W[o * l.nIn + i] += s * acc;
        }
      }
    }
    const ref = llamaRef(cfg, eff, inputs.ids, inputs.labels, B, T, true);
    for (const l of inst.layers) {
      const A = values.get(`${l.path}.lora_A.default.weight`)!;
      const Bm = values.get(`${l.path}.lora_B.default.weight`)!;
      const dW = ref.grads!.get(`${l.path}.weight`)!;
      const dA = new Float64Array(r * l.nIn), dB = new Float64Array(l.nOut * r);
      for (let k = 0; k < r; k++) {
        for (let o = 0; o < l.nOut; o++) {
          for (let i = 0; i < l.nIn; i++) {
            dA[k * l.nIn + i] += s * Bm[o * r + k] * dW[o * l.nIn + i];
            dB[o * r + k] += s * dW[o * l.nIn + i] * A[k * l.nIn + i];
          }
        }
      }
      // Sums over B·T rows and the rank of f32 products through two blocks: relative to the
      // largest entry (tests/ref/peft.ts gradTol).
      assertClose(grads.get(`${l.path}.lora_A.default.weight`)!, dA, gradTol(dA), `${l.path} dA`);
      assertClose(grads.get(`${l.path}.lora_B.default.weight`)!, dB, gradTol(dB), `${l.path} dB`);
    }
    model.release();
  });

  Deno.test(`LoRA merge() on (out, in) weights keeps the outputs and unmerge() restores the weights (${preset})`, async () => {
    const { cfg, w, model } = await llamaSetup(preset, 8);
    const inputs = llamaBatch(cfg, B, T, 3);
    const base = (await allLogits(model, inputs, B, T)).logits;
    const inst = await lora.apply(
      model,
      lora.validate({ r: 4, lora_alpha: 16, target_modules: ["k_proj", "o_proj", "mlp.up_proj"] }),
      1,
    );
    assert.deepEqual((await allLogits(model, inputs, B, T)).logits, base, "a no-op until trained");
    await randomizeB(model, inst, 2);
    const unmerged = (await allLogits(model, inputs, B, T)).logits;
    assert.notDeepEqual(unmerged, base);
    const report = await inst.merge();
    assert.equal(report.merged.length, 3 * cfg.num_hidden_layers);
    const merged = (await allLogits(model, inputs, B, T)).logits;
    // f32 rounding of W + s·B·A versus computing the two products separately.
    assertClose(merged, unmerged, { rtol: 1e-4, atol: 1e-4 }, "merged logits");
    await assert.rejects(inst.merge(), /already merged/);
    await inst.unmerge();
    await assert.rejects(inst.unmerge(), /not merged/);
    const restored = await model.exportWeights();
    for (const [name, v] of w) {
      // W + s·B·A − s·B·A: two f32 roundings of a value of W's magnitude.
      assertClose(restored.get(name)!.data, v, { rtol: 1e-6, atol: 1e-6 }, `${name} restored`);
    }
    assertClose(
      (await allLogits(model, inputs, B, T)).logits,
      unmerged,
      { rtol: 1e-5, atol: 1e-5 },
      "logits after unmerge",
    );
    model.release();
  });

  Deno.test(`LoRA save() writes PEFT's LlamaForCausalLM layout and load() restores it exactly (${preset})`, async () => {
    const { cfg, model } = await llamaSetup(preset, 9);
    const dir = await Deno.makeTempDir();
    try {
      const inst = await lora.apply(model, lora.validate({ r: 4, lora_alpha: 8 }), 1);
      await randomizeB(model, inst, 2);
      await inst.save(dir, `whet/${preset}`);
      const json = JSON.parse(await Deno.readTextFile(`${dir}/adapter_config.json`));
      assert.deepEqual(Object.keys(json), Object.keys(json).slice().sort(), "keys sorted");
      assert.equal(json.peft_type, "LORA");
      assert.equal(json.task_type, "CAUSAL_LM");
      assert.equal(json.base_model_name_or_path, `whet/${preset}`);
      assert.equal(json.fan_in_fan_out, false, "nn.Linear weights are (out, in)");
      assert.deepEqual(json.target_modules, ["q_proj", "v_proj"], "PEFT's default for llama/qwen2");
      assert.equal(json.r, 4);
      assert.equal(json.lora_alpha, 8);
      const st = await readSafetensors(`${dir}/adapter_model.safetensors`);
      assert.deepEqual(st.metadata, { format: "pt" });
      const C = cfg.hidden_size, d = cfg.head_dim;
      const expected = new Map<string, number[]>();
      for (let l = 0; l < cfg.num_hidden_layers; l++) {
        const at = `base_model.model.model.layers.${l}.self_attn.`;
        expected.set(`${at}q_proj.lora_A.weight`, [4, C]);
        expected.set(`${at}q_proj.lora_B.weight`, [cfg.num_attention_heads * d, 4]);
        expected.set(`${at}v_proj.lora_A.weight`, [4, C]);
        expected.set(`${at}v_proj.lora_B.weight`, [cfg.num_key_value_heads * d, 4]);
      }
      assert.deepEqual(st.names().sort(), [...expected.keys()].sort());
      for (const [key, shape] of expected) assert.deepEqual(st.tensor(key).shape, shape, key);
      const values = await loraValues(model, inst);
      for (const l of inst.layers) {
        const key = `base_model.model.${l.path}.lora_A.weight`;
        assert.deepEqual(
          st.tensor(key).data,
          Float32Array.from(values.get(`${l.path}.lora_A.default.weight`)!),
          `${key} holds A`,
        );
      }

      const { model: fresh } = await llamaSetup(preset, 9);
      const config = await readLoraConfig(dir);
      const again = await lora.apply(fresh, config, 99);
      await again.load(dir);
      const inputs = llamaBatch(cfg, B, T, 4);
      assert.deepEqual(
        (await allLogits(fresh, inputs, B, T)).logits,
        (await allLogits(model, inputs, B, T)).logits,
        "bit-exact",
      );
      const back = await loraValues(fresh, again);
      for (const [name, v] of values) assert.deepEqual(back.get(name), v, name);
      fresh.release();
    } finally {
      await Deno.remove(dir, { recursive: true });
      model.release();
    }
  });
}

Deno.test("a LoRA file's fan_in_fan_out is corrected to the layer's layout, as PEFT does (both families)", async () => {
  const { cfg, model } = await llamaSetup("llama-tiny", 10);
  const g = await gpu();
  const dir = await Deno.makeTempDir();
  try {
    const inst = await lora.apply(model, lora.validate({ r: 2 }), 1);
    await randomizeB(model, inst, 3);
    await inst.save(dir);
    // A Llama adapter that claims Conv1D weights: PEFT warns and sets it to false.
    const file = `${dir}/adapter_config.json`;
    const json = JSON.parse(await Deno.readTextFile(file));
    await Deno.writeTextFile(file, JSON.stringify({ ...json, fan_in_fan_out: true }));
    const { model: fresh } = await llamaSetup("llama-tiny", 10);
    const again = await lora.apply(fresh, await readLoraConfig(dir), 0);
    await again.load(dir);
    const inputs = llamaBatch(cfg, B, T, 5);
    assert.deepEqual(
      (await allLogits(fresh, inputs, B, T)).logits,
      (await allLogits(model, inputs, B, T)).logits,
    );
    assert.equal(again.adapterConfig().fan_in_fan_out, false, "written as the layers are");
    fresh.release();

    // A GPT-2 adapter that claims nn.Linear weights: PEFT warns and sets it to true.
    const gpt = await GPT.create(g, SMALL, { seed: 2 });
    const gi = await lora.apply(gpt, lora.validate({ r: 2 }), 1);
    await gi.save(dir);
    const gjson = JSON.parse(await Deno.readTextFile(file));
    await Deno.writeTextFile(file, JSON.stringify({ ...gjson, fan_in_fan_out: false }));
    const gpt2 = await GPT.create(g, SMALL, { seed: 2 });
    const gi2 = await lora.apply(gpt2, await readLoraConfig(dir), 0);
    await gi2.load(dir);
    assert.equal(gi2.adapterConfig().fan_in_fan_out, true);
    gpt.release();
    gpt2.release();
  } finally {
    await Deno.remove(dir, { recursive: true });
    model.release();
  }
});

Deno.test("LoRA target_modules follow PEFT: suffix rule, all-linear and defaults by model_type", async () => {
  const g = await gpu();
  const { model } = await llamaSetup("qwen2-tiny", 11);
  const paths = async (targets: unknown) => {
    const { model: m } = await llamaSetup("qwen2-tiny", 11);
    const inst = await lora.apply(m, lora.validate({ target_modules: targets }), 0);
    const out = inst.layers.map((l) => l.path);
    m.release();
    return out;
  };
  assert.deepEqual(await paths(["mlp.down_proj"]), [
    "model.layers.0.mlp.down_proj",
    "model.layers.1.mlp.down_proj",
  ]);
  assert.deepEqual(await paths(["layers.1.self_attn.o_proj"]), [
    "model.layers.1.self_attn.o_proj",
  ]);
  assert.equal((await paths("all-linear")).length, 14, "the string form PEFT writes");
  await assert.rejects(
    lora.apply(model, lora.validate({ target_modules: ["proj"] }), 0),
    /match none of self_attn.q_proj/,
    "not a partial segment",
  );
  assert.throws(() => lora.validate({ target_modules: [] }), /"target_modules" is empty/);
  assert.throws(
    () => lora.validate({ target_modules: ["all-linear", "q_proj"] }),
    /"all-linear" beside other names/,
  );
  assert.throws(() => lora.validate({ target_modules: 3 }), /key "target_modules" must be/);
  const inst = await lora.apply(model, lora.validate({}), 0);
  assert.equal(inst.describe(), "LoRA r=8 alpha=8 (scaling 1) on q_proj, v_proj, 4 modules");
  const gpt = await GPT.create(g, SMALL, { seed: 1 });
  const gi = await lora.apply(gpt, lora.validate({ target_modules: ["all-linear"] }), 0);
  assert.deepEqual(gi.config.target_modules, ["c_attn", "c_proj", "c_fc"]);
  assert.equal(gi.layers.length, 4 * SMALL.n_layer, "c_proj is both attn.c_proj and mlp.c_proj");
  gpt.release();
  model.release();
});
