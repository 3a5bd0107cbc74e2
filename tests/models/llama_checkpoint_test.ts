import assert from "node:assert/strict";
import {
  gpt2ParameterShapes,
  HF_CONFIG_FILE,
  HF_WEIGHTS_FILE,
  loadHFCheckpoint,
  loadModelCheckpoint,
  parseModelCheckpoint,
  saveHFCheckpoint,
  saveModelCheckpoint,
} from "../../models/checkpoint.ts";
import { PRESETS } from "../../models/config.ts";
import {
  llamaParameterShapes,
  llamaTensorsFromSafetensors,
  serializeLlamaCheckpoint,
} from "../../models/llama_checkpoint.ts";
import {
  LLAMA_PRESETS,
  type LlamaConfig,
  llamaConfig,
  llamaConfigToHF,
  type LlamaPresetName,
} from "../../models/llama_config.ts";
import {
  parseSafetensors,
  serializeSafetensors,
  type TensorData,
  type WriteDtype,
} from "../../models/safetensors.ts";

const TINY_PRESETS: LlamaPresetName[] = ["llama-tiny", "smollm-tiny", "qwen2-tiny"];

/** Random parameters for `cfg` (a small LCG, so that each tensor differs). */
function params(
  shapes: Map<string, readonly number[]>,
  seed = 1,
): Map<string, TensorData> {
  let s = seed;
  const out = new Map<string, TensorData>();
  for (const [name, shape] of shapes) {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) {
      s = (s * 1103515245 + 12345) % 2 ** 31;
      data[i] = s / 2 ** 31 - 0.5;
    }
    out.set(name, { shape, data });
  }
  return out;
}

const llamaParams = (cfg: LlamaConfig, seed = 1) => params(llamaParameterShapes(cfg), seed);

/** A model.safetensors as other tools write it: any dtype, extra tensors. */
function file(
  tensors: Map<string, TensorData>,
  extra: [string, TensorData][] = [],
  dtype?: WriteDtype,
): Uint8Array {
  return serializeSafetensors([...tensors, ...extra], { dtype });
}

const json = (cfg: LlamaConfig) => JSON.parse(JSON.stringify(llamaConfigToHF(cfg)));

function sameTensors(a: Map<string, TensorData>, b: Map<string, TensorData>): void {
  assert.deepEqual([...b.keys()], [...a.keys()]);
  for (const [name, t] of a) {
    assert.deepEqual([...b.get(name)!.shape], [...t.shape], name);
    assert.deepEqual(b.get(name)!.data, t.data, name);
  }
}

function count(shapes: Map<string, readonly number[]>): number {
  let total = 0;
  for (const s of shapes.values()) total += s.reduce((a, b) => a * b, 1);
  return total;
}

Deno.test("`llamaParameterShapes()` lists HF names and [out, in] shapes in state_dict order", () => {
  const cfg = LLAMA_PRESETS["llama-tiny"]; // V 256, C 48, F 88, H 4, Hkv 2, d 12, untied
  const shapes = llamaParameterShapes(cfg);
  assert.equal(shapes.size, 1 + 2 * 9 + 2);
  assert.deepEqual([...shapes].slice(0, 11), [
    ["model.embed_tokens.weight", [256, 48]],
    ["model.layers.0.input_layernorm.weight", [48]],
    ["model.layers.0.self_attn.q_proj.weight", [48, 48]],
    ["model.layers.0.self_attn.k_proj.weight", [24, 48]],
    ["model.layers.0.self_attn.v_proj.weight", [24, 48]],
    ["model.layers.0.self_attn.o_proj.weight", [48, 48]],
    ["model.layers.0.post_attention_layernorm.weight", [48]],
    ["model.layers.0.mlp.gate_proj.weight", [88, 48]],
    ["model.layers.0.mlp.up_proj.weight", [88, 48]],
    ["model.layers.0.mlp.down_proj.weight", [48, 88]],
    ["model.layers.1.input_layernorm.weight", [48]],
  ]);
  assert.deepEqual([...shapes].slice(-2), [
    ["model.norm.weight", [48]],
    ["lm_head.weight", [256, 48]],
  ]);

  // Tied: no lm_head.weight. Qwen2: q/k/v biases, none on o_proj or the MLP.
  const qwen = llamaParameterShapes(LLAMA_PRESETS["qwen2-tiny"]); // C 40, H 4, Hkv 2, d 10
  assert.ok(!qwen.has("lm_head.weight"));
  assert.deepEqual(
    [...qwen].filter(([n]) => n.startsWith("model.layers.0.self_attn.")),
    [
      ["model.layers.0.self_attn.q_proj.weight", [40, 40]],
      ["model.layers.0.self_attn.q_proj.bias", [40]],
      ["model.layers.0.self_attn.k_proj.weight", [20, 40]],
      ["model.layers.0.self_attn.k_proj.bias", [20]],
      ["model.layers.0.self_attn.v_proj.weight", [20, 40]],
      ["model.layers.0.self_attn.v_proj.bias", [20]],
      ["model.layers.0.self_attn.o_proj.weight", [40, 40]],
    ],
  );
  assert.equal([...qwen.keys()].filter((n) => n.includes("mlp") && n.endsWith(".bias")).length, 0);

  // Llama with attention_bias and mlp_bias: all seven projections have biases. A head_dim that
  // is not C / H makes q_proj [H·d, C] and o_proj [C, H·d].
  const biased = llamaParameterShapes({ ...cfg, attention_bias: true, mlp_bias: true });
  assert.equal([...biased.keys()].filter((n) => n.endsWith(".bias")).length, 2 * 7);
  assert.deepEqual(biased.get("model.layers.1.self_attn.o_proj.bias"), [48]);
  assert.deepEqual(biased.get("model.layers.1.mlp.down_proj.bias"), [48]);
  const wide = llamaParameterShapes(llamaConfig("llama-tiny", { head_dim: 16 }));
  assert.deepEqual(wide.get("model.layers.0.self_attn.q_proj.weight"), [64, 48]);
  assert.deepEqual(wide.get("model.layers.0.self_attn.k_proj.weight"), [32, 48]);
  assert.deepEqual(wide.get("model.layers.0.self_attn.o_proj.weight"), [48, 64]);
});

Deno.test("`llamaParameterShapes()` counts the real models' published parameters exactly", () => {
  // SmolLM2-135M: V 49152, C 576, F 1536, 30 layers, H 9, Hkv 3, d 64, tied.
  //   embed 49152·576 = 28,311,552; per layer q/o 2·576·576 + k/v 2·192·576 + MLP 3·576·1536
  //   + norms 2·576 = 3,540,096, × 30 = 106,202,880; final norm 576.
  // SmolLM2-360M: V 49152, C 960, F 2560, 32 layers, H 15, Hkv 5, d 64, tied.
  //   47,185,920 + 32 · (2·960·960 + 2·320·960 + 3·960·2560 + 2·960 = 9,832,320) + 960.
  // Qwen2.5-0.5B: V 151936, C 896, F 4864, 24 layers, H 14, Hkv 2, d 64, q/k/v biases, tied.
  //   136,134,656 + 24 · (2·896·896 + 2·128·896 + 896 + 2·128 + 3·896·4864 + 2·896
  //   = 14,912,384) + 896.
  // TinyLlama-1.1B: V 32000, C 2048, F 5632, 22 layers, H 32, Hkv 4, d 64, untied.
  //   2 · 32000·2048 (embed + head) + 22 · (2·2048·2048 + 2·256·2048 + 3·2048·5632 + 2·2048
  //   = 44,044,288) + 2048.
  const expected: [LlamaPresetName, number][] = [
    ["smollm2-135m", 134_515_008], // ≈ 134.5M
    ["smollm2-360m", 361_821_120], // ≈ 361.8M
    ["qwen2.5-0.5b", 494_032_768], // ≈ 494.0M
    ["tinyllama-1.1b", 1_100_048_384], // ≈ 1,100.0M
  ];
  for (const [name, total] of expected) {
    assert.equal(count(llamaParameterShapes(LLAMA_PRESETS[name])), total, name);
  }
  assert.equal(llamaParameterShapes(LLAMA_PRESETS["smollm2-135m"]).size, 1 + 30 * 9 + 1);
  assert.equal(llamaParameterShapes(LLAMA_PRESETS["qwen2.5-0.5b"]).size, 1 + 24 * 12 + 1);
  assert.equal(llamaParameterShapes(LLAMA_PRESETS["tinyllama-1.1b"]).size, 1 + 22 * 9 + 2);
});

Deno.test("`saveModelCheckpoint()` and `loadModelCheckpoint()` round-trip each tiny preset through a folder", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (const [i, name] of TINY_PRESETS.entries()) {
      const config = LLAMA_PRESETS[name];
      const weights = llamaParams(config, 10 + i);
      const out = `${dir}/${name}/nested`;
      await saveModelCheckpoint(out, config, weights);
      const files = (await Array.fromAsync(Deno.readDir(out))).map((e) => e.name).sort();
      assert.deepEqual(files, [HF_CONFIG_FILE, HF_WEIGHTS_FILE], "no temporary files left");
      const back = await loadModelCheckpoint(out);
      assert.equal(back.family, "llama");
      assert.deepEqual(back.config, { ...config });
      sameTensors(weights, back.weights);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("`serializeLlamaCheckpoint()` writes save_pretrained's names, F32, metadata and config.json", () => {
  for (const name of TINY_PRESETS) {
    const config = LLAMA_PRESETS[name];
    const tensors = llamaParams(config);
    const files = serializeLlamaCheckpoint(config, tensors);
    const st = parseSafetensors(files.weights);
    assert.deepEqual({ ...st.metadata }, { format: "pt" });
    assert.deepEqual(st.names().sort(), [...tensors.keys()].sort(), name);
    assert.equal(st.names().includes("lm_head.weight"), !config.tie_word_embeddings, name);
    assert.ok(st.names().every((n) => st.entry(n).dtype === "F32"));
    assert.ok(files.config.startsWith('{\n  "architectures": [\n'), "2-space indent");
    assert.ok(files.config.endsWith("}\n"));
    assert.deepEqual(JSON.parse(files.config), llamaConfigToHF(config));
  }
  const config = LLAMA_PRESETS["llama-tiny"];
  const bf16 = serializeLlamaCheckpoint(config, llamaParams(config), { dtype: "BF16" });
  assert.equal(parseSafetensors(bf16.weights).entry("model.norm.weight").dtype, "BF16");
});

Deno.test("`parseModelCheckpoint()` reads F16 and BF16 files of each tiny preset within rounding", () => {
  for (const name of TINY_PRESETS) {
    const config = LLAMA_PRESETS[name];
    const tensors = llamaParams(config, 5);
    // Values lie in [-0.5, 0.5): f16 keeps 11 significant bits (error ≤ 2^-12 there), bf16 8
    // (relative error ≤ 2^-8 after rounding to nearest).
    const bounds: [WriteDtype, (x: number) => number][] = [
      ["F16", () => 2 ** -12],
      ["BF16", (x) => Math.abs(x) * 2 ** -8],
    ];
    for (const [dtype, bound] of bounds) {
      const back = parseModelCheckpoint(json(config), file(tensors, [], dtype));
      assert.equal(back.family, "llama");
      assert.deepEqual([...back.weights.keys()], [...tensors.keys()]);
      for (const [n, t] of tensors) {
        const r = back.weights.get(n)!.data;
        assert.ok(r.every((x, i) => Math.abs(x - t.data[i]) <= bound(t.data[i])), `${name} ${n}`);
      }
      const w = back.weights.get("model.layers.1.mlp.down_proj.weight")!.data;
      const orig = tensors.get("model.layers.1.mlp.down_proj.weight")!.data;
      assert.ok(w.some((x, i) => x !== orig[i]), `${dtype}: stored rounded, not as f32`);
    }
  }
});

Deno.test("`llamaTensorsFromSafetensors()` skips rotary buffers and a tied checkpoint's stored lm_head", () => {
  const config = LLAMA_PRESETS["smollm-tiny"];
  const tensors = llamaParams(config);
  const head = { shape: [256, 36], data: new Float32Array(256 * 36).fill(3) };
  const extra: [string, TensorData][] = [
    ["lm_head.weight", head],
    ["model.layers.0.self_attn.rotary_emb.inv_freq", { shape: [6], data: new Float32Array(6) }],
    ["model.layers.1.self_attn.rotary_emb.inv_freq", { shape: [6], data: new Float32Array(6) }],
    ["model.rotary_emb.inv_freq", { shape: [6], data: new Float32Array(6) }],
  ];
  const weights = llamaTensorsFromSafetensors(parseSafetensors(file(tensors, extra)), config);
  sameTensors(tensors, weights);
  assert.ok(!weights.has("lm_head.weight"), "transformers ties it to embed_tokens: ignored");
  const small = { shape: [2, 36], data: new Float32Array(72) };
  assert.throws(
    () =>
      llamaTensorsFromSafetensors(
        parseSafetensors(file(tensors, [["lm_head.weight", small]]), "ck/model.safetensors"),
        config,
      ),
    /ck\/model\.safetensors: tensor "lm_head\.weight" has shape \[2, 36\]; the config needs \[256, 36\]/,
  );
});

Deno.test("`llamaTensorsFromSafetensors()` rejects missing, misshapen and unexpected tensors naming them and the file", () => {
  const config = LLAMA_PRESETS["qwen2-tiny"];
  const tensors = llamaParams(config);
  const load = (bytes: Uint8Array, cfg: LlamaConfig = config) => () =>
    llamaTensorsFromSafetensors(parseSafetensors(bytes, "ck/model.safetensors"), cfg);
  const prefix = /^Error: Cannot load Llama weights from ck\/model\.safetensors: /;

  const missing = new Map(tensors);
  missing.delete("model.layers.1.self_attn.k_proj.bias");
  assert.throws(load(file(missing)), prefix);
  assert.throws(load(file(missing)), /missing tensor "model\.layers\.1\.self_attn\.k_proj\.bias"$/);

  const wrong = new Map(tensors);
  wrong.set("model.layers.0.self_attn.k_proj.weight", {
    shape: [40, 20],
    data: new Float32Array(800),
  });
  assert.throws(
    load(file(wrong)),
    /tensor "model\.layers\.0\.self_attn\.k_proj\.weight" has shape \[40, 20\]; the config needs \[20, 40\]/,
  );

  const extra: [string, TensorData][] = [
    ["model.layers.2.input_layernorm.weight", { shape: [40], data: new Float32Array(40) }],
  ];
  assert.throws(
    load(file(tensors, extra)),
    /unexpected tensor "model\.layers\.2\.input_layernorm\.weight" \(this qwen2 config has 26 parameter tensors/,
  );

  // Qwen2 weights read with a Llama config: the biases are not dropped silently.
  const asLlama: LlamaConfig = { ...config, model_type: "llama", attention_bias: false };
  assert.throws(
    load(file(tensors), asLlama),
    /unexpected tensors "model\.layers\.0\.self_attn\.k_proj\.bias", .* and 1 more \(this llama config/,
  );

  // An untied config needs lm_head.weight.
  const untied: LlamaConfig = { ...config, tie_word_embeddings: false };
  assert.throws(
    load(file(tensors), untied),
    /missing tensor "lm_head\.weight" \(config\.json has "tie_word_embeddings": false\)/,
  );
});

Deno.test("`loadModelCheckpoint()` reads GPT-2 folders as `loadHFCheckpoint()` does", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const config = { ...PRESETS.tiny, n_layer: 1 };
    const weights = params(gpt2ParameterShapes(config), 3);
    await saveHFCheckpoint(dir, config, weights);
    const back = await loadModelCheckpoint(dir);
    const gpt = await loadHFCheckpoint(dir);
    assert.equal(back.family, "gpt2");
    assert.deepEqual(back.config, gpt.config);
    sameTensors(gpt.tensors, back.weights);

    // A config.json without model_type is GPT-2, as before; saveModelCheckpoint writes GPT-2 too.
    const plain = JSON.parse(await Deno.readTextFile(`${dir}/${HF_CONFIG_FILE}`));
    delete plain.model_type;
    await Deno.writeTextFile(`${dir}/${HF_CONFIG_FILE}`, JSON.stringify(plain));
    assert.equal((await loadModelCheckpoint(dir)).family, "gpt2");
    await saveModelCheckpoint(dir, config, weights);
    const again = await loadModelCheckpoint(dir);
    assert.equal(again.family, "gpt2");
    sameTensors(weights, again.weights);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("`loadModelCheckpoint()` names an unknown model_type, a sharded checkpoint and a bad config", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const config = LLAMA_PRESETS["llama-tiny"];
    const files = serializeLlamaCheckpoint(config, llamaParams(config));
    await Deno.writeFile(`${dir}/${HF_WEIGHTS_FILE}`, files.weights);
    await Deno.writeTextFile(
      `${dir}/${HF_CONFIG_FILE}`,
      JSON.stringify({ ...JSON.parse(files.config), model_type: "xyz" }),
    );
    await assert.rejects(
      loadModelCheckpoint(dir),
      new RegExp(
        `^Error: Cannot load ${dir}/config\\.json: model_type "xyz" is not supported ` +
          `\\(supported: gpt2, llama, qwen2\\)$`,
      ),
    );
    await Deno.writeTextFile(
      `${dir}/${HF_CONFIG_FILE}`,
      JSON.stringify({ ...JSON.parse(files.config), rope_scaling: { type: "dynamic", factor: 2 } }),
    );
    await assert.rejects(
      loadModelCheckpoint(dir),
      new RegExp(`${dir}/config\\.json: "rope_scaling" .*"dynamic".* is not supported`),
    );
    await Deno.writeTextFile(
      `${dir}/${HF_CONFIG_FILE}`,
      JSON.stringify({ ...JSON.parse(files.config), num_key_value_heads: 3 }),
    );
    await assert.rejects(
      loadModelCheckpoint(dir),
      /"num_key_value_heads" \(3\) must divide "num_attention_heads" \(4\)/,
    );

    // Sharded: model.safetensors.index.json and shards instead of model.safetensors.
    await Deno.writeTextFile(`${dir}/${HF_CONFIG_FILE}`, files.config);
    await Deno.remove(`${dir}/${HF_WEIGHTS_FILE}`);
    await Deno.writeTextFile(`${dir}/model.safetensors.index.json`, '{"weight_map": {}}');
    await assert.rejects(
      loadModelCheckpoint(dir),
      /cannot read .*model\.safetensors: .*\(model\.safetensors\.index\.json exists: sharded checkpoints are not supported\)/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("`saveModelCheckpoint()` rejects tensors that do not fit the config naming them", async () => {
  const config = LLAMA_PRESETS["smollm-tiny"];
  const tensors = llamaParams(config);
  const wrong = new Map(tensors);
  wrong.set("model.norm.weight", { shape: [35], data: new Float32Array(35) });
  await assert.rejects(
    saveModelCheckpoint("/nonexistent/never-written", config, wrong),
    /Cannot save checkpoint: tensor "model\.norm\.weight" has shape \[35\]; the config needs \[36\]/,
  );
  const missing = new Map(tensors);
  missing.delete("model.layers.1.mlp.up_proj.weight");
  assert.throws(
    () => serializeLlamaCheckpoint(config, missing),
    /missing tensor "model\.layers\.1\.mlp\.up_proj\.weight"/,
  );
  const tiedHead = new Map(tensors);
  tiedHead.set("lm_head.weight", tensors.get("model.embed_tokens.weight")!);
  assert.throws(
    () => serializeLlamaCheckpoint(config, tiedHead),
    /unexpected tensor "lm_head\.weight" \(not a parameter of this llama config\)/,
  );
});
